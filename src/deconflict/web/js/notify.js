/* The notice form over the map: draw a circle or polygon, altitude band and window, check conflicts
 * (POST …/activities/preview) and send (POST …/activities). */
import { $, el, debounce } from './dom.js';
import { ApiError, api, M } from './api.js';
import { S, isoMinute, serverNow } from './state.js';
import { dirty } from './data.js';
import { fmtBand, fmtWindow } from './format.js';
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
  hint(mode === 'circle' ? 'Click the centre on the map, then click again to set the radius (or type them).'
    : mode === 'polygon' ? 'Click each corner; double-click or press Enter to finish, Escape to cancel.'
      : 'Choose a shape, then click on the map.');
  drawDraft();
}
const hint = (t) => { $('#draw-hint').textContent = t; };

function onMapClick(e) {
  if (!draw.mode || $('#notify').hidden) return;
  if (draw.mode === 'circle') {
    if (!draw.centre || draw.done) {
      draw.centre = e.latlng; draw.radius_m = null; draw.done = false;
      $('#n-lat').value = e.latlng.lat.toFixed(4); $('#n-lon').value = e.latlng.lng.toFixed(4); $('#n-radius').value = '';
      hint('Now click to set the radius.');
    } else {
      draw.radius_m = getMap().distance(draw.centre, e.latlng);
      draw.done = true;
      $('#n-radius').value = (draw.radius_m / 1000).toFixed(1);
      hint(`Circle of ${(draw.radius_m / 1000).toFixed(1)} km. Click again to start over.`);
      autoPreview();
    }
  } else if (draw.mode === 'polygon') {
    if (draw.done) { draw.points = []; draw.done = false; }
    draw.points.push(e.latlng);
    hint(`${draw.points.length} corner(s). Double-click or Enter to finish.`);
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
  if (pts.length < 3) { hint('A polygon needs at least 3 corners.'); return; }
  draw.done = true;
  hint(`Polygon of ${pts.length} corners. Click to start over.`);
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
  if (!geometry) throw new ApiError(0, 'Draw the footprint on the map: a circle (centre, then radius) or a polygon.', 'geometry');
  const volume = {
    geometry, floor_m: num($('#n-floor').value), ceiling_m: num($('#n-ceiling').value),
    start: $('#n-start').value.trim(), end: $('#n-end').value.trim(),
  };
  if (radius_m !== undefined) volume.radius_m = radius_m;
  return { kind: $('#n-kind').value, title: $('#n-title').value, volumes: [volume] };
}
function describeRaised(c) {
  if (c.kind === 'separation') {
    return `separation with ${c.other_activity || 'a notice'} (${c.other_party}) · ` +
      `${c.distance_m !== undefined ? (c.distance_m / 1000).toFixed(1) + ' km apart · ' : ''}${fmtWindow(c.start, c.end)} · ${fmtBand(c.floor_m, c.ceiling_m)}`;
  }
  if (c.kind === 'zone') return `inside ${(c.zone_kind || 'zone').replace('_', ' ')} ${c.zone} (${c.zone_owner}), which forbids it`;
  if (c.kind === 'short_notice') return `short notice: ${Math.round(c.lead_time_s / 60)} min ahead, the rules ask ${Math.round(c.min_notice_s / 60)} min`;
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
      ? el('div', { 'data-preview': 'conflicts' }, el('strong', { text: `Would raise ${out.conflicts.length} conflict(s):` }),
        el('ul', {}, out.conflicts.map((c) => el('li', { text: describeRaised(c) }))))
      : el('div', { class: 'none', 'data-preview': 'none', text: 'No conflict with the notices and zones in force.' }));
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
      text: `Notified ${out.activity.id}${raised ? ` · raised ${raised}` : ' · no conflict'}` }));
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
