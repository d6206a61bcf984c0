/* Sending the notice: checked once more (a notice that breaks a red line goes only once the officer
 * confirms), then sent new (POST …/activities) or as an amendment (PUT …/activities/{id} with the
 * version seen); an amendment refused because the activity changed meanwhile keeps every edit. */
import { $, el } from './dom.js';
import { api, M } from './api.js';
import { isOver } from './state.js';
import { dirty } from './data.js';
import { fmtNum } from './format.js';
import { activityStateName, t } from './i18n.js';
import { confirmStep } from './confirm.js';
import { buildNotice } from './notice-build.js';
import { clearErrors, generalSlot, showError } from './notice-errors.js';
import { autoPreview, breaksRedLine, describeRaised, dropPreviews, showPreview } from './notice-preview.js';
import { setDrawMode } from './notice-draw.js';
import { relabel } from './notice-form.js';
import { draw, form } from './notice-state.js';
import { shown, takeNewer } from './notice-merge.js';

/* The form's submit: check, confirm a red line if one is broken, send. */
export async function sendNotice(ev) {
  ev.preventDefault();
  if (form.sending || $('#notify').dataset.gone) return; // an amendment of an activity gone meanwhile: said above
  autoPreview.cancel();
  clearErrors();
  dropPreviews(); // a preview still under way is stale once the notice is sent
  let notice;
  try { notice = buildNotice(); } catch (e) { $('#preview').replaceChildren(); showError(e); return; }
  form.sending = true;
  try {
    const checked = await api('POST', M('/activities/preview'), notice);
    showPreview(checked.conflicts, notice);
    if (!(await redLinesConfirmed(checked.conflicts, notice))) {
      generalSlot().replaceChildren(el('span', { class: 'worded', 'data-not-sent': '', text: t('notify.redLine.notSent') }));
      return;
    }
    if (form.editing) await sendAmendment(notice); else await sendNew(notice);
  } catch (e) {
    if (e.status === 409 && form.editing) await staleAmendment();
    else showError(e);
  } finally { form.sending = false; }
}

/* A notice that breaks a red line is sent only once the officer has said so: true to send. */
async function redLinesConfirmed(conflicts, notice) {
  const breaches = conflicts.filter(breaksRedLine);
  if (!breaches.length) return true;
  return confirmStep({
    name: 'red-line', danger: true,
    title: t('notify.redLine.title'),
    text: t('notify.redLine.text'),
    items: breaches.map((c) => describeRaised(c, notice)),
    yes: form.editing ? t('notify.redLine.amendAnyway') : t('notify.redLine.sendAnyway'),
    no: t('notify.redLine.goBack'),
  });
}

async function sendNew(notice) {
  const out = await api('POST', M('/activities'), notice);
  const raised = out.raised.map((c) => c.id).join(', ');
  $('#preview').replaceChildren(el('div', { class: 'ok', 'data-sent': out.activity.id,
    text: raised ? t('notify.sentRaised', { id: out.activity.id, raised }) : t('notify.sentClear', { id: out.activity.id }) }));
  setDrawMode(draw.mode);
  $('#n-title').value = ''; // sent: the next notice starts without this one's title (the footprint went too)
  dirty('activities', 'conflicts', 'messages');
}

async function sendAmendment(notice) {
  const body = { version: form.editing.version, kind: notice.kind, title: notice.title, volumes: notice.volumes };
  const out = await api('PUT', M(`/activities/${encodeURIComponent(form.editing.id)}`), body);
  form.editing.version = out.activity.version;
  shown(out.activity); // the form now stands on the version it made: what it sent is no edit of the officer's any more
  const parts = [t('amend.sent', { id: out.activity.id, version: fmtNum(out.activity.version) })];
  if (out.resolved.length) parts.push(t('amend.closed', { ids: out.resolved.join(', ') }));
  if (out.raised.length) parts.push(t('amend.raised', { ids: out.raised.map((c) => c.id).join(', ') }));
  $('#preview').replaceChildren(el('div', { class: 'ok', 'data-amended': out.activity.id, 'data-version': out.activity.version, text: parts.join(' · ') }));
  relabel();
  dirty('activities', 'conflicts', 'messages');
}

/* Someone changed the activity since the form was filled: say so, take the version now current as the
 * one seen, keep every edit, and let the officer check and send again. */
async function staleAmendment() {
  const id = form.editing.id;
  let now = null;
  try { now = await api('GET', M(`/activities/${encodeURIComponent(id)}`)); } catch { /* said below */ }
  dirty('activities', 'conflicts', 'messages');
  const slot = generalSlot();
  if (!now) { slot.replaceChildren(el('span', { class: 'worded', text: t('amend.notFound', { id }) })); return; }
  if (isOver(now)) {
    slot.replaceChildren(el('span', { class: 'worded', text: t('amend.gone', { id, state: activityStateName(now.state) }) }));
    return;
  }
  const merged = takeNewer(now);
  form.editing.version = now.version;
  relabel();
  const version = fmtNum(now.version);
  const said = [t('amend.stale', { id, version })];
  if (merged.taken.length) said.push(t('amend.taken', { version, fields: merged.taken.join(', ') }));
  if (merged.both.length) said.push(t('amend.both', { version, fields: merged.both.join(', ') }));
  slot.replaceChildren(el('span', { class: 'worded', 'data-stale': String(now.version), text: said.join(' ') }));
  slot.focus?.();
}
