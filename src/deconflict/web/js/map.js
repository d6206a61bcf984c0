/* The map (Leaflet, global L): base map, area, zones, activities, tracks and the draft layer the
 * notice form draws on. Renders subscribe to data.js; other modules reach the map through getMap(). */
import { $, el } from './dom.js';
import { S } from './state.js';
import { fmtBand, fmtM, fmtNum, fmtTime, fmtWindow } from './format.js';
import { activityStateName, kindName, t, zoneTag } from './i18n.js';

let map = null;
const layers = { zones: null, activities: null, tracks: null, draft: null };

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
  const legend = L.control({ position: 'bottomleft' });
  legend.onAdd = () => {
    const box = el('div', { class: 'legend' });
    for (const [p, c] of Object.entries(S.colours)) {
      box.append(el('div', {}, el('i', { style: `border-color:${c};background:${c}33` }), t('map.legend.activity', { party: p })));
    }
    box.append(el('div', {}, el('i', { style: 'border-color:#ff2d2d;border-style:dashed;background:#ff2d2d22' }), t('map.legend.redLine')));
    box.append(el('div', {}, el('i', { style: 'border-color:#ff9f1c;background:#ff9f1c33' }), t('map.legend.inConflict')));
    box.append(el('div', {}, el('i', { style: 'border-radius:50%;width:10px;border-color:#fff' }), t('map.legend.track')));
    return box;
  };
  legend.addTo(map);
  window.cop = { map, state: S }; // for the browser tests
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
    return L.latLng(lat + (radius_m || 0) / 111320, lon);
  }
  const b = L.geoJSON(geometry).getBounds();
  return L.latLng(b.getNorth(), b.getCenter().lng);
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
  for (const a of source.activities) {
    if (a.state === 'cancelled' || a.state === 'ended') continue;
    const colour = S.colours[a.party] || '#9ca3af';
    const hot = conflicted.has(a.id);
    // Under conflicts-only disclosure another party's notice comes as the parts in conflict only.
    const parts = a.partial ? a.overlap || [] : a.volumes || [];
    for (const v of parts) {
      if (!v.geometry) continue;
      const inWindow = !at || (new Date(v.start) <= at && (!v.end || at < new Date(v.end)));
      const style = {
        pane: 'activities', color: hot ? '#ff9f1c' : colour, weight: hot ? 4 : 2,
        fillColor: colour, fillOpacity: inWindow ? 0.22 : 0.05, opacity: inWindow ? 1 : 0.45,
        dashArray: inWindow ? null : '4 6', className: hot ? 'conflicted' : '',
      };
      const layer = shapeLayer(v.geometry, v.radius_m, style);
      const tip = [
        t('map.activityHead', { id: a.id, kind: kindName(a.kind) || t('map.activity'), party: a.party }),
        a.partial ? t('map.partOnly') : null,
        `${fmtWindow(v.start, v.end)} · ${fmtBand(v.floor_m, v.ceiling_m)}`,
        hot ? t('map.inConflict') : null,
      ].filter(Boolean).join('\n');
      layer.bindTooltip(el('div', { style: 'white-space:pre-line', text: tip }), { sticky: true });
      layer.bindPopup(el('div', {},
        el('strong', { text: `${a.id} · ${kindName(a.kind)}` }),
        el('div', { text: a.title || '' }),
        el('div', { text: t('map.activityMeta', { party: a.party, state: activityStateName(a.state), version: a.version || '?' }) }),
        el('div', { text: t('map.window', { window: fmtWindow(v.start, v.end) }) }),
        el('div', { text: t('map.band', { band: fmtBand(v.floor_m, v.ceiling_m) }) })));
      layer.addTo(layers.activities);
    }
  }
  renderTracks();
}

export function zoomToActivity(id) {
  const t = S.tracks.find((x) => x.track === id);
  if (t) { map.setView([t.lat, t.lon], Math.max(map.getZoom(), 8), { animate: false }); return; }
  const a = S.activities.find((x) => x.id === id);
  if (!a) return;
  const group = L.featureGroup((a.volumes || []).map((v) => shapeLayer(v.geometry, v.radius_m, {})));
  group.addTo(map);
  map.fitBounds(group.getBounds(), { maxZoom: 9, padding: [60, 60], animate: false });
  map.removeLayer(group);
}

export function renderTracks() {
  if (!map) return;
  layers.tracks.clearLayers();
  if (S.mode !== 'live') return; // tracks are not in the record: only the live picture has them
  const hot = new Set();
  for (const c of S.conflicts) {
    if (['tracks', 'conformance', 'intrusion'].includes(c.kind)) { hot.add(c.activity); hot.add(c.other_activity); }
  }
  for (const tr of S.tracks) {
    const colour = hot.has(tr.track) ? '#ff9f1c' : S.colours[tr.party] || '#e5e7eb';
    const ahead = (tr.gs_mps || 0) * 60; // metres flown in one minute
    const rad = ((tr.trk_deg || 0) * Math.PI) / 180;
    const lead = [tr.lat + (ahead * Math.cos(rad)) / 111320, tr.lon + (ahead * Math.sin(rad)) / (111320 * Math.cos((tr.lat * Math.PI) / 180))];
    const tip = [
      t('map.trackHead', { track: tr.track, alt: fmtM(tr.alt_m), speed: t('units.kt', { value: fmtNum(Math.round((tr.gs_mps || 0) * 1.943844)) }),
        trk: fmtNum(Math.round(tr.trk_deg || 0)) }),
      t('map.reported', { time: fmtTime(tr.reported_at) }),
      hot.has(tr.track) ? t('map.inConflict') : null,
    ].filter(Boolean).join('\n');
    L.polyline([[tr.lat, tr.lon], lead], { pane: 'tracks', color: colour, weight: 2, interactive: false }).addTo(layers.tracks);
    L.circleMarker([tr.lat, tr.lon], { pane: 'tracks', radius: 5, color: '#0b1018', weight: 1, fillColor: colour, fillOpacity: 1 })
      .bindTooltip(el('div', { style: 'white-space:pre-line', text: tip }), { sticky: true })
      .addTo(layers.tracks).getElement().setAttribute('data-track', tr.track);
  }
}
