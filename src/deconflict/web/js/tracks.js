/* The live tracks on the map: a dot and a one-minute leader line each, on a canvas of their own.
 *
 * A live picture holds thousands of tracks, moved every two seconds. Each is kept from one reading to
 * the next and moved in place, and the canvas draws them all in one frame: an SVG element per track,
 * made again at each reading, kept the page's main thread busy (5,000 tracks: a click answered after
 * more than a second). The canvas takes no pointer events, so the activities and zones under it still
 * answer the mouse; the track under the pointer (within HOVER_PX) is found from the map's own mouse
 * moves and named in a tooltip, with the others drawn at the same place (tracks stacked in altitude
 * layers show as one dot), and no other tooltip beside it. */
import { el } from './dom.js';
import { S } from './state.js';
import { compareIds, fmtM, fmtNum, fmtTime } from './format.js';
import { t } from './i18n.js';
import { KT_MPS, M_PER_DEG_LAT } from './units.js';

const HOT = '#ff9f1c';
/* The conflicts about tracks (raised from track reports, not notices). */
export const TACTICAL = new Set(['tracks', 'conformance', 'intrusion']);
const HOVER_PX = 8;
const NAMED = 5; // the other tracks under the pointer named in the tooltip (and how many more)

let map = null;
let group = null;
let renderer = null;
let tip = null;
let pointed = null; // the id of the track the tooltip names
let pointer = null; // where the mouse is on the map (a container point), null when it is elsewhere
const drawn = new Map(); // track id → { dot, line, track, hot }

export function initTracks(m) {
  map = m;
  map.getPane('tracks').style.pointerEvents = 'none';
  renderer = L.canvas({ pane: 'tracks', padding: 0.3 });
  group = L.layerGroup().addTo(map);
  tip = L.tooltip({ className: 'track-tip', direction: 'top', offset: [0, -6] });
  let frame = 0;
  const container = map.getContainer();
  const away = () => { cancelAnimationFrame(frame); frame = 0; pointer = null; point(); };
  // The DOM's own events: the map's do not fire over an activity or zone, which take the pointer there.
  container.addEventListener('mousemove', (e) => {
    if (frame) return;
    frame = requestAnimationFrame(() => { frame = 0; pointer = map.mouseEventToContainerPoint(e); point(); });
  });
  container.addEventListener('mouseleave', away);
  map.on('zoomstart movestart', away);
}

/* The tracks drawn within HOVER_PX of `at` (a container point), nearest first: those inside the square of
 * latitudes and longitudes around it first (a comparison each), then measured in pixels. */
function under(at) {
  const a = map.containerPointToLatLng([at.x - HOVER_PX, at.y + HOVER_PX]);
  const b = map.containerPointToLatLng([at.x + HOVER_PX, at.y - HOVER_PX]);
  const found = [];
  for (const d of drawn.values()) {
    const { lat, lng } = d.dot.getLatLng();
    if (lat < a.lat || lat > b.lat || lng < a.lng || lng > b.lng) continue;
    const p = map.latLngToContainerPoint([lat, lng]);
    const dd = (p.x - at.x) ** 2 + (p.y - at.y) ** 2;
    if (dd <= HOVER_PX * HOVER_PX) found.push([dd, d]);
  }
  return found.sort((x, y) => x[0] - y[0] || compareIds(x[1].track.track, y[1].track.track)).map(([, d]) => d);
}

/* Name the track under the pointer (none: close the tooltip); the activity or zone under it keeps its
 * tooltip to itself meanwhile. */
function point() {
  const found = pointer && !document.body.classList.contains('drawing') ? under(pointer) : [];
  map.getContainer().classList.toggle('pointing-track', found.length > 0);
  if (!found.length) {
    if (pointed !== null) { map.closeTooltip(tip); pointed = null; }
    return;
  }
  const [d, ...others] = found;
  pointed = d.track.track;
  tip.setLatLng(d.dot.getLatLng()).setContent(tipText(d, others));
  if (!map.hasLayer(tip)) map.openTooltip(tip);
}

function tipText(d, others) {
  const tr = d.track;
  const text = [
    t('map.trackHead', { track: tr.track, alt: fmtM(tr.alt_m), speed: t('units.kt', { value: fmtNum(Math.round((tr.gs_mps || 0) / KT_MPS)) }),
      trk: fmtNum(Math.round(tr.trk_deg || 0)) }),
    t('map.reported', { time: fmtTime(tr.reported_at) }),
    d.hot ? t('map.inConflict') : null,
    others.length ? t('map.alsoHere', {
      count: fmtNum(others.length),
      tracks: [...others.slice(0, NAMED).map((o) => o.track.track), ...(others.length > NAMED ? ['…'] : [])].join(', '),
    }) : null,
  ].filter(Boolean).join('\n');
  return el('div', { style: 'white-space:pre-line', 'data-track-tip': tr.track, text });
}

/* Where a track will be in one minute at its ground speed and course. */
function lead(tr) {
  const ahead = (tr.gs_mps || 0) * 60;
  const rad = ((tr.trk_deg || 0) * Math.PI) / 180;
  return [tr.lat + (ahead * Math.cos(rad)) / M_PER_DEG_LAT, tr.lon + (ahead * Math.sin(rad)) / (M_PER_DEG_LAT * Math.cos((tr.lat * Math.PI) / 180))];
}

export function renderTracks() {
  if (!map) return;
  const live = S.mode === 'live'; // tracks are not in the record: only the live picture has them
  const hot = new Set();
  for (const c of S.conflicts) {
    if (TACTICAL.has(c.kind)) { hot.add(c.activity); hot.add(c.other_activity); }
  }
  const seen = new Set();
  let reorder = false; // a track added (drawn last) or newly in conflict: those in conflict go on top again
  for (const tr of live ? S.tracks : []) {
    seen.add(tr.track);
    const isHot = hot.has(tr.track);
    const colour = isHot ? HOT : S.colours[tr.party] || '#e5e7eb';
    const at = [tr.lat, tr.lon];
    let d = drawn.get(tr.track);
    if (!d) {
      d = {
        line: L.polyline([at, lead(tr)], { renderer, color: colour, weight: 2, interactive: false }),
        dot: L.circleMarker(at, { renderer, radius: 5, color: '#0b1018', weight: 1, fillColor: colour, fillOpacity: 1, interactive: false }),
        colour,
      };
      group.addLayer(d.line).addLayer(d.dot);
      drawn.set(tr.track, d);
      reorder = true;
    } else {
      d.line.setLatLngs([at, lead(tr)]);
      d.dot.setLatLng(at);
      if (d.colour !== colour) {
        d.line.setStyle({ color: colour });
        d.dot.setStyle({ fillColor: colour });
        d.colour = colour;
      }
    }
    if (isHot && !d.hot) reorder = true;
    d.track = tr;
    d.hot = isHot;
  }
  if (reorder) for (const d of drawn.values()) if (d.hot) { d.line.bringToFront(); d.dot.bringToFront(); }
  for (const [id, d] of drawn) {
    if (!seen.has(id)) { group.removeLayer(d.line).removeLayer(d.dot); drawn.delete(id); }
  }
  if (pointer || pointed !== null) point(); // what is under a still pointer now that the tracks moved
}

/* The tracks as drawn (for the browser tests): id, position, colour, in conflict. */
export function drawnTracks() {
  return [...drawn.values()].map((d) => ({ track: d.track.track, lat: d.dot.getLatLng().lat, lon: d.dot.getLatLng().lng, colour: d.colour, hot: d.hot }));
}
