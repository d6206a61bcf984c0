/* The notice form's numeric fields as typed: centre latitude and longitude, radius, and the altitude
 * band in m, ft or FL (hundreds of feet), read by the page's locale, the value understood echoed
 * under each field, and a problem worded naming the field and what could be understood. */
import { $, el } from './dom.js';
import { fmtAltIn } from './format.js';
import { ALT_UNITS, fromMetres, toMetres } from './units.js';
import { locale, t } from './i18n.js';
import { fmtPlain, readNumber, separators } from './numbers.js';

/* What the service accepts: altitudes in metres, a radius in km. */
export const ALT_MIN_M = -500;
export const ALT_MAX_M = 30000;
export const RADIUS_MAX_KM = 500;
const UNIT_KEY = 'deconflict.altUnit';

export const altUnit = () => $('#n-alt-unit').value;
function floorLabel(u) { return u === 'ft' ? t('notify.alt.floorFt') : u === 'FL' ? t('notify.alt.floorFL') : t('notify.floor'); }
function ceilingLabel(u) { return u === 'ft' ? t('notify.alt.ceilingFt') : u === 'FL' ? t('notify.alt.ceilingFL') : t('notify.ceiling'); }
function unitOption(u) { return u === 'ft' ? t('notify.alt.unitFt') : u === 'FL' ? t('notify.alt.unitFL') : t('notify.alt.unitM'); }

/* The form's numeric fields: the input, the error slot it reports to, its name in words, its range
 * (in the unit typed) and how the value understood is shown under it. */
export const NUMBERS = {
  lat: { input: '#n-lat', field: 'geometry', name: () => t('notify.lat'), range: () => [-90, 90], echo: (v) => `${fmtExact(v)}°`, eitherWay: true },
  lon: { input: '#n-lon', field: 'geometry', name: () => t('notify.lon'), range: () => [-180, 180], echo: (v) => `${fmtExact(v)}°`, eitherWay: true },
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
 * with the problem worded, naming the field and what could be understood. A value out of the field's
 * range that the other usual way of writing numbers reads in range has `otherWay`, that reading offered
 * in words ("1.500" km on the Turkish page: did you mean 1,5?). */
export function readField(key, unit = altUnit()) {
  const spec = NUMBERS[key];
  const raw = $(spec.input).value;
  const typed = spec.strip ? raw.trim().replace(spec.strip, '') : raw;
  const range = spec.strip ? altRange(unit) : spec.range();
  const r = readNumber(typed, { range, eitherWay: Boolean(spec.eitherWay) });
  if (r.value !== undefined && (r.value < range[0] || r.value > range[1])) {
    // read this page's way and out of range, but in range the other usual way: said with the range's error
    const other = readNumber(typed, { range, eitherWay: true });
    if (other.value !== undefined && other.value !== r.value) {
      return { ...r, otherWay: t('notify.errors.numberDidYouMean', { value: fmtExact(other.value) }) };
    }
  }
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
export function showUnderstood() {
  for (const key of Object.keys(NUMBERS)) {
    const out = $(`${NUMBERS[key].input}-conv`);
    if (!out) continue;
    const kept = keptMetres($(NUMBERS[key].input));
    if (kept !== undefined) { // the band as the activity has it
      out.textContent = fmtAltIn(kept, altUnit());
      continue;
    }
    const r = readField(key);
    out.textContent = r.value === undefined ? '' : NUMBERS[key].echo(r.value);
  }
}

/* An altitude field's value in metres, or a reason it has none ('missing', or the worded problem). */
export function altitudeOf(key) {
  // a band read from an activity and left as shown keeps its metres: FL66 shown for 2,000 m is 2,011.68 m
  // read back, and an amendment of the window alone would move the band
  const kept = keptMetres($(NUMBERS[key].input));
  if (kept !== undefined) return { m: kept };
  const r = readField(key);
  if (r.value === undefined) return r;
  return { m: toMetres(r.value, altUnit()), otherWay: r.otherWay };
}
/* The band "from … to …" in words, in the unit the reader chose. */
export const altRangeText = () => t('notify.errors.altRange', { min: fmtAltIn(ALT_MIN_M, altUnit()), max: fmtAltIn(ALT_MAX_M, altUnit()) });

/* The metres an altitude field was set to (setAltitudes), while its text is left as then shown; else undefined. */
function keptMetres(input) {
  return input.dataset.metres !== undefined && input.value === input.dataset.shown ? Number(input.dataset.metres) : undefined;
}

export function setAltitudes(floor_m, ceiling_m) {
  setAltitude('floor', floor_m);
  setAltitude('ceiling', ceiling_m);
}

/* One of the band's fields set to ``m`` metres, written in the unit the reader chose. */
export function setAltitude(key, m) {
  const input = $(NUMBERS[key].input);
  input.value = fmtPlain(fromMetres(m, altUnit()), 2);
  Object.assign(input.dataset, { metres: String(m), shown: input.value }); // the exact band, while left as shown
  showUnderstood();
}

/* A new unit: the band stays the same, written in the new unit (and the choice is remembered). */
let unitShown = 'm';
export function onUnitChange() {
  const before = unitShown, after = altUnit();
  for (const key of ['floor', 'ceiling']) {
    const input = $(NUMBERS[key].input);
    const kept = keptMetres(input);
    const r = readField(key, before);
    if (kept !== undefined) input.value = input.dataset.shown = fmtPlain(fromMetres(kept, after), 2);
    else {
      delete input.dataset.metres; // edited: what is typed from now on is read as typed
      delete input.dataset.shown;
      if (r.value !== undefined) input.value = fmtPlain(fromMetres(toMetres(r.value, before), after), 2);
    }
  }
  unitShown = after;
  try { localStorage.setItem(UNIT_KEY, after); } catch { /* private mode */ }
}

/* Once, at load: the unit choice before floor and ceiling (the one saved, else m), and the line under
 * each numeric field that says the value understood. */
export function buildNumberFields() {
  const floorField = $('#n-floor').closest('.field');
  const unit = el('select', { id: 'n-alt-unit', name: 'alt_unit' }, ALT_UNITS.map((u) => el('option', { value: u })));
  floorField.parentElement.insertBefore(
    el('div', { class: 'field alt-unit' }, el('label', { for: 'n-alt-unit', id: 'n-alt-unit-label' }), unit), floorField);
  for (const which of ['lat', 'lon', 'radius']) $(`#n-${which}`).after(el('span', { class: 'conv', id: `n-${which}-conv`, dir: 'auto' }));
  for (const which of ['floor', 'ceiling']) {
    const input = $(`#n-${which}`);
    input.after(el('span', { class: 'conv', id: `n-${which}-conv`, dir: 'auto' }));
    input.closest('.field').querySelector('label').removeAttribute('data-i18n'); // worded by relabelNumbers(), with the unit
  }
  let saved = 'm';
  try { saved = localStorage.getItem(UNIT_KEY) || 'm'; } catch { /* private mode */ }
  unit.value = ALT_UNITS.includes(saved) ? saved : 'm';
  if (unit.value !== 'm') {
    for (const s of ['#n-floor', '#n-ceiling']) $(s).value = fmtPlain(fromMetres(Number($(s).value), unit.value), 2);
  }
  unitShown = unit.value;
}

/* The labels that carry the unit, and the values understood, in the page's language. */
export function relabelNumbers() {
  const u = altUnit();
  $('#n-alt-unit-label').textContent = t('notify.alt.unit');
  for (const o of $('#n-alt-unit').options) o.textContent = unitOption(o.value);
  $('#n-floor').closest('.field').querySelector('label').textContent = floorLabel(u);
  $('#n-ceiling').closest('.field').querySelector('label').textContent = ceilingLabel(u);
  showUnderstood();
}
