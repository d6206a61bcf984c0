/* Amend or cancel an activity of our own party, from a conflict card or the map's popup: Amend opens
 * the notice form prefilled with the activity's current version (the footprint editable on the map,
 * band and window in the form); Cancel asks for confirmation, then cancels (POST …/cancel). What an
 * action did is said in a short note over the map. */
import { $, el } from './dom.js';
import { api, M } from './api.js';
import { S, isOver, serverNow } from './state.js';
import { dirty, subscribe } from './data.js';
import { fmtNum, fmtWindow } from './format.js';
import { activityStateName, kindName, t } from './i18n.js';
import { getMap } from './map.js';
import { confirmStep } from './confirm.js';
import { setAltitudes } from './notice-fields.js';
import { setTime } from './notice-times.js';
import { clearErrors, explain, generalSlot } from './notice-errors.js';
import { autoPreview } from './notice-preview.js';
import { draft, drawVolume } from './notice-draw.js';
import { relabel } from './notice-form.js';
import { form } from './notice-state.js';
import { asSent } from './notice-build.js';
import { shown } from './notice-merge.js';
import { closeNotify, showPanel } from './notify.js';

/* May this member amend or cancel this activity (its own party's, not closed, not over)? */
export const canAmend = (a) => !!a && !!S.me && S.me.member.role === 'party' && a.party === S.party && !a.partial
  && !isOver(a) && (a.volumes || []).some((v) => !v.end || new Date(v.end) > serverNow());


/* Amend an activity of our own party: the form, prefilled with its current version (its first volume
 * in the form and on the map; the others are sent as they are). */
export async function openAmend(activityId) {
  let a;
  try { a = await api('GET', M(`/activities/${encodeURIComponent(activityId)}`)); } catch (e) {
    toast(e.status === 404 ? t('amend.notFound', { id: activityId }) : explain(e).text); return;
  }
  if (a.party !== S.party || isOver(a) || a.partial) {
    toast(t('amend.gone', { id: activityId, state: activityStateName(a.state) })); return;
  }
  const [first, ...rest] = a.volumes;
  form.editing = {
    id: a.id, version: a.version, volumeId: first.id,
    rest: rest.map(asSent),
  };
  showPanel('amend').dataset.activity = a.id;
  clearErrors();
  $('#n-kind').value = a.kind;
  $('#n-title').value = a.title || '';
  setAltitudes(first.floor_m, first.ceiling_m);
  setTime('start', first.start);
  setTime('end', first.end);
  drawVolume(first);
  const group = draft.shape && L.featureGroup([draft.shape]);
  if (group) getMap().fitBounds(group.getBounds(), { maxZoom: 9, padding: [60, 60], animate: false });
  $('#preview').replaceChildren(rest.length ? el('div', { class: 'hint', text: t('amend.otherVolumes', { count: fmtNum(a.volumes.length) }) }) : '');
  relabel();
  shown(a);
  $('#n-kind').focus();
  autoPreview();
}

/* The activity being amended here was cancelled, or ended, elsewhere meanwhile (another window, the command line):
 * the form says so at once and sends nothing (it stayed open with Send on, and said so only once sent). */
async function goneElsewhere() {
  const panel = $('#notify');
  const editing = form.editing;
  if (!editing || panel.hidden || panel.dataset.gone || S.activities.some((x) => x.id === editing.id && !isOver(x))) return;
  let a = null;
  try { a = await api('GET', M(`/activities/${encodeURIComponent(editing.id)}`)); } catch { /* not found: gone too */ }
  if (form.editing !== editing || (a && !isOver(a))) return; // closed meanwhile, or only out of the list's window
  panel.dataset.gone = editing.id;
  $('#n-send').disabled = true;
  const said = a ? t('amend.gone', { id: editing.id, state: activityStateName(a.state) }) : t('amend.notFound', { id: editing.id });
  generalSlot().replaceChildren(el('span', { class: 'worded', 'data-gone': editing.id, text: said }));
}
subscribe(['activities'], () => { goneElsewhere(); });

/* Cancel an activity of our own party, once the officer confirms; true if it was cancelled. */
export async function cancelActivity(activityId) {
  let a = S.activities.find((x) => x.id === activityId);
  try { a = await api('GET', M(`/activities/${encodeURIComponent(activityId)}`)); } catch { /* the list's copy */ }
  if (!a) { toast(t('amend.notFound', { id: activityId })); return false; }
  const yes = await confirmStep({
    name: 'cancel', danger: true,
    title: t('amend.cancelTitle', { id: a.id }),
    text: t('amend.cancelText', { id: a.id, kind: kindName(a.kind), window: fmtWindow(a.start, a.end) }),
    yes: t('amend.cancelYes'), no: t('amend.cancelNo'),
  });
  if (!yes) return false;
  try {
    const out = await api('POST', M(`/activities/${encodeURIComponent(a.id)}/cancel`), { version: a.version });
    toast(out.resolved.length ? t('amend.cancelled', { id: a.id, ids: out.resolved.join(', ') }) : t('amend.cancelledClear', { id: a.id }), 'ok');
    if (form.editing && form.editing.id === a.id) closeNotify();
    dirty('activities', 'conflicts', 'messages');
    return true;
  } catch (e) {
    // a refusal worded on this side (the party's key: not loaded, or the entry not the one asked for) as it is
    const said = e.worded ? e.message : e.status === 409 ? t('amend.cancelStale', { id: a.id }) : t('amend.cancelFailed', { id: a.id });
    toast(said, 'err', e.status ? e.message : '');
    dirty('activities', 'conflicts');
    return false;
  }
}

/* A short note over the map (what an action from a popup or a card did). */
let toastTimer = null;
function toast(text, kind = 'err', detail = '') {
  let box = $('#action-status');
  if (!box) { box = el('div', { id: 'action-status', role: 'status' }); $('#map-wrap').append(box); }
  box.className = `toast ${kind}`;
  box.replaceChildren(el('span', { text }));
  if (detail) box.append(el('span', { class: 'detail', lang: 'en', dir: 'ltr', text: detail }));
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 10000);
}
