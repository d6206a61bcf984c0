/* The notice form over the map: draw a circle or polygon, altitude band and window, check conflicts
 * (POST …/activities/preview) and send (POST …/activities). */
import { $, el, debounce } from './dom.js';
import { ApiError, api, M } from './api.js';
import { S, isoMinute, serverNow } from './state.js';
import { dirty } from './data.js';
import { fmtBand, fmtKm, fmtMin, fmtNum, fmtWindow } from './format.js';
import { t, zoneKindName } from './i18n.js';
import { getLayer, getMap } from './map.js';

const FIELDS = ['kind', 'title', 'geometry', 'radius_m', 'floor_m', 'ceiling_m', 'start', 'end'];

/* ---------------------------------------------------------------- drawing */

const draw = { mode: null, centre: null, radius_m: null, points: [], done: false };

function setDrawMode(mode) {
  const map = getMap();
  draw.mode = mode; draw.centre = null; draw.radius_m = null; draw.points = []; draw.done = false;
  $('#draw-circle').setAttribute('aria-pressed', String(mode === 'circle'));
  $('#draw-polygon').setAttribute('aria-pressed', String(mode === 'polygon'));
  $('#circle-fields').hidden = mode === 'polygon';
  document.body.classList.toggle('drawing', !!mode);
  map.closePopup();
  if (mode) map.doubleClickZoom.disable(); else map.doubleClickZoom.enable();
  ['#n-lat', '#n-lon', '#n-radius'].forEach((s) => { $(s).value = ''; });
  if (mode === 'circle') hint(t('notify.hint.circle'));
  else if (mode === 'polygon') hint(t('notify.hint.polygon'));
  else hint(t('notify.hint.choose'));
  drawDraft();
}
const hint = (t) => { $('#draw-hint').textContent = t; };

function onMapClick(e) {
  if (!draw.mode || $('#notify').hidden) return;
  if (draw.mode === 'circle') {
    if (!draw.centre || draw.done) {
      draw.centre = e.latlng; draw.radius_m = null; draw.done = false;
      $('#n-lat').value = e.latlng.lat.toFixed(4); $('#n-lon').value = e.latlng.lng.toFixed(4); $('#n-radius').value = '';
      hint(t('notify.hint.radius'));
    } else {
      draw.radius_m = getMap().distance(draw.centre, e.latlng);
      draw.done = true;
      $('#n-radius').value = (draw.radius_m / 1000).toFixed(1);
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
  const lat = parseFloat($('#n-lat').value), lon = parseFloat($('#n-lon').value), r = parseFloat($('#n-radius').value);
  draw.centre = Number.isFinite(lat) && Number.isFinite(lon) ? L.latLng(lat, lon) : null;
  draw.radius_m = Number.isFinite(r) && r > 0 ? r * 1000 : null;
  draw.done = !!(draw.centre && draw.radius_m);
  drawDraft();
  autoPreview();
}
function drawDraft() {
  const layer = getLayer('draft');
  layer.clearLayers();
  const style = { pane: 'draft', color: '#ffffff', weight: 2, dashArray: '6 4', fillColor: '#ffffff', fillOpacity: 0.12, interactive: false };
  if (draw.mode === 'circle' && draw.centre) {
    L.circleMarker(draw.centre, { ...style, radius: 4, fillOpacity: 1 }).addTo(layer);
    if (draw.radius_m) L.circle(draw.centre, { ...style, radius: draw.radius_m }).addTo(layer);
  }
  if (draw.mode === 'polygon' && draw.points.length) {
    (draw.done ? L.polygon(draw.points, style) : L.polyline(draw.points, style)).addTo(layer);
    draw.points.forEach((p) => L.circleMarker(p, { ...style, radius: 3, fillOpacity: 1 }).addTo(layer));
  }
}

/* ---------------------------------------------------------------- the form */

export function openNotify() {
  const panel = $('#notify');
  panel.hidden = false;
  if (!$('#n-start').value) {
    // In about two hours (past the usual minimum notice), on a quarter hour.
    const start = new Date(Math.floor((serverNow().getTime() + 2 * 3600e3) / 900e3) * 900e3);
    $('#n-start').value = isoMinute(start);
    $('#n-end').value = isoMinute(new Date(start.getTime() + 2 * 3600e3));
  }
  if (!draw.mode) setDrawMode('circle');
  $('#n-kind').focus();
}
function closeNotify() {
  $('#notify').hidden = true;
  setDrawMode(null);
  $('#open-notify').focus();
}
function clearErrors() {
  document.querySelectorAll('#notify-form [data-error-for]').forEach((n) => { n.textContent = ''; });
  document.querySelectorAll('#notify-form [aria-invalid]').forEach((n) => n.removeAttribute('aria-invalid'));
}
function showError(err, focus = true) {
  const path = String(err.field || '').split('.');
  let field = [...path].reverse().find((p) => FIELDS.includes(p));
  if (!field && path[0] === 'volumes') field = 'geometry';
  const slot = document.querySelector(`#notify-form [data-error-for="${field || '_general'}"]`);
  slot.textContent = err.message;
  const input = $(`#notify-form [name="${field}"]`);
  if (input) { input.setAttribute('aria-invalid', 'true'); if (focus) input.focus(); }
  if (field === 'geometry' || field === 'radius_m') $('#n-radius').setAttribute('aria-invalid', 'true');
}
const num = (s) => (s.trim() !== '' && Number.isFinite(Number(s)) ? Number(s) : s);
function buildNotice() {
  let geometry = null, radius_m;
  if (draw.mode === 'circle' && draw.centre && draw.radius_m) {
    geometry = { type: 'Point', coordinates: [draw.centre.lng, draw.centre.lat] };
    radius_m = Math.round(draw.radius_m);
  } else if (draw.mode === 'polygon' && draw.done) {
    const ring = draw.points.map((p) => [p.lng, p.lat]);
    geometry = { type: 'Polygon', coordinates: [[...ring, ring[0]]] };
  }
  if (!geometry) throw new ApiError(0, t('notify.errors.drawFootprint'), 'geometry');
  const volume = {
    geometry, floor_m: num($('#n-floor').value), ceiling_m: num($('#n-ceiling').value),
    start: $('#n-start').value.trim(), end: $('#n-end').value.trim(),
  };
  if (radius_m !== undefined) volume.radius_m = radius_m;
  return { kind: $('#n-kind').value, title: $('#n-title').value, volumes: [volume] };
}
function describeRaised(c) {
  if (c.kind === 'separation') {
    const parts = [t('notify.raised.separation', { other: c.other_activity || t('notify.raised.aNotice'), party: c.other_party })];
    if (c.distance_m !== undefined) parts.push(t('notify.raised.apart', { distance: fmtKm(c.distance_m) }));
    parts.push(fmtWindow(c.start, c.end), fmtBand(c.floor_m, c.ceiling_m));
    return parts.join(' · ');
  }
  if (c.kind === 'zone') {
    return t('notify.raised.zone', { zoneKind: zoneKindName(c.zone_kind || 'zone'), zone: c.zone, owner: c.zone_owner });
  }
  if (c.kind === 'short_notice') {
    return t('notify.raised.shortNotice', { lead: fmtMin(Math.round(c.lead_time_s / 60)), minimum: fmtMin(Math.round(c.min_notice_s / 60)) });
  }
  return c.kind;
}
let previewSeq = 0;
async function preview(auto = false) {
  const box = $('#preview');
  const mine = ++previewSeq;
  let notice;
  try { notice = buildNotice(); } catch (e) {
    if (!auto) { clearErrors(); showError(e); }
    return;
  }
  clearErrors();
  try {
    const out = await api('POST', M('/activities/preview'), notice);
    if (mine !== previewSeq) return;
    box.replaceChildren(out.conflicts.length
      ? el('div', { 'data-preview': 'conflicts' }, el('strong', { text: t('notify.wouldRaise', { count: fmtNum(out.conflicts.length) }) }),
        el('ul', {}, out.conflicts.map((c) => el('li', { 'data-kind': c.kind, text: describeRaised(c) }))))
      : el('div', { class: 'none', 'data-preview': 'none', text: t('notify.noConflict') }));
  } catch (e) {
    if (mine !== previewSeq) return;
    box.replaceChildren();
    showError(e, !auto);
  }
}
const autoPreview = debounce(() => { if (!$('#notify').hidden) preview(true); }, 300);
async function sendNotice(ev) {
  ev.preventDefault();
  clearErrors();
  previewSeq += 1; // a preview still under way is stale once the notice is sent
  try {
    const out = await api('POST', M('/activities'), buildNotice());
    const raised = out.raised.map((c) => c.id).join(', ');
    $('#preview').replaceChildren(el('div', { class: 'ok', 'data-sent': out.activity.id,
      text: raised ? t('notify.sentRaised', { id: out.activity.id, raised }) : t('notify.sentClear', { id: out.activity.id }) }));
    setDrawMode(draw.mode);
    dirty('activities', 'conflicts', 'messages');
  } catch (e) { showError(e); }
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

/* DOM wiring (at load). */
export function initNotify() {
  $('#open-notify').addEventListener('click', openNotify);
  $('#n-close').addEventListener('click', closeNotify);
  $('#n-check').addEventListener('click', () => preview());
  $('#notify-form').addEventListener('submit', sendNotice);
  $('#draw-circle').addEventListener('click', () => setDrawMode('circle'));
  $('#draw-polygon').addEventListener('click', () => setDrawMode('polygon'));
  ['#n-lat', '#n-lon', '#n-radius'].forEach((s) => $(s).addEventListener('input', circleFromFields));
  ['#n-kind', '#n-floor', '#n-ceiling', '#n-start', '#n-end'].forEach((s) => $(s).addEventListener('change', autoPreview));
}

/* Map wiring (once the map exists, after sign-in). */
export function bindNotifyToMap(map) {
  map.on('click', onMapClick);
  map.on('mousemove', onMapMove);
  map.on('dblclick', (e) => { if (draw.mode === 'polygon') { L.DomEvent.stop(e); finishPolygon(); } });
}
