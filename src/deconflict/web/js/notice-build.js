/* The notice as it will be sent, read from the form and the footprint drawn: every problem found at
 * once (FormErrors), not only the first; the altitudes always in metres. */
import { $ } from './dom.js';
import { t } from './i18n.js';
import { ALT_MAX_M, ALT_MIN_M, NUMBERS, RADIUS_MAX_KM, altRangeText, altitudeOf, readField } from './notice-fields.js';
import { timeValue } from './notice-times.js';
import { FormErrors, radiusMaxText, worded } from './notice-errors.js';
import { draw, form } from './notice-state.js';
import { tooLong } from './format.js';

export const round6 = (x) => Math.round(x * 1e6) / 1e6;
/* A volume of an activity as an amendment sends it again unchanged (the form edits the first; the others go so). */
export const asSent = (v) => Object.fromEntries(['id', 'geometry', 'radius_m', 'floor_m', 'ceiling_m', 'start', 'end']
  .filter((k) => v[k] !== undefined && v[k] !== null).map((k) => [k, v[k]]));
/* A range's error, with the reading the other usual way offered when that one is in range. */
const also = (text, reading) => (reading.otherWay ? `${text} ${reading.otherWay}` : text);

/* The footprint drawn or typed, or null with its problems pushed onto `errors`. */
function footprint(errors) {
  if (draw.mode === 'circle') {
    const before = errors.length;
    const lat = readField('lat'), lon = readField('lon'), r = readField('radius');
    for (const [key, x] of [['lat', lat], ['lon', lon], ['radius', r]]) {
      if (x.text) errors.push(worded(NUMBERS[key].field, x.text, { inputs: [NUMBERS[key].input], typed: true }));
    }
    if (r.value !== undefined && r.value <= 0) errors.push(worded('radius_m', t('notify.errors.radiusPositive'), { typed: true }));
    if (r.value !== undefined && r.value > RADIUS_MAX_KM) errors.push(worded('radius_m', also(radiusMaxText(), r), { typed: true }));
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

/* The notice as it will be sent; throws FormErrors with every problem found, not only the first.
 * Amending, the volume keeps its id and the activity's other volumes go as they were. */
export function buildNotice() {
  const errors = [];
  const fp = footprint(errors);
  const floor = altitudeOf('floor'), ceiling = altitudeOf('ceiling');
  for (const [name, a, missing] of [['floor_m', floor, () => t('notify.errors.floorNumber')], ['ceiling_m', ceiling, () => t('notify.errors.ceilingNumber')]]) {
    if (a.text) errors.push(worded(name, a.text, { typed: true }));
    else if (a.error) errors.push(worded(name, missing()));
    else if (a.m < ALT_MIN_M || a.m > ALT_MAX_M) errors.push(worded(name, also(altRangeText(), a), { typed: true }));
  }
  if (floor.m !== undefined && ceiling.m !== undefined && !(floor.m < ceiling.m)) errors.push(worded('floor_m', t('notify.errors.floorBelowCeiling')));
  const start = timeValue('start'), end = timeValue('end');
  if (!start) errors.push(worded('start', t('notify.errors.timeMissing')));
  if (!end) errors.push(worded('end', t('notify.errors.timeMissing')));
  if (start && end && !(Date.parse(end) > Date.parse(start))) errors.push(worded('end', t('notify.errors.endAfterStart')));
  const long = tooLong($('#n-title').value.trim(), 500);
  if (long) errors.push(worded('title', long, { inputs: ['#n-title'], typed: true }));
  if (errors.length) throw new FormErrors(errors);
  const { editing } = form;
  const volume = { ...fp, floor_m: floor.m, ceiling_m: ceiling.m, start, end };
  if (editing && editing.volumeId) volume.id = editing.volumeId;
  return { kind: $('#n-kind').value, title: $('#n-title').value.trim(), volumes: [volume, ...(editing ? editing.rest : [])] };
}
