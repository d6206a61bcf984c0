/* The common operating picture of one member: map, conflicts, hotline, notify. Plain browser
 * JavaScript, no build step. Every request goes to this service (the API under /api/v1); times are
 * the service's (GET /me gives its clock), so countdowns do not depend on this machine's clock. */
'use strict';

const API = '/api/v1';
const TOKEN_KEY = 'deconflict.token';
const PALETTE = ['#c084fc', '#38bdf8', '#4ade80', '#f472b6', '#facc15', '#2dd4bf'];
const KIND_LABEL = {
  air_sortie: 'Air sortie', uav_patrol: 'UAV patrol', ground_movement: 'Ground movement',
  deployment: 'Deployment', air_defence_activation: 'Air-defence activation', exercise: 'Exercise',
};
const ZONE_LABEL = { red_line: 'RED LINE', restricted: 'RESTRICTED', protected: 'PROTECTED', air_defence: 'AIR DEFENCE' };
/* Standard phrases a duty officer sends; the others are the service's own (alerts, line checks). */
const PHRASES = ['acknowledged', 'holding', 'acknowledged_amending', 'proceeding_as_notified', 'query_activity', 'incident_at'];
const FIELDS = ['kind', 'title', 'geometry', 'radius_m', 'floor_m', 'ceiling_m', 'start', 'end'];

const S = {
  token: null, me: null, mech: null, party: null, offsetMs: 0, colours: {},
  zones: [], activities: [], conflicts: [], messages: [], lines: {}, templates: [], tracks: [],
  knownMessages: new Set(), seenRefs: new Set(), lastSeq: 0, streamAbort: null,
  mode: 'live', at: null, replay: null,
  alarm: null, audio: null,
};

/* ---------------------------------------------------------------- helpers */

const $ = (sel, root = document) => root.querySelector(sel);
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}
const serverNow = () => new Date(Date.now() + S.offsetMs);
const pad = (n) => String(n).padStart(2, '0');
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
function fmtTime(iso) {
  const d = new Date(iso);
  return `${pad(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}Z`;
}
function fmtWindow(start, end) {
  if (!end) return `from ${fmtTime(start)}`;
  const a = new Date(start), b = new Date(end);
  const sameDay = a.toISOString().slice(0, 10) === b.toISOString().slice(0, 10);
  return sameDay ? `${fmtTime(start).slice(0, -1)}–${pad(b.getUTCHours())}:${pad(b.getUTCMinutes())}Z`
    : `${fmtTime(start)} – ${fmtTime(end)}`;
}
const fmtBand = (f, c) => (typeof f === 'number' && typeof c === 'number'
  ? `${Math.round(f).toLocaleString('en')}–${Math.round(c).toLocaleString('en')} m` : 'any altitude');
const isoMinute = (d) => d.toISOString().slice(0, 16) + ':00Z';
function fmtCountdown(ms) {
  const s = Math.floor(Math.abs(ms) / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const body = h ? `${h}:${pad(m)}:${pad(sec)}` : `${pad(m)}:${pad(sec)}`;
  return ms >= 0 ? body : `OVERDUE +${body}`;
}
function countdown(deadline) {
  return el('span', { class: 'countdown', 'data-deadline': deadline, title: `deadline ${fmtTime(deadline)}` });
}
function debounce(fn, ms) {
  let t = null;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

class ApiError extends Error {
  constructor(status, detail, field) { super(detail); this.status = status; this.field = field; }
}
async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${S.token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let doc = null;
  try { doc = await res.json(); } catch { doc = null; }
  if (!res.ok) throw new ApiError(res.status, (doc && doc.detail) || res.statusText, doc && doc.field);
  return doc;
}
const M = (p = '') => `/mechanisms/${encodeURIComponent(S.me.mechanism)}${p}`;

/* ---------------------------------------------------------------- sign in */

async function signIn(token) {
  S.token = token;
  const me = await api('GET', '/me');
  sessionStorage.setItem(TOKEN_KEY, token);
  S.me = me;
  S.party = me.member.party;
  S.offsetMs = Date.parse(me.now) - Date.now();
  S.mech = await api('GET', M());
  const parties = S.mech.members.filter((m) => m.role === 'party').map((m) => m.id).sort();
  parties.forEach((p, i) => { S.colours[p] = PALETTE[i % PALETTE.length]; });
  try { S.templates = await api('GET', M('/templates')); } catch { S.templates = []; }
  $('#signin').hidden = true;
  $('#app').hidden = false;
  $('#mech-name').textContent = S.mech.name;
  $('#who').textContent = `${me.member.name} (${me.member.id}, ${me.member.role})`;
  document.documentElement.dataset.member = me.member.id;
  const canNotify = me.member.role === 'party';
  $('#open-notify').hidden = !canNotify;
  $('#phrases').hidden = !canNotify && me.member.role !== 'facilitator';
  initMap();
  // The stream resumes after the newest message we hold, so it need not replay the whole record.
  // Messages are read first: every other part of the picture is then read at that point or later,
  // and entries between are replayed harmlessly (each only triggers a refresh).
  await refresh(['messages']);
  await refresh(['zones', 'activities', 'conflicts', 'lines', 'tracks']);
  S.messages.forEach((m) => S.knownMessages.add(m.id));
  S.lastSeq = S.messages.reduce((top, m) => Math.max(top, m.seq || 0), 0);
  renderPhrases();
  stream();
  setInterval(tick, 1000);
  setInterval(() => refresh(['lines']), 30000);
  setInterval(syncClock, 60000);
  // Position reports are not record entries: the tactical picture is polled while the view is live.
  setInterval(() => { if (S.mode === 'live' && !document.hidden) refresh(['tracks']); }, 2000);
  tick();
}

/* The service's clock, read again now and then: countdowns follow it, not this machine's clock. */
async function syncClock() {
  try {
    const sent = Date.now();
    const me = await api('GET', '/me');
    S.offsetMs = Date.parse(me.now) - (sent + Date.now()) / 2;
  } catch { /* keep the last offset */ }
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  if (S.streamAbort) S.streamAbort.abort();
  location.reload();
}

/* ---------------------------------------------------------------- data */

const LOADERS = {
  zones: async () => { S.zones = await api('GET', M('/zones')); },
  activities: async () => { S.activities = await api('GET', M('/activities')); },
  conflicts: async () => { S.conflicts = await api('GET', M('/conflicts?status=unresolved')); },
  messages: async () => { S.messages = await api('GET', M('/messages')); },
  lines: async () => { S.lines = await api('GET', M('/lines')); },
  tracks: async () => { S.tracks = (await api('GET', M('/tracks'))).tracks; },
};
async function refresh(what) {
  await Promise.all(what.map((w) => LOADERS[w]().catch((e) => console.warn(w, e))));
  if (what.includes('lines')) renderLines();
  if (what.some((w) => w === 'zones' || w === 'activities' || w === 'conflicts')) renderPicture();
  else if (what.includes('tracks')) renderTracks();
  if (what.includes('conflicts')) renderConflicts();
  if (what.includes('messages')) renderMessages();
  if (what.includes('messages') || what.includes('conflicts')) renderReOptions();
}
const pending = new Set();
const flush = debounce(() => { const w = [...pending]; pending.clear(); refresh(w); }, 80);
function dirty(...what) { what.forEach((w) => pending.add(w)); flush(); }

/* The record as Server-Sent Events, read with fetch() so the request can carry the bearer token. */
async function stream() {
  const state = $('#stream-state');
  for (;;) {
    S.streamAbort = new AbortController();
    try {
      const res = await fetch(`${API}${M('/events')}?after=${S.lastSeq}`, {
        headers: { Authorization: `Bearer ${S.token}`, Accept: 'text/event-stream' }, signal: S.streamAbort.signal,
      });
      if (res.status === 401) { signOut(); return; }
      if (!res.ok || !res.body) throw new Error(`stream: HTTP ${res.status}`);
      state.textContent = '● live'; state.className = 'stream live';
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          handleFrame(frame);
        }
      }
    } catch (e) {
      if (e.name === 'AbortError') return;
    }
    state.textContent = 'reconnecting…'; state.className = 'stream down';
    await new Promise((r) => setTimeout(r, 1000));
  }
}
function handleFrame(frame) {
  let type = 'message';
  const data = [];
  for (const line of frame.split('\n')) {
    if (!line || line.startsWith(':')) continue;
    const k = line.indexOf(':');
    const name = k < 0 ? line : line.slice(0, k);
    const value = k < 0 ? '' : line.slice(k + 1).replace(/^ /, '');
    if (name === 'event') type = value;
    else if (name === 'data') data.push(value);
  }
  if (!data.length) return;
  let entry;
  try { entry = JSON.parse(data.join('\n')); } catch { return; }
  onEntry(type, entry);
}
function onEntry(type, entry) {
  if (type === 'checkpoint') return;
  if (typeof entry.seq === 'number') S.lastSeq = Math.max(S.lastSeq, entry.seq);
  // An entry stamped later than our idea of the service's time means our clock lags: catch up.
  const stamped = Date.parse(entry.at);
  if (stamped > serverNow().getTime() + 1000) S.offsetMs = stamped - Date.now();
  if (type.startsWith('message.')) {
    if (type === 'message.sent' && entry.message) newMessage(entry.message);
    dirty('messages', 'lines');
  } else if (type.startsWith('conflict.')) dirty('conflicts', 'activities', 'tracks');
  else if (type.startsWith('activity.')) dirty('activities', 'conflicts');
  else if (type.startsWith('zone.')) dirty('zones', 'conflicts');
}
function newMessage(m) {
  if (S.knownMessages.has(m.id)) return;
  S.knownMessages.add(m.id);
  // Anything that needs our answer, and every escalation of an unanswered one, sounds and flashes.
  const loud = m.needs_ack || m.template === 'escalated_to';
  if (loud && (m.to || []).includes(S.party) && m.from !== S.party) raiseAlarm(m);
}

/* ---------------------------------------------------------------- alarm */

function beep() {
  S.beeps = (S.beeps || 0) + 1;
  try {
    S.audio = S.audio || new AudioContext();
    const ctx = S.audio;
    if (ctx.state === 'suspended') ctx.resume();
    [0, 0.3, 0.6].forEach((t) => {
      const osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.type = 'square'; osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, ctx.currentTime + t);
      gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + t + 0.22);
      osc.connect(gain).connect(ctx.destination);
      osc.start(ctx.currentTime + t); osc.stop(ctx.currentTime + t + 0.25);
    });
  } catch (e) { console.warn('sound', e); }
}
function raiseAlarm(m) {
  S.alarm = m;
  const text = $('#alarm-text');
  text.textContent = `${m.id} · ${m.type.replace('_', ' ')}: ${m.display || m.text}`;
  text.dir = m.rtl ? 'rtl' : 'ltr';
  text.lang = m.lang || '';
  $('#alarm').hidden = false;
  document.title = `⚠ ${m.id} ALERT · deconflict`;
  beep();
}
function clearAlarm() {
  S.alarm = null;
  $('#alarm').hidden = true;
  document.title = 'deconflict · common operating picture';
}

/* ---------------------------------------------------------------- map */

let map, zoneLayer, activityLayer, trackLayer, draftLayer;
function initMap() {
  map = L.map('map', { zoomSnap: 0.25, worldCopyJump: false, minZoom: 4, maxZoom: 12 });
  map.attributionControl.setPrefix(false);
  map.attributionControl.addAttribution('Boundaries: Natural Earth (public domain) · Leaflet');
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
  zoneLayer = L.layerGroup().addTo(map);
  activityLayer = L.layerGroup().addTo(map);
  trackLayer = L.layerGroup().addTo(map);
  draftLayer = L.layerGroup().addTo(map);
  const legend = L.control({ position: 'bottomleft' });
  legend.onAdd = () => {
    const box = el('div', { class: 'legend' });
    for (const [p, c] of Object.entries(S.colours)) {
      box.append(el('div', {}, el('i', { style: `border-color:${c};background:${c}33` }), `${p} activity`));
    }
    box.append(el('div', {}, el('i', { style: 'border-color:#ff2d2d;border-style:dashed;background:#ff2d2d22' }), 'red line'));
    box.append(el('div', {}, el('i', { style: 'border-color:#ff9f1c;background:#ff9f1c33' }), 'in conflict'));
    box.append(el('div', {}, el('i', { style: 'border-radius:50%;width:10px;border-color:#fff' }), 'track, 1-min leader'));
    return box;
  };
  legend.addTo(map);
  map.on('click', onMapClick);
  map.on('mousemove', onMapMove);
  map.on('dblclick', (e) => { if (draw.mode === 'polygon') { L.DomEvent.stop(e); finishPolygon(); } });
  window.cop = { map, state: S };
}

function shapeLayer(geometry, radius_m, style) {
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

function renderPicture() {
  if (!map) return;
  const at = S.mode === 'live' ? null : S.at;
  const source = S.mode === 'replay' && S.replay ? S.replay : { zones: S.zones, activities: S.activities, conflicts: S.conflicts };
  zoneLayer.clearLayers();
  for (const z of source.zones) {
    if (z.withdrawn_at && (!at || new Date(z.withdrawn_at) <= at)) continue;
    const red = z.kind === 'red_line';
    const style = red
      ? { pane: 'zones', color: '#ff2d2d', weight: 4, dashArray: '14 7', fillColor: 'url(#hatch-red)', fillOpacity: 1 }
      : { pane: 'zones', color: '#fbbf24', weight: 2, dashArray: '8 6', fillColor: 'url(#hatch-amber)', fillOpacity: 1 };
    const label = `${ZONE_LABEL[z.kind] || z.kind} · ${z.owner} · ${z.name || z.id}`;
    const layer = shapeLayer(z.geometry, z.radius_m, style);
    // The name sits on the zone's northern edge, so the zone itself stays clear to read.
    const north = northOf(z.geometry, z.radius_m);
    L.marker(north, {
      pane: 'zones', interactive: false, keyboard: false,
      icon: L.divIcon({ className: '', iconSize: [0, 0], html: `<span class="zone-name ${red ? 'red' : 'other'}"></span>` }),
    }).addTo(zoneLayer).getElement().firstChild.textContent = label;
    layer.bindPopup(el('div', {},
      el('strong', { text: label }),
      el('div', { text: `forbids: ${(z.forbids || []).map((k) => KIND_LABEL[k] || k).join(', ')}` }),
      el('div', { text: `band ${fmtBand(z.floor_m, z.ceiling_m)} · from ${fmtTime(z.valid_from)}${z.valid_to ? ' to ' + fmtTime(z.valid_to) : ''}` })));
    layer.addTo(zoneLayer);
  }
  const conflicted = new Set();
  for (const c of source.conflicts || []) {
    if (c.status === 'resolved') continue;
    if (c.activity) conflicted.add(c.activity);
    if (c.other_activity) conflicted.add(c.other_activity);
  }
  activityLayer.clearLayers();
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
      const tip = `${a.id} · ${KIND_LABEL[a.kind] || a.kind || 'activity'} · ${a.party}${a.partial ? ' (part in conflict only)' : ''}\n` +
        `${fmtWindow(v.start, v.end)} · ${fmtBand(v.floor_m, v.ceiling_m)}${hot ? '\nIN CONFLICT' : ''}`;
      layer.bindTooltip(el('div', { style: 'white-space:pre-line', text: tip }), { sticky: true });
      layer.bindPopup(el('div', {},
        el('strong', { text: `${a.id} · ${KIND_LABEL[a.kind] || a.kind || ''}` }),
        el('div', { text: a.title || '' }),
        el('div', { text: `party ${a.party} · ${a.state || ''} · version ${a.version || '?'}` }),
        el('div', { text: `window ${fmtWindow(v.start, v.end)}` }),
        el('div', { text: `band ${fmtBand(v.floor_m, v.ceiling_m)}` })));
      layer.addTo(activityLayer);
    }
  }
  renderTracks();
}
function zoomToActivity(id) {
  const t = S.tracks.find((x) => x.track === id);
  if (t) { map.setView([t.lat, t.lon], Math.max(map.getZoom(), 8), { animate: false }); return; }
  const a = S.activities.find((x) => x.id === id);
  if (!a) return;
  const group = L.featureGroup((a.volumes || []).map((v) => shapeLayer(v.geometry, v.radius_m, {})));
  group.addTo(map);
  map.fitBounds(group.getBounds(), { maxZoom: 9, padding: [60, 60], animate: false });
  map.removeLayer(group);
}

function renderTracks() {
  if (!map) return;
  trackLayer.clearLayers();
  if (S.mode !== 'live') return; // tracks are not in the record: only the live picture has them
  const hot = new Set();
  for (const c of S.conflicts) {
    if (['tracks', 'conformance', 'intrusion'].includes(c.kind)) { hot.add(c.activity); hot.add(c.other_activity); }
  }
  for (const t of S.tracks) {
    const colour = hot.has(t.track) ? '#ff9f1c' : S.colours[t.party] || '#e5e7eb';
    const ahead = (t.gs_mps || 0) * 60; // metres flown in one minute
    const rad = ((t.trk_deg || 0) * Math.PI) / 180;
    const lead = [t.lat + (ahead * Math.cos(rad)) / 111320, t.lon + (ahead * Math.sin(rad)) / (111320 * Math.cos((t.lat * Math.PI) / 180))];
    const tip = `${t.track} · ${Math.round(t.alt_m).toLocaleString('en')} m · ${Math.round((t.gs_mps || 0) * 1.943844)} kt · ` +
      `${Math.round(t.trk_deg || 0)}°\nreported ${fmtTime(t.reported_at)}${hot.has(t.track) ? '\nIN CONFLICT' : ''}`;
    L.polyline([[t.lat, t.lon], lead], { pane: 'tracks', color: colour, weight: 2, interactive: false }).addTo(trackLayer);
    L.circleMarker([t.lat, t.lon], { pane: 'tracks', radius: 5, color: '#0b1018', weight: 1, fillColor: colour, fillOpacity: 1 })
      .bindTooltip(el('div', { style: 'white-space:pre-line', text: tip }), { sticky: true })
      .addTo(trackLayer).getElement().setAttribute('data-track', t.track);
  }
}

/* ---------------------------------------------------------------- conflicts */

function conflictSummary(c) {
  if (c.kind === 'separation') {
    return `${c.activity} (${c.party}) × ${c.other_activity} (${c.other_party}) · ` +
      `${(c.distance_m / 1000).toFixed(1)} km apart, minimum ${(c.separation_m / 1000).toFixed(2)} km`;
  }
  if (c.kind === 'zone') return `${c.activity} (${c.party}) inside ${(c.zone_kind || 'zone').replace('_', ' ')} ${c.zone} of ${c.zone_owner}`;
  if (c.kind === 'short_notice') {
    return `${c.activity} (${c.party}) notified ${Math.round(c.lead_time_s / 60)} min ahead; the rules ask ${Math.round(c.min_notice_s / 60)} min`;
  }
  if (c.kind === 'tracks') {
    return `tracks ${c.activity} × ${c.other_activity} predicted to lose separation` +
      (typeof c.t_in_s === 'number' ? ` in ${(c.t_in_s / 60).toFixed(1)} min` : '') +
      (typeof c.distance_m === 'number' ? `, closest ${(c.distance_m / 1000).toFixed(1)} km` : '');
  }
  if (c.kind === 'conformance') return `track ${c.activity} outside every volume its party notified`;
  if (c.kind === 'intrusion') return `track ${c.activity} inside ${c.other_activity || 'another party\'s volume'}`;
  return `${c.activity || ''} ${c.kind}`;
}
function renderConflicts() {
  const list = $('#conflict-list');
  const source = S.mode === 'replay' && S.replay ? S.replay.conflicts.filter((c) => c.status !== 'resolved') : S.conflicts;
  const sorted = [...source].sort((a, b) => (a.deadline || '').localeCompare(b.deadline || ''));
  $('#conflict-count').textContent = `(${sorted.length})`;
  list.replaceChildren();
  if (!sorted.length) list.append(el('li', { class: 'empty', text: 'No open conflict.' }));
  for (const c of sorted) {
    const acked = Object.keys(c.acknowledged || {});
    const mine = (c.awaiting || []).includes(S.party) && !acked.includes(S.party);
    const row = el('div', { class: 'row' });
    if (c.status === 'open') {
      row.append(`acknowledge by ${fmtTime(c.deadline)} (${(c.awaiting || []).join(', ')}):`,
        S.mode === 'replay' ? null : countdown(c.deadline));
    } else {
      row.append(`acknowledged by ${acked.map((p) => `${p} at ${fmtTime(c.acknowledged[p].at)}`).join(', ')}`);
    }
    if (mine && S.mode !== 'replay') {
      row.append(el('button', { type: 'button', class: 'ack', 'data-ack-conflict': c.id, onclick: () => ackConflict(c.id) }, 'Acknowledge'));
    }
    list.append(el('li', { class: `conflict ${c.status}`, 'data-conflict': c.id },
      el('div', { class: 'head' },
        el('button', { type: 'button', class: 'id', title: 'Show on the map', onclick: () => zoomToActivity(c.activity) }, c.id),
        el('span', { text: c.kind.replace('_', ' ') }),
        el('span', { class: 'status', text: c.status })),
      el('div', { class: 'detail', text: conflictSummary(c) }),
      c.start && c.end ? el('div', { class: 'detail', text: `${fmtWindow(c.start, c.end)} · ${fmtBand(c.floor_m, c.ceiling_m)}` }) : null,
      row));
  }
  tick();
}
async function ackConflict(id) {
  try {
    await api('POST', M(`/conflicts/${encodeURIComponent(id)}/acknowledge`));
  } catch (e) { $('#hotline-error').textContent = e.message; }
  dirty('conflicts', 'messages');
}

/* ---------------------------------------------------------------- hotline */

function renderLines() {
  const box = $('#lines');
  box.replaceChildren(...Object.entries(S.lines).map(([p, s]) =>
    el('span', { class: `line ${s}`, 'data-line': p, title: `${p} line: ${s}`, text: `${p} ${s}` })));
}
function renderMessages() {
  const list = $('#messages');
  const atTop = list.scrollTop < 24; // newest first: keep the newest in view unless the reader scrolled down
  const ladder = (S.mech.rules && S.mech.rules.ladder) || [];
  const source = S.mode === 'replay' && S.replay ? S.replay.messages : S.messages;
  list.replaceChildren();
  if (!source.length) list.append(el('li', { class: 'empty', text: 'No message on the channel.' }));
  const waitingForUs = source.filter((m) => m.needs_ack && (m.to || []).includes(S.party) && !(S.party in (m.acknowledged || {})));
  $('#alarm .alarm-tag').textContent = waitingForUs.length > 1 ? `ALERT · ${waitingForUs.length} awaiting us` : 'ALERT';
  for (const m of [...source].reverse()) { // newest first
    const acked = Object.keys(m.acknowledged || {});
    const forMe = (m.to || []).includes(S.party);
    const waiting = m.needs_ack && forMe && !acked.includes(S.party);
    const state = el('div', { class: 'state' });
    if (m.needs_ack) {
      if (acked.length) state.append(`acknowledged by ${acked.join(', ')}${m.acknowledged_at ? ' at ' + fmtTime(m.acknowledged_at) : ''}`);
      else {
        state.append(`acknowledge by ${fmtTime(m.deadline)}`);
        if (S.mode !== 'replay') state.append(countdown(m.deadline));
      }
      const steps = m.escalation_steps || 0;
      const rung = ladder[Math.min(steps, ladder.length - 1)];
      state.append(el('span', { class: steps ? 'escalated' : '', 'data-escalation': steps,
        text: steps ? `escalated ×${steps} → ${rung ? rung.name : ''}` : `level: ${rung ? rung.name : 'duty officer'}` }));
      if (waiting && S.mode !== 'replay') {
        state.append(el('button', { type: 'button', class: 'ack', 'data-ack-message': m.id, onclick: () => ackMessage(m.id) }, 'Acknowledge'));
      }
    }
    list.append(el('li', { class: `msg ${m.type}${waiting ? ' pending' : ''}`, 'data-message': m.id },
      el('div', { class: 'meta' },
        el('strong', { text: m.id }), el('span', { text: m.type.replace('_', ' ') }),
        el('span', { text: `${m.from} → ${(m.to || []).join(', ')}` }), el('span', { text: fmtTime(m.sent_at) }),
        m.about ? el('span', { text: `re ${m.about.id}` }) : null),
      el('p', { class: 'text', dir: m.rtl ? 'rtl' : 'ltr', lang: m.lang, text: m.display || m.text }),
      m.free_text ? el('div', { class: 'free', text: `free text, as written (${m.lang})` }) : null,
      state));
  }
  if (atTop) list.scrollTop = 0;
  tick();
}
async function ackMessage(id) {
  try {
    await api('POST', M(`/messages/${encodeURIComponent(id)}/acknowledge`));
    if (S.alarm && (S.alarm.id === id || (S.alarm.about && S.alarm.about.id === id))) clearAlarm();
  } catch (e) { $('#hotline-error').textContent = e.message; }
  dirty('messages', 'lines');
}
function renderReOptions() {
  const select = $('#re');
  const keep = select.value;
  const refs = [];
  for (const c of S.conflicts) refs.push([c.id, `${c.id} · ${c.kind.replace('_', ' ')} conflict`]);
  for (const m of [...S.messages].reverse().slice(0, 10)) refs.push([m.id, `${m.id} · ${m.type.replace('_', ' ')}`]);
  for (const a of S.activities.filter((x) => x.party === S.party).slice(-10)) refs.push([a.id, `${a.id} · our ${KIND_LABEL[a.kind] || ''}`]);
  select.replaceChildren(...refs.map(([v, t]) => el('option', { value: v, text: t })));
  const fresh = S.conflicts.find((c) => !S.seenRefs.has(c.id));
  if (fresh) select.value = fresh.id;
  else if (refs.some(([v]) => v === keep)) select.value = keep;
  refs.forEach(([v]) => S.seenRefs.add(v));
}
function renderPhrases() {
  const box = $('#phrase-buttons');
  box.replaceChildren();
  for (const id of PHRASES) {
    const t = S.templates.find((x) => x.id === id);
    if (!t) continue;
    box.append(el('button', {
      type: 'button', dir: t.rtl ? 'rtl' : 'ltr', lang: t.lang, 'data-template': t.id,
      title: t.text, onclick: () => phrase(t),
    }, t.text.replace(/\{(\w+)\}/g, (_, p) => (p === 'ref' ? '…' : `{${p}}`))));
  }
}
function phrase(t) {
  const params = {};
  const ref = $('#re').value;
  const now = serverNow();
  const defaults = { ref, party: S.party, t1: isoMinute(now), t2: isoMinute(new Date(now.getTime() + 3600e3)), place: '' };
  const extra = t.params.filter((p) => p !== 'ref');
  if (!extra.length) {
    if (!ref) { $('#hotline-error').textContent = 'Choose what the phrase is about.'; return; }
    params.ref = ref;
    return sendMessage({ template: t.id, params, about: aboutOf(ref) });
  }
  const form = $('#phrase-form');
  form.replaceChildren(el('strong', { style: 'grid-column: 1 / -1', dir: t.rtl ? 'rtl' : 'ltr', text: t.text }));
  for (const p of t.params) {
    form.append(el('label', { for: `pp-${p}`, text: p }), el('input', { id: `pp-${p}`, name: p, value: defaults[p] ?? '' }));
  }
  form.append(el('span'), el('div', { class: 'actions' },
    el('button', { type: 'submit', class: 'primary' }, 'Send'),
    el('button', { type: 'button', onclick: () => { form.hidden = true; } }, 'Cancel')));
  form.onsubmit = (e) => {
    e.preventDefault();
    for (const p of t.params) params[p] = form.elements[p].value;
    form.hidden = true;
    sendMessage({ template: t.id, params, about: aboutOf(params.ref) });
  };
  form.hidden = false;
  form.elements[t.params[0]].focus();
}
function aboutOf(ref) {
  if (!ref) return undefined;
  if (S.conflicts.some((c) => c.id === ref)) return { kind: 'conflict', id: ref };
  if (S.messages.some((m) => m.id === ref)) return { kind: 'message', id: ref };
  if (S.activities.some((a) => a.id === ref)) return { kind: 'activity', id: ref };
  return undefined;
}
async function sendMessage(body) {
  $('#hotline-error').textContent = '';
  try {
    const sent = await api('POST', M('/messages'), body);
    S.knownMessages.add(sent.id);
    dirty('messages');
    return true;
  } catch (e) {
    $('#hotline-error').textContent = e.message;
    return false;
  }
}

/* ---------------------------------------------------------------- notify: drawing */

const draw = { mode: null, centre: null, radius_m: null, points: [], done: false };
function setDrawMode(mode) {
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
      draw.radius_m = map.distance(draw.centre, e.latlng);
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
  if (draw.mode === 'circle' && draw.centre && !draw.done) { draw.radius_m = map.distance(draw.centre, e.latlng); drawDraft(); }
}
function finishPolygon() {
  // A double-click also fired two clicks: drop the duplicate corner it added.
  const pts = draw.points;
  while (pts.length > 1 && map.distance(pts[pts.length - 1], pts[pts.length - 2]) < 1) pts.pop();
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
  draftLayer.clearLayers();
  const style = { pane: 'draft', color: '#ffffff', weight: 2, dashArray: '6 4', fillColor: '#ffffff', fillOpacity: 0.12, interactive: false };
  if (draw.mode === 'circle' && draw.centre) {
    L.circleMarker(draw.centre, { ...style, radius: 4, fillOpacity: 1 }).addTo(draftLayer);
    if (draw.radius_m) L.circle(draw.centre, { ...style, radius: draw.radius_m }).addTo(draftLayer);
  }
  if (draw.mode === 'polygon' && draw.points.length) {
    (draw.done ? L.polygon(draw.points, style) : L.polyline(draw.points, style)).addTo(draftLayer);
    draw.points.forEach((p) => L.circleMarker(p, { ...style, radius: 3, fillOpacity: 1 }).addTo(draftLayer));
  }
}

/* ---------------------------------------------------------------- notify: the form */

function openNotify() {
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

/* ---------------------------------------------------------------- time slider */

async function onTimeline() {
  const minutes = Number($('#timeline').value);
  const label = $('#timeline-label');
  const badge = $('#mode-badge');
  if (minutes === 0) {
    S.mode = 'live'; S.at = null; S.replay = null;
    label.textContent = 'LIVE';
    badge.hidden = true;
  } else {
    const at = new Date(serverNow().getTime() + minutes * 60e3);
    at.setUTCSeconds(0, 0);
    S.at = at;
    if (minutes < 0) {
      S.mode = 'replay';
      label.textContent = `Replay: the record as it stood at ${fmtTime(at.toISOString())}`;
      try { S.replay = await api('GET', M(`/replay?at=${encodeURIComponent(at.toISOString())}`)); } catch (e) {
        label.textContent = e.message; return;
      }
    } else {
      S.mode = 'planned'; S.replay = null;
      label.textContent = `Planned: activities in force at ${fmtTime(at.toISOString())}`;
    }
    badge.textContent = S.mode === 'replay' ? `REPLAY ${fmtTime(at.toISOString())}` : `PLANNED ${fmtTime(at.toISOString())}`;
    badge.hidden = false;
  }
  renderPicture(); renderConflicts(); renderMessages();
}
function goLive() { $('#timeline').value = '0'; onTimeline(); }

/* ---------------------------------------------------------------- clock */

function tick() {
  const now = serverNow();
  $('#clock').textContent = `${pad(now.getUTCHours())}:${pad(now.getUTCMinutes())}:${pad(now.getUTCSeconds())}`;
  document.querySelectorAll('.countdown[data-deadline]').forEach((n) => {
    const ms = Date.parse(n.dataset.deadline) - now.getTime();
    n.textContent = fmtCountdown(ms);
    n.classList.toggle('overdue', ms < 0);
  });
}

/* ---------------------------------------------------------------- wiring */

function wire() {
  $('#signin-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    $('#signin-error').textContent = '';
    try { S.audio = S.audio || new AudioContext(); } catch { /* no sound */ }
    try { await signIn($('#token').value.trim()); } catch (err) {
      $('#signin-error').textContent = err.status === 401 ? 'This token is unknown or was revoked.' : err.message;
    }
  });
  $('#signout').addEventListener('click', signOut);
  $('#open-notify').addEventListener('click', openNotify);
  $('#n-close').addEventListener('click', closeNotify);
  $('#n-check').addEventListener('click', () => preview());
  $('#notify-form').addEventListener('submit', sendNotice);
  $('#draw-circle').addEventListener('click', () => setDrawMode('circle'));
  $('#draw-polygon').addEventListener('click', () => setDrawMode('polygon'));
  ['#n-lat', '#n-lon', '#n-radius'].forEach((s) => $(s).addEventListener('input', circleFromFields));
  ['#n-kind', '#n-floor', '#n-ceiling', '#n-start', '#n-end'].forEach((s) => $(s).addEventListener('change', autoPreview));
  $('#timeline').addEventListener('input', debounce(onTimeline, 200));
  $('#live').addEventListener('click', goLive);
  $('#alarm-dismiss').addEventListener('click', clearAlarm);
  $('#alarm-ack').addEventListener('click', () => {
    const m = S.alarm;
    if (!m) return;
    // An escalation notice is acknowledged by answering the message it escalates.
    const target = m.needs_ack ? m.id : m.about && m.about.kind === 'message' ? m.about.id : null;
    if (target) ackMessage(target); else clearAlarm();
  });
  $('#free-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = $('#free-text');
    if (!input.value.trim()) return;
    if (await sendMessage({ text: input.value, about: aboutOf($('#re').value) })) input.value = '';
  });
  document.addEventListener('keydown', (e) => {
    if (e.altKey && (e.key === 'n' || e.key === 'N') && S.me && !$('#open-notify').hidden) {
      e.preventDefault(); openNotify(); return;
    }
    if (e.key === 'Escape') {
      if (!$('#alarm').hidden) { clearAlarm(); return; }
      if (!$('#phrase-form').hidden) { $('#phrase-form').hidden = true; return; }
      if (draw.mode === 'polygon' && !draw.done && draw.points.length) { setDrawMode('polygon'); return; }
      if (!$('#notify').hidden) { closeNotify(); return; }
      if (S.mode !== 'live') goLive();
    } else if (e.key === 'Enter' && draw.mode === 'polygon' && !draw.done && draw.points.length
      && (document.activeElement === $('#map') || document.activeElement === document.body)) {
      e.preventDefault(); finishPolygon();
    }
  });
  // Browsers start sound only after a gesture: any key or click in the page unlocks it.
  const unlock = () => { try { S.audio = S.audio || new AudioContext(); S.audio.resume(); } catch { /* no sound */ } };
  document.addEventListener('pointerdown', unlock, { once: true });
  document.addEventListener('keydown', unlock, { once: true });
}

wire();
const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) signIn(saved).catch(() => { sessionStorage.removeItem(TOKEN_KEY); S.token = null; });
