/* The notice form's errors in words: each beside its field in the member's language, the service's
 * own (English) words kept as secondary text, the inputs concerned marked and the first one focused. */
import { $, el } from './dom.js';
import { ApiError } from './api.js';
import { fmtKm, fmtNum } from './format.js';
import { t } from './i18n.js';
import { RADIUS_MAX_KM, altRangeText } from './notice-fields.js';
import { draw } from './notice-state.js';

const FIELDS = ['kind', 'title', 'geometry', 'radius_m', 'floor_m', 'ceiling_m', 'start', 'end'];

/* What went wrong, worded for the reader: { field, text, detail } (detail: the service's own words). */
export function explain(err) {
  const detail = err.status ? err.message : '';
  const path = String(err.field || '').split(/[.\s]/);
  let field = [...path].reverse().find((p) => FIELDS.includes(p));
  if (!field && path.includes('volumes')) field = 'geometry';
  const said = (re) => re.test(err.message || '');
  // the rules' limit a refusal states ("31 days", "12 hours"), in days as the reader writes numbers; null: none
  const limit = (re) => {
    const m = re.exec(err.message || '');
    if (!m) return null;
    const days = Number(m[1]) / (m[2] === 'hours' ? 24 : 1);
    return fmtNum(days, Number.isInteger(days) ? 0 : 2);
  };
  const tooLong = field === 'end' && limit(/longer than the ([\d.]+) (days|hours)/);
  const tooFar = field === 'start' && limit(/more than ([\d.]+) (days|hours) ahead \(the mechanism's horizon/);
  let text;
  if (err.worded) text = err.message;
  else if (!err.status) text = t('notify.errors.network');
  else if (err.status === 403) text = t('notify.errors.notAllowed');
  else if (field === 'end' && said(/already ended/)) text = t('notify.errors.windowEnded');
  else if (field === 'end' && said(/not after/)) text = t('notify.errors.endAfterStart');
  else if (tooLong) text = t('notify.errors.windowTooLong', { days: tooLong });
  else if (tooFar) text = t('notify.errors.tooFarAhead', { days: tooFar });
  else if (field === 'start' || field === 'end') text = t('notify.errors.badTime');
  else if (field === 'floor_m' && said(/not below/)) text = t('notify.errors.floorBelowCeiling');
  else if ((field === 'floor_m' || field === 'ceiling_m') && said(/at least|at most/)) text = altRangeText();
  else if (field === 'floor_m') text = t('notify.errors.floorNumber');
  else if (field === 'ceiling_m') text = t('notify.errors.ceilingNumber');
  else if (field === 'radius_m' && said(/more than 0/)) text = t('notify.errors.radiusPositive');
  else if (field === 'radius_m' && said(/at most/)) text = radiusMaxText();
  else if (field === 'radius_m') text = t('notify.errors.drawFootprint');
  else if (field === 'geometry' && said(/outside the mechanism/)) text = t('notify.errors.outsideArea');
  else if (field === 'geometry' && said(/not valid|no area|ring/)) text = t('notify.errors.polygonInvalid');
  else if (field === 'geometry') text = t('notify.errors.footprintInvalid');
  else if (field === 'title') text = t('notify.errors.title');
  else if (field === 'kind') text = t('notify.errors.kind');
  else text = t('notify.errors.refused');
  return { field: field || '_general', text, detail };
}
export const radiusMaxText = () => t('notify.errors.radiusMax', { max: fmtKm(RADIUS_MAX_KM * 1000, 0) });

/* A check on this side, worded already (inputs: the ones to mark, when not all of the field's;
 * typed: a number that cannot be read, or out of range, shown as soon as the reader leaves the field). */
export const worded = (field, text, extra = {}) => Object.assign(new ApiError(0, text, field), { worded: true }, extra);
/* Every problem the form has at once (buildNotice throws one of these). */
export class FormErrors extends Error {
  constructor(errors) { super(errors.map((e) => e.message).join(' · ')); this.errors = errors; }
}

/* The slot for what concerns the whole notice (not sent, changed meanwhile, …). */
export const generalSlot = () => $('#notify-form [data-error-for="_general"]');

export function clearErrors({ keepGeneral = false } = {}) {
  document.querySelectorAll(`#notify-form [data-error-for]${keepGeneral ? ':not([data-error-for="_general"])' : ''}`)
    .forEach((n) => { n.replaceChildren(); });
  document.querySelectorAll('#notify-form [aria-invalid]').forEach((n) => n.removeAttribute('aria-invalid'));
}
/* The inputs an error's field stands for (highlighted), the first one focused. */
function inputsFor(field) {
  if (field === 'geometry') return draw.mode === 'polygon' ? [] : ['#n-lat', '#n-lon', '#n-radius'];
  if (field === 'radius_m') return ['#n-radius'];
  if (field === 'start' || field === 'end') return [`#n-${field}-date`, `#n-${field}-hour`, `#n-${field}-minute`];
  if (field === 'floor_m') return ['#n-floor'];
  if (field === 'ceiling_m') return ['#n-ceiling'];
  if (field === 'kind') return ['#n-kind'];
  if (field === 'title') return ['#n-title'];
  return [];
}
/* One error, or every error of a FormErrors, each beside its field; the first one's input focused. */
export function showError(err, focus = true) {
  const all = err instanceof FormErrors ? err.errors : [err];
  let first = null;
  const filled = new Set();
  for (const one of all) {
    const { field, text, detail } = explain(one);
    const slot = $(`#notify-form [data-error-for="${field}"]`) || generalSlot();
    if (!filled.has(slot)) { slot.replaceChildren(); filled.add(slot); }
    slot.append(el('span', { class: 'worded', text }));
    if (detail && detail !== text) slot.append(el('span', { class: 'detail', lang: 'en', dir: 'ltr', text: t('notify.errors.serviceSaid', { detail }) }));
    const inputs = (one.inputs || inputsFor(field)).map((s) => $(s)).filter(Boolean);
    inputs.forEach((n) => n.setAttribute('aria-invalid', 'true'));
    if (!first) first = inputs[0] || slot;
  }
  if (focus && first) first.focus?.();
}
