/* An amendment refused because the activity changed meanwhile (another officer of the party, the command
 * line): the form takes the newer version's value of every field this officer left as it was, and keeps
 * every field this officer changed. Sent again as it stood, the form put back the other amendment's values
 * (a colleague's ceiling raised to 4,500 m went back to 4,000 m without a word). */
import { $ } from './dom.js';
import { t } from './i18n.js';
import { altitudeOf, setAltitude } from './notice-fields.js';
import { setTime, timeValue } from './notice-times.js';
import { drawVolume } from './notice-draw.js';
import { draw, form } from './notice-state.js';
import { asSent, round6 } from './notice-build.js';

const FIELDS = ['kind', 'title', 'footprint', 'floor', 'ceiling', 'start', 'end'];
/* Each field's label, as the form says it (the catalogue's keys written out: tests find every key used). */
const LABELS = {
  kind: () => t('notify.kind'), title: () => t('notify.title'), footprint: () => t('notify.footprint'),
  floor: () => t('notify.floor'), ceiling: () => t('notify.ceiling'), start: () => t('notify.start'), end: () => t('notify.end'),
};
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/* Each field as the form holds it now (the footprint as drawn; the band in metres; the times as sent). */
function shownFields() {
  let footprint = null;
  if (draw.mode === 'circle' && draw.centre) footprint = ['circle', round6(draw.centre.lng), round6(draw.centre.lat), Math.round(draw.radius_m || 0)];
  else if (draw.mode === 'polygon' && draw.done) footprint = ['polygon', draw.points.map((p) => [round6(p.lng), round6(p.lat)])];
  const band = (key) => { const a = altitudeOf(key); return a.m !== undefined ? a.m : $(`#n-${key}`).value; };
  return {
    kind: $('#n-kind').value, title: $('#n-title').value.trim(), footprint,
    floor: band('floor'), ceiling: band('ceiling'), start: timeValue('start'), end: timeValue('end'),
  };
}

/* Each field of an activity's version (its first volume, the one the form edits). */
function versionFields(a) {
  const v = a.volumes[0];
  return {
    kind: a.kind, title: a.title || '', footprint: [v.geometry, v.radius_m ?? null],
    floor: v.floor_m, ceiling: v.ceiling_m, start: Date.parse(v.start), end: Date.parse(v.end),
  };
}

/* Called once the form shows version ``a`` to amend: what it showed, and of which version. */
export function shown(a) {
  form.editing.seen = a;
  form.editing.shown = shownFields();
  form.editing.touched = new Set();
}

/* The fields the officer changed since the form was opened (a field changed once stays the officer's). */
function touched() {
  const now = shownFields();
  for (const f of FIELDS) if (!same(now[f], form.editing.shown[f])) form.editing.touched.add(f);
  return form.editing.touched;
}

/* Take version ``a`` (newer than the one the form was opened on) into the form: every field it changed that
 * the officer did not is set to its value; its other volumes go as it has them. Returns the labels of the
 * fields taken and of those both changed (the officer's value kept), for the note. */
export function takeNewer(a) {
  const mine = touched();
  const before = versionFields(form.editing.seen), after = versionFields(a);
  const v = a.volumes[0];
  const set = {
    kind: () => { $('#n-kind').value = a.kind; },
    title: () => { $('#n-title').value = a.title || ''; },
    footprint: () => drawVolume(v),
    floor: () => setAltitude('floor', v.floor_m),
    ceiling: () => setAltitude('ceiling', v.ceiling_m),
    start: () => setTime('start', v.start),
    end: () => setTime('end', v.end),
  };
  const taken = [], both = [];
  for (const f of FIELDS) {
    if (same(before[f], after[f])) continue;
    if (mine.has(f)) both.push(f); else { set[f](); taken.push(f); }
  }
  form.editing.volumeId = v.id;
  form.editing.rest = a.volumes.slice(1).map(asSent);
  form.editing.seen = a;
  const now = shownFields();
  for (const f of FIELDS) if (!mine.has(f)) form.editing.shown[f] = now[f];
  return { taken: taken.map((f) => LABELS[f]()), both: both.map((f) => LABELS[f]()) };
}
