/* The map (Leaflet, global L): base map, area, zones, activities, tracks (tracks.js) and the draft layer the
 * notice form draws on (notice-draw.js). Renders subscribe to data.js; other modules reach the map
 * through getMap(). */
import { $, el } from './dom.js';
import { S, inWindowAt, isOver, serverNow } from './state.js';
import { fmtBand, fmtTime, fmtWindow } from './format.js';
import { activityStateName, kindName, lang, t, zoneTag } from './i18n.js';
import { M_PER_DEG_LAT } from './units.js';
import { TACTICAL, drawnTracks, initTracks, renderTracks } from './tracks.js';
import { installMapTools } from '../maptools.js';
import { canAmend, cancelActivity, openAmend } from './notice-amend.js';
import i18next from '../vendor/i18next/i18next.js';

let map = null;
const layers = { zones: null, activities: null, draft: null };

export const getMap = () => map;
export const getLayer = (name) => layers[name];

export function initMap() {
  map = L.map('map', { zoomSnap: 0.25, worldCopyJump: false, minZoom: 4, maxZoom: 12 });
  map.attributionControl.setPrefix(false);
  map.attributionControl.addAttribution(t('map.attribution'));
  for (const [name, z] of [['basemap', 200], ['area', 300], ['zones', 410], ['activities', 420], ['tracks', 430], ['draft', 450]]) {
    map.createPane(name).style.zIndex = z;
  }
  map.getPane('basemap').style.pointerEvents = 'none';
  map.getPane('area').style.pointerEvents = 'none';
  fetch('web/data/countries_50m.geojson').then((r) => r.json()).then((fc) => {
    L.geoJSON(fc, {
      pane: 'basemap', interactive: false,
      style: { color: '#3d4f66', weight: 1, fillColor: '#172232', fillOpacity: 1 },
    }).addTo(map);
  });
  const area = L.geoJSON(S.mech.area.geometry, {
    pane: 'area', interactive: false,
    style: { color: '#9fb4d0', weight: 2, dashArray: '6 4', fillColor: '#1e2d42', fillOpacity: 0.6 },
  }).addTo(map);
  map.fitBounds(area.getBounds(), { padding: [10, 10] });
  // The page was hidden a moment ago: measure the map again once laid out, and whenever it resizes.
  let fitted = false;
  new ResizeObserver(() => {
    map.invalidateSize();
    const size = map.getSize();
    if (!fitted && size.x > 200 && size.y > 200) { fitted = true; map.fitBounds(area.getBounds(), { padding: [10, 10] }); }
  }).observe($('#map'));
  for (const name of Object.keys(layers)) layers[name] = L.layerGroup().addTo(map);
  initTracks(map);
  const legend = L.control({ position: 'bottomleft' });
  legend.onAdd = () => {
    const box = el('div', { class: 'legend' });
    for (const [p, c] of Object.entries(S.colours)) {
      box.append(el('div', {}, el('i', { style: `border-color:${c};background:${c}33` }), t('map.legend.activity', { party: p })));
    }
    box.append(el('div', {}, el('i', { style: 'border-color:#ff2d2d;border-style:dashed;background:#ff2d2d22' }), t('map.legend.redLine')));
    box.append(el('div', {}, el('i', { class: 'conflict-swatch', style: 'border-color:#ff9f1c;background:#9ca3af33' }), t('map.legend.inConflict')));
    box.append(el('div', {}, el('i', { style: `border-color:${PAST};border-style:dashed;background:transparent` }), t('map.legend.past')));
    box.append(el('div', {}, el('i', { style: 'border-radius:50%;width:10px;border-color:#fff' }), t('map.legend.track')));
    return box;
  };
  legend.addTo(map);
  // Place names, scale, cursor position (lat/lon, MGRS), range and bearing; they follow the language.
  const tools = installMapTools(map, { t, lang: lang(), placesUrl: 'web/data/places.geojson' });
  i18next.on('languageChanged', (code) => tools.setLanguage(code));
  window.cop = { map, state: S, tools, drawnTracks }; // for the browser tests
  return map;
}

/* A volume's or zone's footprint: a circle (Point + radius) or a GeoJSON polygon. */
export function shapeLayer(geometry, radius_m, style) {
  if (geometry.type === 'Point') {
    const [lon, lat] = geometry.coordinates;
    return L.circle([lat, lon], { radius: radius_m || 0, ...style });
  }
  return L.geoJSON(geometry, { ...style, style: () => style });
}

function northOf(geometry, radius_m) {
  if (geometry.type === 'Point') {
    const [lon, lat] = geometry.coordinates;
    return L.latLng(lat + (radius_m || 0) / M_PER_DEG_LAT, lon);
  }
  const b = L.geoJSON(geometry).getBounds();
  return L.latLng(b.getNorth(), b.getCenter().lng);
}

const CONFLICT = '#ff9f1c';
const PAST = '#8a94a6';

/* Where an activity stands at `ref`: 'past' (every window ended), 'in_force' (inside a window) or
 * 'planned'; with the instant that says it (the last end, the window's end, the next start). */
export function timing(a, volumes, ref = serverNow()) {
  const vols = (volumes || []).filter((v) => v.start);
  if (!vols.length) return { state: 'planned', at: null };
  const ends = vols.map((v) => (v.end ? new Date(v.end) : null));
  if (ends.every((e) => e && e <= ref)) return { state: 'past', at: new Date(Math.max(...ends)) };
  const now = vols.find((v) => inWindowAt(v, ref));
  if (now) return { state: 'in_force', at: now.end ? new Date(now.end) : null };
  const next = vols.map((v) => new Date(v.start)).filter((d) => d > ref).sort((x, y) => x - y)[0];
  return { state: 'planned', at: next || null };
}
function statusLine(when) {
  if (when.state === 'past') return t('map.past', { time: fmtTime(when.at.toISOString()) });
  if (when.state === 'in_force') return when.at ? t('map.inForceUntil', { time: fmtTime(when.at.toISOString()) }) : t('map.inForce');
  return when.at ? t('map.planned', { time: fmtTime(when.at.toISOString()) }) : null;
}
function activityPopup(a, v, when, hot) {
  const live = S.mode === 'live' && canAmend(a) && when.state !== 'past';
  return el('div', { class: 'activity-popup', 'data-activity': a.id, 'data-when': when.state },
    el('strong', { text: `${a.id} · ${kindName(a.kind)}` }),
    el('div', { text: a.title || '' }),
    el('div', { text: t('map.activityMeta', { party: a.party, state: activityStateName(a.state), version: a.version || '?' }) }),
    el('div', { text: t('map.window', { window: fmtWindow(v.start, v.end) }) }),
    el('div', { text: t('map.band', { band: fmtBand(v.floor_m, v.ceiling_m) }) }),
    el('div', { class: `when ${when.state}`, text: statusLine(when) }),
    hot ? el('div', { class: 'hot', text: t('map.inConflict') }) : null,
    live ? el('div', { class: 'popup-actions' },
      el('button', { type: 'button', 'data-amend': a.id, onclick: () => { map.closePopup(); openAmend(a.id); } }, t('amend.amend')),
      el('button', { type: 'button', class: 'danger', 'data-cancel': a.id, onclick: () => { map.closePopup(); cancelActivity(a.id); } }, t('amend.cancel')))
      : null);
}

export function renderPicture() {
  if (!map) return;
  const at = S.mode === 'live' ? null : S.at;
  const source = S.mode === 'replay' && S.replay ? S.replay : { zones: S.zones, activities: S.activities, conflicts: S.conflicts };
  layers.zones.clearLayers();
  for (const z of source.zones) {
    if (z.withdrawn_at && (!at || new Date(z.withdrawn_at) <= at)) continue;
    const red = z.kind === 'red_line';
    const style = red
      ? { pane: 'zones', color: '#ff2d2d', weight: 4, dashArray: '14 7', fillColor: 'url(#hatch-red)', fillOpacity: 1 }
      : { pane: 'zones', color: '#fbbf24', weight: 2, dashArray: '8 6', fillColor: 'url(#hatch-amber)', fillOpacity: 1 };
    const label = t('map.zoneLabel', { kind: zoneTag(z.kind), owner: z.owner, name: z.name || z.id });
    const layer = shapeLayer(z.geometry, z.radius_m, style);
    // The name sits on the zone's northern edge, so the zone itself stays clear to read.
    const north = northOf(z.geometry, z.radius_m);
    L.marker(north, {
      pane: 'zones', interactive: false, keyboard: false,
      icon: L.divIcon({ className: '', iconSize: [0, 0], html: `<span class="zone-name ${red ? 'red' : 'other'}"></span>` }),
    }).addTo(layers.zones).getElement().firstChild.textContent = label;
    layer.bindPopup(el('div', {},
      el('strong', { text: label }),
      el('div', { text: t('map.zoneForbids', { kinds: (z.forbids || []).map(kindName).join(', ') }) }),
      el('div', { text: t('map.band', { band: fmtBand(z.floor_m, z.ceiling_m) }) }),
      el('div', { text: z.valid_to ? t('map.validFromTo', { from: fmtTime(z.valid_from), to: fmtTime(z.valid_to) })
        : t('map.validFrom', { from: fmtTime(z.valid_from) }) })));
    layer.addTo(layers.zones);
  }
  const conflicted = new Set();
  for (const c of source.conflicts || []) {
    if (c.status === 'resolved') continue;
    if (c.activity) conflicted.add(c.activity);
    if (c.other_activity) conflicted.add(c.other_activity);
  }
  layers.activities.clearLayers();
  const ref = at || serverNow(); // the instant the picture is of
  for (const a of source.activities) {
    if (isOver(a)) continue;
    const colour = S.colours[a.party] || '#9ca3af';
    // Under conflicts-only disclosure another party's notice comes as the parts in conflict only.
    const parts = a.partial ? a.overlap || [] : a.volumes || [];
    const when = timing(a, parts, ref);
    const hot = conflicted.has(a.id) && when.state !== 'past';
    for (const v of parts) {
      if (!v.geometry) continue;
      const inWindow = inWindowAt(v, ref);
      const past = when.state === 'past';
      // The party's colour stays the shape's own; a conflict adds a dashed orange halo around its edge.
      if (hot) {
        shapeLayer(v.geometry, v.radius_m, {
          pane: 'activities', color: CONFLICT, weight: 10, opacity: 0.75, dashArray: '10 8', fill: false,
          interactive: false, className: 'conflicted',
        }).addTo(layers.activities);
      }
      const style = past
        ? { pane: 'activities', color: PAST, weight: 2, opacity: 0.8, dashArray: '3 6', fillColor: PAST, fillOpacity: 0.05, className: 'past' }
        : {
          pane: 'activities', color: colour, weight: 3, fillColor: colour, fillOpacity: inWindow || !at ? 0.22 : 0.05,
          opacity: inWindow || !at ? 1 : 0.45, dashArray: inWindow || !at ? null : '4 6', className: when.state === 'in_force' ? 'in-force' : '',
        };
      const layer = shapeLayer(v.geometry, v.radius_m, style);
      const status = statusLine(when);
      const tip = [
        t('map.activityHead', { id: a.id, kind: kindName(a.kind) || t('map.activity'), party: a.party }),
        a.partial ? t('map.partOnly') : null,
        `${fmtWindow(v.start, v.end)} · ${fmtBand(v.floor_m, v.ceiling_m)}`,
        status,
        hot ? t('map.inConflict') : null,
      ].filter(Boolean).join('\n');
      layer.bindTooltip(el('div', { style: 'white-space:pre-line', text: tip }), { sticky: true });
      layer.bindPopup(() => activityPopup(a, v, when, hot));
      layer.addTo(layers.activities);
      for (const part of layer.eachLayer ? layer.getLayers() : [layer]) {
        const path = part.getElement && part.getElement();
        if (path) { path.setAttribute('data-activity', a.id); path.setAttribute('data-when', when.state); if (hot) path.setAttribute('data-hot', ''); }
      }
    }
  }
  renderTracks();
}

/* A conflict on the map: the first of its tracks still in the live picture; else where its tracks were when
 * it was raised (the states it keeps as evidence: a tracks conflict whose contact was lost); else its activity. */
export function zoomToConflict(c) {
  const t = [c.activity, c.other_activity].map((id) => S.tracks.find((x) => x.track === id)).find(Boolean);
  const last = (c.track_states || []).find((x) => Number.isFinite(x.lat) && Number.isFinite(x.lon));
  const at = t || (TACTICAL.has(c.kind) ? last : null);
  if (at) { map.setView([at.lat, at.lon], Math.max(map.getZoom(), 8), { animate: false }); return; }
  zoomToActivity(c.activity);
}

function zoomToActivity(id) {
  const a = S.activities.find((x) => x.id === id);
  if (!a) return;
  const group = L.featureGroup((a.volumes || []).map((v) => shapeLayer(v.geometry, v.radius_m, {})));
  group.addTo(map);
  map.fitBounds(group.getBounds(), { maxZoom: 9, padding: [60, 60], animate: false });
  map.removeLayer(group);
}
