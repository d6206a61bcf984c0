/* The notice's footprint on the map: a circle (click the centre, then the edge) or a polygon (click
 * the corners, double-click or Enter to finish), drawn as a dashed draft; once finished it can be
 * moved and reshaped by its handles (a circle's centre and edge, a polygon's corners). A circle can
 * also be typed (centre and radius), and the fields follow the map. */
import { $ } from './dom.js';
import { fmtKm, fmtNum } from './format.js';
import { t } from './i18n.js';
import { fmtPlain } from './numbers.js';
import { M_PER_DEG_LAT } from './units.js';
import { getLayer, getMap } from './map.js';
import { RADIUS_MAX_KM, readField, showUnderstood } from './notice-fields.js';
import { autoPreview } from './notice-preview.js';
import { draw } from './notice-state.js';

/* What is on the draft layer: the shape and its drag handles. */
export const draft = { shape: null, handles: [] };

export const hint = (text) => { $('#draw-hint').textContent = text; };

/* Start drawing a 'circle' or a 'polygon' (or stop: null); the typed centre and radius are cleared
 * unless keepFields. */
export function setDrawMode(mode, { keepFields = false } = {}) {
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
/* A polygon being drawn, with corners clicked and not finished yet. */
export const polygonUnderWay = () => draw.mode === 'polygon' && !draw.done && draw.points.length > 0;

export function finishPolygon() {
  // A double-click also fired two clicks: drop the duplicate corner it added.
  const pts = draw.points;
  while (pts.length > 1 && getMap().distance(pts[pts.length - 1], pts[pts.length - 2]) < 1) pts.pop();
  if (pts.length < 3) { hint(t('notify.hint.tooFew')); return; }
  draw.done = true;
  hint(t('notify.hint.polygonDone', { count: fmtNum(pts.length) }));
  drawDraft();
  autoPreview();
}
/* The circle typed in the fields (centre and radius), drawn as soon as it is whole. */
export function circleFromFields() {
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
const edgeOf = (centre, radius_m) => L.latLng(centre.lat - radius_m / M_PER_DEG_LAT, centre.lng);

function handle(latlng, kind, onDrag) {
  const marker = L.marker(latlng, {
    pane: 'draft', draggable: true, keyboard: false, autoPan: true, bubblingMouseEvents: false,
    icon: L.divIcon({ className: `draft-handle ${kind}`, iconSize: [14, 14] }),
  });
  marker.on('drag', (e) => onDrag(e.target.getLatLng()));
  marker.on('dragend', () => { syncCircleFields(); autoPreview(); });
  return marker;
}
/* The circle's centre and radius written into the fields (after drawing or dragging it). */
export function syncCircleFields() {
  if (draw.mode !== 'circle' || !draw.centre) return;
  $('#n-lat').value = fmtPlain(draw.centre.lat, 4, 4); $('#n-lon').value = fmtPlain(draw.centre.lng, 4, 4);
  if (draw.radius_m) $('#n-radius').value = fmtPlain(draw.radius_m / 1000, 1, 1);
  showUnderstood();
}
export function drawDraft() {
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

/* The footprint of an activity's volume, to amend: drawn finished, with its handles. */
export function drawVolume(volume) {
  if (volume.geometry.type === 'Point') {
    setDrawMode('circle');
    const [lon, lat] = volume.geometry.coordinates;
    draw.centre = L.latLng(lat, lon); draw.radius_m = volume.radius_m; draw.done = true;
    syncCircleFields();
    hint(t('amend.hint.circle'));
  } else {
    setDrawMode('polygon');
    const ring = volume.geometry.type === 'Polygon' ? volume.geometry.coordinates[0] : volume.geometry.coordinates[0][0];
    draw.points = ring.slice(0, -1).map(([lon, lat]) => L.latLng(lat, lon)); draw.done = true;
    hint(t('amend.hint.polygon'));
  }
  drawDraft();
}

/* Map wiring (once the map exists, after sign-in). */
export function bindDrawToMap(map) {
  map.on('click', onMapClick);
  map.on('mousemove', onMapMove);
  map.on('dblclick', (e) => { if (draw.mode === 'polygon') { L.DomEvent.stop(e); finishPolygon(); } });
}
