/* The notice checked before it is sent (POST …/activities/preview): the conflicts it would raise, in
 * words, those that break a red line marked; asked for (Check conflicts) or by itself as the form
 * changes (autoPreview, debounced). */
import { $, el, debounce } from './dom.js';
import { api, M } from './api.js';
import { S } from './state.js';
import { fmtBand, fmtKm, fmtMin, fmtNum, fmtWindow } from './format.js';
import { t, zoneKindName } from './i18n.js';
import { buildNotice } from './notice-build.js';
import { FormErrors, clearErrors, showError } from './notice-errors.js';
import { form } from './notice-state.js';

/* The band a raised conflict concerns: the service's when it gives one, else the draft's (inside a
 * zone: clipped to the zone's band), so that a known band is never worded "any altitude". */
function bandOf(c, notice) {
  if (typeof c.floor_m === 'number' && typeof c.ceiling_m === 'number') return [c.floor_m, c.ceiling_m];
  const v = notice && notice.volumes[0];
  if (!v) return [null, null];
  let floor = v.floor_m, ceiling = v.ceiling_m;
  const zone = c.kind === 'zone' && S.zones.find((z) => z.id === c.zone);
  if (zone) {
    if (typeof zone.floor_m === 'number') floor = Math.max(floor, zone.floor_m);
    if (typeof zone.ceiling_m === 'number') ceiling = Math.min(ceiling, zone.ceiling_m);
  }
  return [floor, ceiling];
}

/* A conflict the notice would raise, in one line: what, with whom, when and at what altitudes. */
export function describeRaised(c, notice) {
  const v = notice && notice.volumes[0];
  const start = c.start || (v && v.start), end = c.end || (v && v.end);
  const [floor, ceiling] = bandOf(c, notice);
  const when = [start ? fmtWindow(start, end) : null, fmtBand(floor, ceiling)];
  if (c.kind === 'separation') {
    const parts = [t('notify.raised.separation', { other: c.other_activity || t('notify.raised.aNotice'), party: c.other_party })];
    if (c.distance_m !== undefined) parts.push(t('notify.raised.apart', { distance: fmtKm(c.distance_m) }));
    return [...parts, ...when].filter(Boolean).join(' · ');
  }
  if (c.kind === 'zone') {
    return [t('notify.raised.zone', { zoneKind: zoneKindName(c.zone_kind || 'zone'), zone: c.zone, owner: c.zone_owner }), ...when].filter(Boolean).join(' · ');
  }
  if (c.kind === 'short_notice') {
    return [t('notify.raised.shortNotice', { lead: fmtMin(Math.round(c.lead_time_s / 60)), minimum: fmtMin(Math.round(c.min_notice_s / 60)) }), ...when]
      .filter(Boolean).join(' · ');
  }
  return c.kind;
}
export const breaksRedLine = (c) => c.kind === 'zone' && c.zone_kind === 'red_line';

export function showPreview(conflicts, notice) {
  $('#preview').replaceChildren(conflicts.length
    ? el('div', { 'data-preview': 'conflicts' }, el('strong', { text: t('notify.wouldRaise', { count: fmtNum(conflicts.length) }) }),
      el('ul', {}, conflicts.map((c) => el('li', { 'data-kind': c.kind, 'data-zone-kind': c.zone_kind, class: breaksRedLine(c) ? 'red-line' : null,
        text: describeRaised(c, notice) }))))
    : el('div', { class: 'none', 'data-preview': 'none', text: t('notify.noConflict') }));
}

let previewSeq = 0;
/* A check still under way says nothing when it comes back (the notice was sent meanwhile). */
export function dropPreviews() { previewSeq += 1; }

/* Check the notice: asked for, every problem is said and the first focused; by itself (auto), only
 * what was typed wrong, and a general note standing stays. */
export async function preview(auto = false) {
  if (auto && form.sending) return; // the send under way checks the notice itself
  if (!auto) autoPreview.cancel(); // a check asked for says everything; a late automatic one would say less
  const mine = ++previewSeq;
  let notice;
  try { notice = buildNotice(); } catch (e) {
    $('#preview').replaceChildren(); // a preview of what was there before would read as this notice's
    clearErrors({ keepGeneral: auto });
    if (!auto) showError(e);
    else {
      // Checking by itself, it says only what was typed wrong (not "draw the footprint" before it is).
      const typed = (e.errors || []).filter((x) => x.typed);
      if (typed.length) showError(new FormErrors(typed), false);
    }
    return;
  }
  clearErrors({ keepGeneral: auto }); // an automatic check leaves a general note (not sent, changed meanwhile) standing
  try {
    const out = await api('POST', M('/activities/preview'), notice);
    if (mine !== previewSeq) return;
    showPreview(out.conflicts, notice);
  } catch (e) {
    if (mine !== previewSeq) return;
    $('#preview').replaceChildren();
    showError(e, !auto);
  }
}
export const autoPreview = debounce(() => { if (!$('#notify').hidden) preview(true); }, 300);
