/* The notice form over the map: draw a circle or polygon, altitude band and window, check conflicts
 * (POST …/activities/preview) and send (POST …/activities); the same form amends an activity
 * (PUT …/activities/{id} with the version seen), and cancelActivity() cancels one (POST …/cancel).
 *
 *   openNotify()              a new notice
 *   openAmend(activityId)     the form prefilled with the activity's current version; footprint
 *                             editable on the map (drag the circle's centre or edge, a polygon's
 *                             corners, or click to draw again), band and window in the form
 *   cancelActivity(id)        asks for confirmation, then cancels
 *
 * Altitudes are typed in m, ft or FL (hundreds of feet) and always sent in metres; times are picked
 * as a UTC date, hour and minute (never through the browser's time zone). Errors are worded in the
 * member's language beside their field, the service's own (English) words kept as secondary text;
 * nothing typed is lost. A notice whose preview breaks a red line asks for confirmation first. */
import { $, el, debounce } from './dom.js';
import { ApiError, api, M } from './api.js';
import { S, serverNow } from './state.js';
import { dirty } from './data.js';
import {
  ALT_UNITS, fmtAltIn, fmtBand, fmtKm, fmtMin, fmtNum, fmtTime, fmtWindow, fromMetres, isoFromUtcParts, pad,
  toMetres, utcParts,
} from './format.js';
import { activityStateName, kindName, locale, t, zoneKindName } from './i18n.js';
import { fmtPlain, readNumber, separators } from './numbers.js';
import { getLayer, getMap } from './map.js';
import { confirmStep } from './confirm.js';
import i18next from '../vendor/i18next/i18next.js';

const FIELDS = ['kind', 'title', 'geometry', 'radius_m', 'floor_m', 'ceiling_m', 'start', 'end'];
const ALT_MIN_M = -500, ALT_MAX_M = 30000, RADIUS_MAX_KM = 500;
const UNIT_KEY = 'deconflict.altUnit';

/* The activity being amended ({ id, version, party, rest: other volumes as sent, volumeId }) or null. */
let editing = null;

/* ---------------------------------------------------------------- drawing */

const draw = { mode: null, centre: null, radius_m: null, points: [], done: false };
const draft = { shape: null, handles: [] };

function setDrawMode(mode, { keepFields = false } = {}) {
  const map = getMap();
  draw.mode = mode; draw.centre = null; draw.radius_m = null; draw.points = []; draw.done = false;
  $('#draw-circle').setAttribute('aria-pressed', String(mode === 'circle'));
  $('#draw-polygon').setAttribute('aria-pressed', String(mode === 'polygon'));
  $('#circle-fields').hidden = mode === 'polygon';
  document.body.classList.toggle('drawing', !!mode);
  if (map) {
    map.closePopup();
    if (mode) map.doubleClickZoom.disable(); else map.doubleClickZoom.enable();
  }
  if (!keepFields) ['#n-lat', '#n-lon', '#n-radius'].forEach((s) => { $(s).value = ''; });
  if ($('#n-lat-conv')) showUnderstood();
  if (mode === 'circle') hint(t('notify.hint.circle'));
  else if (mode === 'polygon') hint(t('notify.hint.polygon'));
  else hint(t('notify.hint.choose'));
  drawDraft();
}
const hint = (text) => { $('#draw-hint').textContent = text; };

function onMapClick(e) {
  if (!draw.mode || $('#notify').hidden) return;
  if (draw.mode === 'circle') {
    if (!draw.centre || draw.done) {
      draw.centre = e.latlng; draw.radius_m = null; draw.done = false;
      $('#n-lat').value = fmtPlain(e.latlng.lat, 4, 4); $('#n-lon').value = fmtPlain(e.latlng.lng, 4, 4); $('#n-radius').value = '';
      hint(t('notify.hint.radius'));
    } else {
      draw.radius_m = getMap().distance(draw.centre, e.latlng);
      draw.done = true;
      $('#n-radius').value = fmtPlain(draw.radius_m / 1000, 1, 1);
      showUnderstood();
      hint(t('notify.hint.circleDone', { radius: fmtKm(draw.radius_m) }));
      autoPreview();
    }
  } else if (draw.mode === 'polygon') {
    if (draw.done) { draw.points = []; draw.done = false; }
    draw.points.push(e.latlng);
    hint(t('notify.hint.corners', { count: fmtNum(draw.points.length) }));
  }
  drawDraft();
}
function onMapMove(e) {
  if (draw.mode === 'circle' && draw.centre && !draw.done) { draw.radius_m = getMap().distance(draw.centre, e.latlng); drawDraft(); }
}
function finishPolygon() {
  // A double-click also fired two clicks: drop the duplicate corner it added.
  const pts = draw.points;
  while (pts.length > 1 && getMap().distance(pts[pts.length - 1], pts[pts.length - 2]) < 1) pts.pop();
  if (pts.length < 3) { hint(t('notify.hint.tooFew')); return; }
  draw.done = true;
  hint(t('notify.hint.polygonDone', { count: fmtNum(pts.length) }));
  drawDraft();
  autoPreview();
}
function circleFromFields() {
  const lat = readField('lat').value, lon = readField('lon').value, r = readField('radius').value;
  draw.centre = lat !== undefined && lon !== undefined && Math.abs(lat) <= 90 && Math.abs(lon) <= 180 ? L.latLng(lat, lon) : null;
  draw.radius_m = r !== undefined && r > 0 && r <= RADIUS_MAX_KM ? r * 1000 : null;
  draw.done = !!(draw.centre && draw.radius_m);
  showUnderstood();
  drawDraft();
  if (draw.done) autoPreview(); // a number half typed is said when the reader leaves the field (change)
}
/* The point due south of the centre on the circle's edge, where the radius handle sits (clear of the
 * form, which is on the east side, or the west side right to left). */
const edgeOf = (centre, radius_m) => L.latLng(centre.lat - radius_m / 111320, centre.lng);

function handle(latlng, kind, onDrag) {
  const marker = L.marker(latlng, {
    pane: 'draft', draggable: true, keyboard: false, autoPan: true, bubblingMouseEvents: false,
    icon: L.divIcon({ className: `draft-handle ${kind}`, iconSize: [14, 14] }),
  });
  marker.on('drag', (e) => onDrag(e.target.getLatLng()));
  marker.on('dragend', () => { syncCircleFields(); autoPreview(); });
  return marker;
}
function syncCircleFields() {
  if (draw.mode !== 'circle' || !draw.centre) return;
  $('#n-lat').value = fmtPlain(draw.centre.lat, 4, 4); $('#n-lon').value = fmtPlain(draw.centre.lng, 4, 4);
  if (draw.radius_m) $('#n-radius').value = fmtPlain(draw.radius_m / 1000, 1, 1);
  showUnderstood();
}
function drawDraft() {
  const layer = getLayer('draft');
  if (!layer) return;
  layer.clearLayers();
  draft.shape = null; draft.handles = [];
  const style = { pane: 'draft', color: '#ffffff', weight: 2, dashArray: '6 4', fillColor: '#ffffff', fillOpacity: 0.12, interactive: false };
  if (draw.mode === 'circle' && draw.centre) {
    if (draw.radius_m) draft.shape = L.circle(draw.centre, { ...style, radius: draw.radius_m }).addTo(layer);
    if (draw.done) {
      // The finished circle can be moved (centre) and resized (edge) by dragging.
      const edge = handle(edgeOf(draw.centre, draw.radius_m), 'edge', (p) => {
        draw.radius_m = Math.max(1, getMap().distance(draw.centre, p));
        draft.shape.setRadius(draw.radius_m);
      });
      const centre = handle(draw.centre, 'centre', (p) => {
        draw.centre = p;
        draft.shape.setLatLng(p);
        edge.setLatLng(edgeOf(p, draw.radius_m));
      });
      draft.handles = [centre, edge];
      draft.handles.forEach((h) => h.addTo(layer));
    } else {
      L.circleMarker(draw.centre, { ...style, radius: 4, fillOpacity: 1 }).addTo(layer);
    }
  }
  if (draw.mode === 'polygon' && draw.points.length) {
    draft.shape = (draw.done ? L.polygon(draw.points, style) : L.polyline(draw.points, style)).addTo(layer);
    if (draw.done) {
      draft.handles = draw.points.map((p, i) => handle(p, 'corner', (q) => {
        draw.points[i] = q;
        draft.shape.setLatLngs(draw.points);
      }).addTo(layer));
    } else {
      draw.points.forEach((p) => L.circleMarker(p, { ...style, radius: 3, fillOpacity: 1 }).addTo(layer));
    }
  }
}

/* ---------------------------------------------------------------- altitude in m, ft or FL */

const altUnit = () => $('#n-alt-unit').value;
function floorLabel(u) { return u === 'ft' ? t('notify.alt.floorFt') : u === 'FL' ? t('notify.alt.floorFL') : t('notify.floor'); }
function ceilingLabel(u) { return u === 'ft' ? t('notify.alt.ceilingFt') : u === 'FL' ? t('notify.alt.ceilingFL') : t('notify.ceiling'); }
function unitOption(u) { return u === 'ft' ? t('notify.alt.unitFt') : u === 'FL' ? t('notify.alt.unitFL') : t('notify.alt.unitM'); }

/* ---------------------------------------------------------------- numbers as typed, read by the page's locale */

/* The form's numeric fields: the input, the error slot it reports to, its name in words, its range
 * (in the unit typed) and how the value understood is shown under it. */
const NUMBERS = {
  lat: { input: '#n-lat', field: 'geometry', name: () => t('notify.lat'), range: () => [-90, 90], echo: (v) => `${fmtExact(v)}°` },
  lon: { input: '#n-lon', field: 'geometry', name: () => t('notify.lon'), range: () => [-180, 180], echo: (v) => `${fmtExact(v)}°` },
  radius: { input: '#n-radius', field: 'radius_m', name: () => t('notify.radius'), range: () => [0, RADIUS_MAX_KM],
    echo: (v) => t('units.km', { value: fmtExact(v) }) },
  floor: { input: '#n-floor', field: 'floor_m', name: () => floorLabel(altUnit()), range: () => altRange(altUnit()),
    echo: (v) => fmtAltIn(toMetres(v, altUnit()), altUnit()), strip: /^FL\s*/i },
  ceiling: { input: '#n-ceiling', field: 'ceiling_m', name: () => ceilingLabel(altUnit()), range: () => altRange(altUnit()),
    echo: (v) => fmtAltIn(toMetres(v, altUnit()), altUnit()), strip: /^FL\s*/i },
};
const altRange = (u) => [fromMetres(ALT_MIN_M, u), fromMetres(ALT_MAX_M, u)];
/* Every digit the reader typed, in the page's way of writing numbers (grouped). */
const fmtExact = (x) => new Intl.NumberFormat(locale(), { maximumFractionDigits: 10 }).format(x);

/* A numeric field read whole: { value } (in the unit typed), { error: 'missing' }, or { error, text }
 * with the problem worded, naming the field and what could be understood. */
function readField(key, unit = altUnit()) {
  const spec = NUMBERS[key];
  const raw = $(spec.input).value;
  const typed = spec.strip ? raw.trim().replace(spec.strip, '') : raw;
  const range = spec.strip ? altRange(unit) : spec.range();
  const r = readNumber(typed, { range });
  if (!r.error || r.error === 'missing') return r;
  const text = raw.trim();
  if (r.error === 'ambiguous') {
    return { ...r, text: t('notify.errors.numberAmbiguous', { field: spec.name(), text, value: fmtExact(r.reading), other: fmtExact(r.other) }) };
  }
  const { group, decimal } = separators(locale());
  let worded = t('notify.errors.numberInvalid', { field: spec.name(), text, decimal, group: group.trim() ? group : '␣', example: fmtExact(1234.5) });
  if (r.suggestion !== undefined) worded += ` ${t('notify.errors.numberDidYouMean', { value: fmtExact(r.suggestion) })}`;
  return { ...r, text: worded };
}
/* The value understood, under each numeric field (nothing while it is not understood). */
function showUnderstood() {
  for (const key of Object.keys(NUMBERS)) {
    const out = $(`${NUMBERS[key].input}-conv`);
    if (!out) continue;
    const r = readField(key);
    out.textContent = r.value === undefined ? '' : NUMBERS[key].echo(r.value);
  }
}

/* An altitude field's value in metres, or a reason it has none ('missing', or the worded problem). */
function altitudeOf(key) {
  const r = readField(key);
  if (r.value === undefined) return r;
  return { m: toMetres(r.value, altUnit()) };
}
const showConversions = () => showUnderstood();
function setAltitudes(floor_m, ceiling_m) {
  $('#n-floor').value = fmtPlain(fromMetres(floor_m, altUnit()), 2);
  $('#n-ceiling').value = fmtPlain(fromMetres(ceiling_m, altUnit()), 2);
  showConversions();
}
/* A new unit: the band stays the same, written in the new unit. */
let unitShown = 'm';
function onUnitChange() {
  const before = unitShown, after = altUnit();
  for (const key of ['floor', 'ceiling']) {
    const r = readField(key, before);
    if (r.value !== undefined) $(NUMBERS[key].input).value = fmtPlain(fromMetres(toMetres(r.value, before), after), 2);
  }
  unitShown = after;
  try { localStorage.setItem(UNIT_KEY, after); } catch { /* private mode */ }
  relabel();
  showConversions();
  autoPreview();
}

/* ---------------------------------------------------------------- times picked in UTC */

function timeValue(which) {
  return isoFromUtcParts($(`#n-${which}-date`).value, $(`#n-${which}-hour`).value, $(`#n-${which}-minute`).value);
}
function setTime(which, iso) {
  const p = utcParts(iso);
  $(`#n-${which}-date`).value = p.date;
  $(`#n-${which}-hour`).value = p.hour;
  const minute = $(`#n-${which}-minute`);
  if (![...minute.options].some((o) => o.value === p.minute)) {
    // A time not on the 5-minute steps (an amended notice, say): offer it as it is.
    const after = [...minute.options].find((o) => o.value > p.minute);
    minute.insertBefore(el('option', { value: p.minute }, p.minute), after || null);
  }
  minute.value = p.minute;
  syncTime(which);
}
/* The hidden #n-start/#n-end hold the ISO value sent; the line under the pickers says it in words. */
function syncTime(which) {
  const iso = timeValue(which);
  $(`#n-${which}`).value = iso || '';
  $(`#n-${which}-echo`).textContent = iso ? fmtTime(iso) : '';
}

/* ---------------------------------------------------------------- building the form (once, at load) */

function options(select, values) { select.replaceChildren(...values.map((v) => el('option', { value: v }, v))); }

function enhanceForm() {
  // Altitude unit: one choice for floor and ceiling, before them.
  const floorField = $('#n-floor').closest('.field');
  const unit = el('select', { id: 'n-alt-unit', name: 'alt_unit' }, ALT_UNITS.map((u) => el('option', { value: u })));
  floorField.parentElement.insertBefore(
    el('div', { class: 'field alt-unit' }, el('label', { for: 'n-alt-unit', id: 'n-alt-unit-label' }), unit), floorField);
  for (const which of ['lat', 'lon', 'radius']) $(`#n-${which}`).after(el('span', { class: 'conv', id: `n-${which}-conv`, dir: 'auto' }));
  for (const which of ['floor', 'ceiling']) {
    const input = $(`#n-${which}`);
    input.after(el('span', { class: 'conv', id: `n-${which}-conv`, dir: 'auto' }));
    input.closest('.field').querySelector('label').removeAttribute('data-i18n'); // worded by relabel(), with the unit
  }
  let saved = 'm';
  try { saved = localStorage.getItem(UNIT_KEY) || 'm'; } catch { /* private mode */ }
  unit.value = ALT_UNITS.includes(saved) ? saved : 'm';
  if (unit.value !== 'm') {
    for (const s of ['#n-floor', '#n-ceiling']) $(s).value = fmtPlain(fromMetres(Number($(s).value), unit.value), 2);
  }
  unitShown = unit.value;

  // Start and end: a UTC date, hour and minute; the ISO value goes in the (now hidden) original input.
  for (const which of ['start', 'end']) {
    const input = $(`#n-${which}`);
    const field = input.closest('.field');
    field.classList.add('when');
    input.type = 'hidden';
    const label = field.querySelector('label');
    label.id = `n-${which}-label`;
    label.setAttribute('for', `n-${which}-date`);
    const hour = el('select', { id: `n-${which}-hour`, 'data-part': 'hour' });
    const minute = el('select', { id: `n-${which}-minute`, 'data-part': 'minute' });
    options(hour, Array.from({ length: 24 }, (_, h) => pad(h)));
    options(minute, Array.from({ length: 12 }, (_, i) => pad(i * 5)));
    const picker = el('div', { class: 'utc-picker', role: 'group', 'aria-labelledby': `n-${which}-label`, dir: 'ltr' },
      el('input', { type: 'date', id: `n-${which}-date`, 'data-part': 'date', required: true }),
      hour, el('span', { 'aria-hidden': 'true', text: ':' }), minute,
      el('span', { class: 'utc-tag', id: `n-${which}-utc` }));
    input.after(picker, el('span', { class: 'conv', id: `n-${which}-echo`, dir: 'auto' }));
    for (const part of picker.querySelectorAll('input, select')) {
      part.addEventListener('change', () => { syncTime(which); autoPreview(); });
      part.addEventListener('input', () => syncTime(which));
    }
  }
  relabel();
}

/* Texts this module words itself (the labels that carry the unit, the pickers' names). */
function relabel() {
  const u = altUnit();
  $('#n-alt-unit-label').textContent = t('notify.alt.unit');
  for (const o of $('#n-alt-unit').options) o.textContent = unitOption(o.value);
  $('#n-floor').closest('.field').querySelector('label').textContent = floorLabel(u);
  $('#n-ceiling').closest('.field').querySelector('label').textContent = ceilingLabel(u);
  for (const which of ['start', 'end']) {
    $(`#n-${which}-date`).setAttribute('aria-label', t('notify.when.date'));
    $(`#n-${which}-hour`).setAttribute('aria-label', t('notify.when.hour'));
    $(`#n-${which}-minute`).setAttribute('aria-label', t('notify.when.minute'));
    $(`#n-${which}-utc`).textContent = t('notify.when.utc');
    syncTime(which);
  }
  $('#notify-h').textContent = editing ? t('amend.heading', { id: editing.id, version: fmtNum(editing.version) }) : t('notify.heading');
  $('#n-send').textContent = editing ? t('amend.send') : t('notify.send');
  showConversions();
}

/* ---------------------------------------------------------------- errors in words */

/* What went wrong, worded for the reader: { field, text, detail } (detail: the service's own words). */
function explain(err) {
  const detail = err.status ? err.message : '';
  const path = String(err.field || '').split(/[.\s]/);
  let field = [...path].reverse().find((p) => FIELDS.includes(p));
  if (!field && path.includes('volumes')) field = 'geometry';
  const said = (re) => re.test(err.message || '');
  let text;
  if (err.worded) text = err.message;
  else if (!err.status) text = t('notify.errors.network');
  else if (err.status === 403) text = t('notify.errors.notAllowed');
  else if (field === 'end' && said(/already ended/)) text = t('notify.errors.windowEnded');
  else if (field === 'end' && said(/not after/)) text = t('notify.errors.endAfterStart');
  else if (field === 'start' || field === 'end') text = t('notify.errors.badTime');
  else if (field === 'floor_m' && said(/not below/)) text = t('notify.errors.floorBelowCeiling');
  else if ((field === 'floor_m' || field === 'ceiling_m') && said(/at least|at most/)) {
    text = t('notify.errors.altRange', { min: fmtAltIn(ALT_MIN_M, altUnit()), max: fmtAltIn(ALT_MAX_M, altUnit()) });
  } else if (field === 'floor_m') text = t('notify.errors.floorNumber');
  else if (field === 'ceiling_m') text = t('notify.errors.ceilingNumber');
  else if (field === 'radius_m' && said(/more than 0/)) text = t('notify.errors.radiusPositive');
  else if (field === 'radius_m' && said(/at most/)) text = t('notify.errors.radiusMax', { max: fmtKm(RADIUS_MAX_KM * 1000, 0) });
  else if (field === 'radius_m') text = t('notify.errors.drawFootprint');
  else if (field === 'geometry' && said(/outside the mechanism/)) text = t('notify.errors.outsideArea');
  else if (field === 'geometry' && said(/not valid|no area|ring/)) text = t('notify.errors.polygonInvalid');
  else if (field === 'geometry') text = t('notify.errors.footprintInvalid');
  else if (field === 'title') text = t('notify.errors.title');
  else if (field === 'kind') text = t('notify.errors.kind');
  else text = t('notify.errors.refused');
  return { field: field || '_general', text, detail };
}
/* A check on this side, worded already (inputs: the ones to mark, when not all of the field's;
 * typed: a number that cannot be read, or out of range, shown as soon as the reader leaves the field). */
const worded = (field, text, extra = {}) => Object.assign(new ApiError(0, text, field), { worded: true }, extra);
/* Every problem the form has at once (buildNotice throws one of these). */
class FormErrors extends Error {
  constructor(errors) { super(errors.map((e) => e.message).join(' · ')); this.errors = errors; }
}

function clearErrors({ keepGeneral = false } = {}) {
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
function showError(err, focus = true) {
  const all = err instanceof FormErrors ? err.errors : [err];
  let first = null;
  const filled = new Set();
  for (const one of all) {
    const { field, text, detail } = explain(one);
    const slot = $(`#notify-form [data-error-for="${field}"]`) || $('#notify-form [data-error-for="_general"]');
    if (!filled.has(slot)) { slot.replaceChildren(); filled.add(slot); }
    slot.append(el('span', { class: 'worded', text }));
    if (detail && detail !== text) slot.append(el('span', { class: 'detail', lang: 'en', dir: 'ltr', text: t('notify.errors.serviceSaid', { detail }) }));
    const inputs = (one.inputs || inputsFor(field)).map((s) => $(s)).filter(Boolean);
    inputs.forEach((n) => n.setAttribute('aria-invalid', 'true'));
    if (!first) first = inputs[0] || slot;
  }
  if (focus && first) first.focus?.();
}

/* ---------------------------------------------------------------- the notice */

/* The footprint drawn or typed, or null with its problems pushed onto `errors`. */
function footprint(errors) {
  if (draw.mode === 'circle') {
    const before = errors.length;
    const lat = readField('lat'), lon = readField('lon'), r = readField('radius');
    for (const [key, x] of [['lat', lat], ['lon', lon], ['radius', r]]) {
      if (x.text) errors.push(worded(NUMBERS[key].field, x.text, { inputs: [NUMBERS[key].input], typed: true }));
    }
    if (r.value !== undefined && r.value <= 0) errors.push(worded('radius_m', t('notify.errors.radiusPositive'), { typed: true }));
    if (r.value !== undefined && r.value > RADIUS_MAX_KM) {
      errors.push(worded('radius_m', t('notify.errors.radiusMax', { max: fmtKm(RADIUS_MAX_KM * 1000, 0) }), { typed: true }));
    }
    const given = [lat, lon].filter((x) => x.error !== 'missing').length;
    if ((given === 1 && r.error !== 'missing') || (lat.value !== undefined && Math.abs(lat.value) > 90)
      || (lon.value !== undefined && Math.abs(lon.value) > 180)) {
      errors.push(worded('geometry', t('notify.errors.centre'), { typed: true }));
    }
    if (errors.length > before) return null;
    if (draw.centre && draw.radius_m) {
      return { geometry: { type: 'Point', coordinates: [round6(draw.centre.lng), round6(draw.centre.lat)] }, radius_m: Math.round(draw.radius_m) };
    }
  } else if (draw.mode === 'polygon' && draw.done) {
    const ring = draw.points.map((p) => [round6(p.lng), round6(p.lat)]);
    return { geometry: { type: 'Polygon', coordinates: [[...ring, ring[0]]] } };
  }
  errors.push(worded('geometry', t('notify.errors.drawFootprint')));
  return null;
}
const round6 = (x) => Math.round(x * 1e6) / 1e6;

/* The notice as it will be sent; throws FormErrors with every problem found, not only the first. */
function buildNotice() {
  const errors = [];
  const fp = footprint(errors);
  const floor = altitudeOf('floor'), ceiling = altitudeOf('ceiling');
  for (const [name, a, missing] of [['floor_m', floor, () => t('notify.errors.floorNumber')], ['ceiling_m', ceiling, () => t('notify.errors.ceilingNumber')]]) {
    if (a.text) errors.push(worded(name, a.text, { typed: true }));
    else if (a.error) errors.push(worded(name, missing()));
    else if (a.m < ALT_MIN_M || a.m > ALT_MAX_M) {
      errors.push(worded(name, t('notify.errors.altRange', { min: fmtAltIn(ALT_MIN_M, altUnit()), max: fmtAltIn(ALT_MAX_M, altUnit()) }), { typed: true }));
    }
  }
  if (floor.m !== undefined && ceiling.m !== undefined && !(floor.m < ceiling.m)) errors.push(worded('floor_m', t('notify.errors.floorBelowCeiling')));
  const start = timeValue('start'), end = timeValue('end');
  if (!start) errors.push(worded('start', t('notify.errors.timeMissing')));
  if (!end) errors.push(worded('end', t('notify.errors.timeMissing')));
  if (start && end && !(Date.parse(end) > Date.parse(start))) errors.push(worded('end', t('notify.errors.endAfterStart')));
  if (errors.length) throw new FormErrors(errors);
  const volume = { ...fp, floor_m: floor.m, ceiling_m: ceiling.m, start, end };
  if (editing && editing.volumeId) volume.id = editing.volumeId;
  return { kind: $('#n-kind').value, title: $('#n-title').value, volumes: [volume, ...(editing ? editing.rest : [])] };
}

/* ---------------------------------------------------------------- the preview */

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
function describeRaised(c, notice) {
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
const breaksRedLine = (c) => c.kind === 'zone' && c.zone_kind === 'red_line';

function showPreview(conflicts, notice) {
  $('#preview').replaceChildren(conflicts.length
    ? el('div', { 'data-preview': 'conflicts' }, el('strong', { text: t('notify.wouldRaise', { count: fmtNum(conflicts.length) }) }),
      el('ul', {}, conflicts.map((c) => el('li', { 'data-kind': c.kind, 'data-zone-kind': c.zone_kind, class: breaksRedLine(c) ? 'red-line' : null,
        text: describeRaised(c, notice) }))))
    : el('div', { class: 'none', 'data-preview': 'none', text: t('notify.noConflict') }));
}

let previewSeq = 0;
async function preview(auto = false) {
  if (auto && sending) return; // the send under way checks the notice itself
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
const autoPreview = debounce(() => { if (!$('#notify').hidden) preview(true); }, 300);

/* ---------------------------------------------------------------- sending */

let sending = false;
async function sendNotice(ev) {
  ev.preventDefault();
  if (sending) return;
  autoPreview.cancel();
  clearErrors();
  previewSeq += 1; // a preview still under way is stale once the notice is sent
  let notice;
  try { notice = buildNotice(); } catch (e) { $('#preview').replaceChildren(); showError(e); return; }
  sending = true;
  try {
    // A notice that breaks a red line is sent only once the officer has said so.
    const checked = await api('POST', M('/activities/preview'), notice);
    showPreview(checked.conflicts, notice);
    const breaches = checked.conflicts.filter(breaksRedLine);
    if (breaches.length) {
      const yes = await confirmStep({
        name: 'red-line', danger: true,
        title: t('notify.redLine.title'),
        text: t('notify.redLine.text'),
        items: breaches.map((c) => describeRaised(c, notice)),
        yes: editing ? t('notify.redLine.amendAnyway') : t('notify.redLine.sendAnyway'),
        no: t('notify.redLine.goBack'),
      });
      if (!yes) {
        $('#notify-form [data-error-for="_general"]').replaceChildren(el('span', { class: 'worded', 'data-not-sent': '', text: t('notify.redLine.notSent') }));
        return;
      }
    }
    if (editing) await sendAmendment(notice); else await sendNew(notice);
  } catch (e) {
    if (e.status === 409 && editing) await staleAmendment();
    else showError(e);
  } finally { sending = false; }
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
  const body = { version: editing.version, kind: notice.kind, title: notice.title, volumes: notice.volumes };
  const out = await api('PUT', M(`/activities/${encodeURIComponent(editing.id)}`), body);
  editing.version = out.activity.version;
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
  const id = editing.id;
  let now = null;
  try { now = await api('GET', M(`/activities/${encodeURIComponent(id)}`)); } catch { /* said below */ }
  dirty('activities', 'conflicts', 'messages');
  const slot = $('#notify-form [data-error-for="_general"]');
  if (!now) { slot.replaceChildren(el('span', { class: 'worded', text: t('amend.notFound', { id }) })); return; }
  if (now.state === 'cancelled' || now.state === 'ended') {
    slot.replaceChildren(el('span', { class: 'worded', text: t('amend.gone', { id, state: activityStateName(now.state) }) }));
    return;
  }
  editing.version = now.version;
  relabel();
  slot.replaceChildren(el('span', { class: 'worded', 'data-stale': String(now.version), text: t('amend.stale', { id, version: fmtNum(now.version) }) }));
  slot.focus?.();
}

/* ---------------------------------------------------------------- open, close */

function defaultWindow() {
  // In about two hours (past the usual minimum notice), on a quarter hour.
  const start = new Date(Math.floor((serverNow().getTime() + 2 * 3600e3) / 900e3) * 900e3);
  setTime('start', start.toISOString());
  setTime('end', new Date(start.getTime() + 2 * 3600e3).toISOString());
}

export function openNotify() {
  if (editing) { editing = null; resetForm(); }
  const panel = $('#notify');
  panel.hidden = false;
  panel.dataset.mode = 'notify';
  if (!timeValue('start')) defaultWindow();
  if (!draw.mode) setDrawMode('circle');
  relabel();
  $('#n-kind').focus();
}
function resetForm() {
  $('#n-title').value = '';
  setAltitudes(1000, 4000);
  defaultWindow();
  $('#preview').replaceChildren();
  clearErrors();
  setDrawMode('circle');
}

/* Amend an activity of our own party: the form, prefilled with its current version. */
export async function openAmend(activityId) {
  let a;
  try { a = await api('GET', M(`/activities/${encodeURIComponent(activityId)}`)); } catch (e) {
    toast(e.status === 404 ? t('amend.notFound', { id: activityId }) : explain(e).text); return;
  }
  if (a.party !== S.party || a.state === 'cancelled' || a.state === 'ended' || a.partial) {
    toast(t('amend.gone', { id: activityId, state: activityStateName(a.state) })); return;
  }
  const [first, ...rest] = a.volumes;
  editing = {
    id: a.id, version: a.version, volumeId: first.id,
    rest: rest.map((v) => pick(v, ['id', 'geometry', 'radius_m', 'floor_m', 'ceiling_m', 'start', 'end'])),
  };
  const panel = $('#notify');
  panel.hidden = false;
  panel.dataset.mode = 'amend';
  panel.dataset.activity = a.id;
  clearErrors();
  $('#n-kind').value = a.kind;
  $('#n-title').value = a.title || '';
  setAltitudes(first.floor_m, first.ceiling_m);
  setTime('start', first.start);
  setTime('end', first.end);
  if (first.geometry.type === 'Point') {
    setDrawMode('circle');
    const [lon, lat] = first.geometry.coordinates;
    draw.centre = L.latLng(lat, lon); draw.radius_m = first.radius_m; draw.done = true;
    syncCircleFields();
    hint(t('amend.hint.circle'));
  } else {
    setDrawMode('polygon');
    const ring = first.geometry.type === 'Polygon' ? first.geometry.coordinates[0] : first.geometry.coordinates[0][0];
    draw.points = ring.slice(0, -1).map(([lon, lat]) => L.latLng(lat, lon)); draw.done = true;
    hint(t('amend.hint.polygon'));
  }
  drawDraft();
  const group = draft.shape && L.featureGroup([draft.shape]);
  if (group) getMap().fitBounds(group.getBounds(), { maxZoom: 9, padding: [60, 60], animate: false });
  $('#preview').replaceChildren(rest.length ? el('div', { class: 'hint', text: t('amend.otherVolumes', { count: fmtNum(a.volumes.length) }) }) : '');
  relabel();
  $('#n-kind').focus();
  autoPreview();
}
const pick = (o, keys) => Object.fromEntries(keys.filter((k) => o[k] !== undefined && o[k] !== null).map((k) => [k, o[k]]));

/* Cancel an activity of our own party, once the officer confirms. */
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
    if (editing && editing.id === a.id) closeNotify();
    dirty('activities', 'conflicts', 'messages');
    return true;
  } catch (e) {
    toast(e.status === 409 ? t('amend.cancelStale', { id: a.id }) : t('amend.cancelFailed', { id: a.id }), 'err', e.status ? e.message : '');
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

function closeNotify() {
  $('#notify').hidden = true;
  if (editing) { editing = null; resetForm(); }
  setDrawMode(null);
  $('#open-notify').focus();
}

/* ---------------------------------------------------------------- keys and wiring */

/* Escape: abandon a polygon being drawn, else close the form; true if it did something. */
export function escapeNotify() {
  if (draw.mode === 'polygon' && !draw.done && draw.points.length) { setDrawMode('polygon'); return true; }
  if (!$('#notify').hidden) { closeNotify(); return true; }
  return false;
}

/* Enter on the map (or nowhere) finishes a polygon being drawn; true if it did. */
export function enterNotify() {
  if (draw.mode === 'polygon' && !draw.done && draw.points.length
    && (document.activeElement === $('#map') || document.activeElement === document.body)) {
    finishPolygon();
    return true;
  }
  return false;
}

export const canNotify = () => !!S.me && !$('#open-notify').hidden;
/* May this member amend or cancel this activity (its own party's, not closed, not over)? */
export const canAmend = (a) => !!a && !!S.me && S.me.member.role === 'party' && a.party === S.party && !a.partial
  && a.state !== 'cancelled' && a.state !== 'ended' && (a.volumes || []).some((v) => !v.end || new Date(v.end) > serverNow());

/* DOM wiring (at load). */
export function initNotify() {
  enhanceForm();
  $('#open-notify').addEventListener('click', openNotify);
  $('#n-close').addEventListener('click', closeNotify);
  $('#n-check').addEventListener('click', () => preview());
  $('#notify-form').addEventListener('submit', sendNotice);
  $('#draw-circle').addEventListener('click', () => setDrawMode('circle'));
  $('#draw-polygon').addEventListener('click', () => setDrawMode('polygon'));
  ['#n-lat', '#n-lon', '#n-radius'].forEach((s) => $(s).addEventListener('input', circleFromFields));
  ['#n-floor', '#n-ceiling'].forEach((s) => $(s).addEventListener('input', showConversions));
  $('#n-alt-unit').addEventListener('change', onUnitChange);
  ['#n-kind', '#n-floor', '#n-ceiling', '#n-lat', '#n-lon', '#n-radius'].forEach((s) => $(s).addEventListener('change', autoPreview));
  i18next.on('languageChanged', () => { if ($('#n-alt-unit')) relabel(); });
}

/* Map wiring (once the map exists, after sign-in). */
export function bindNotifyToMap(map) {
  map.on('click', onMapClick);
  map.on('mousemove', onMapMove);
  map.on('dblclick', (e) => { if (draw.mode === 'polygon') { L.DomEvent.stop(e); finishPolygon(); } });
}
