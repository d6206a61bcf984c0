/* What the page holds from the service, and how panels learn it changed.
 *
 *   subscribe(keys, render)  a panel's render function runs after any of `keys` was reloaded or changed
 *   refresh(keys)            reload those parts now (awaitable), then run the subscribed renders
 *   dirty(...keys)           reload soon (debounced): what a stream event or an action calls
 *   changed(...keys)         run the renders without loading (e.g. 'time' when the time bar moves)
 *
 * Keys: zones, activities, conflicts, messages, lines, tracks, waiting (loaded) and time (view only). */
import { api, M } from './api.js';
import { S, serverNow } from './state.js';
import { compareIds } from './format.js';
import { debounce } from './dom.js';

/* The live picture holds what is in force or to come and what ended in the last day (grey on the map), and
 * every conflict still awaiting an acknowledgement, whatever its window. Unbounded, every reload read every
 * activity ever notified and every conflict acknowledged and never resolved: after 14 months of notices,
 * 9.3 MB, 20,000 shapes, 6,000 cards and a 14 s sign-in. Older than the time bar reaches (a day), the past is
 * replay's: deconflict replay --at, GET …/replay?at=. */
export const RECENT_MS = 24 * 3600e3;
const recent = () => encodeURIComponent(new Date(serverNow().getTime() - RECENT_MS).toISOString());
const byDetection = (a, b) => (a.detected_at < b.detected_at ? -1 : a.detected_at > b.detected_at ? 1 : compareIds(a.id, b.id));

const LOADERS = {
  zones: async () => { S.zones = await api('GET', M('/zones')); },
  activities: async () => { S.activities = await api('GET', M(`/activities?start=${recent()}`)); },
  conflicts: async () => {
    // the open ones first: one acknowledged between the two reads is then in both, and its later state counts
    const open = await api('GET', M('/conflicts?status=open'));
    const acknowledged = await api('GET', M(`/conflicts?status=acknowledged&start=${recent()}`));
    const later = new Set(acknowledged.map((c) => c.id));
    S.conflicts = [...open.filter((c) => !later.has(c.id)), ...acknowledged].sort(byDetection);
  },
  // The channel as it ends (its last 500 messages: the first 500 would hide every later one), and any older
  // message that still waits on us: what we must answer stays in reach (shown, and offered to answer).
  // What waits on us is read first: a message committed between the two reads is then in the newest, so what
  // is added from the first is older than all of them (and the stream resumes after the newest read).
  messages: async () => {
    const awaited = await api('GET', M('/messages?awaiting=true&limit=5000'));
    const newest = await api('GET', M('/messages?newest=true'));
    const have = new Set(newest.map((m) => m.id));
    S.messages = [...awaited.filter((m) => !have.has(m.id)), ...newest].sort((a, b) => a.seq - b.seq);
  },
  lines: async () => { S.lines = await api('GET', M('/lines')); },
  tracks: async () => { S.tracks = (await api('GET', M('/tracks'))).tracks; S.tracksRead = true; },
  waiting: async () => { S.waiting = await api('GET', M('/waiting')); },
};

const subscribers = []; // [{ keys: Set, render }], run in subscription order

export function subscribe(keys, render) { subscribers.push({ keys: new Set(keys), render }); }

export function changed(...keys) {
  for (const { keys: wanted, render } of subscribers) {
    if (keys.some((k) => wanted.has(k))) {
      try { render(); } catch (e) { console.error('render', e); }
    }
  }
}

export async function refresh(keys) {
  await Promise.all(keys.filter((k) => LOADERS[k]).map((k) => LOADERS[k]().catch((e) => console.warn(k, e))));
  changed(...keys);
}

const pending = new Set();
// Entries that come together are read once: 80 ms after the last, but at least once a second under traffic
// that never pauses (a plain debounce kept a busy channel from reloading for many seconds). One read at a
// time: an older answer finishing last would show what was already replaced.
let reading = false;
const flush = debounce(() => {
  if (reading) { flush(); return; } // the read under way ends first; what it left is read after it
  const w = [...pending];
  pending.clear();
  reading = true;
  refresh(w).finally(() => { reading = false; });
}, 80, 1000);
export function dirty(...keys) { keys.forEach((k) => pending.add(k)); flush(); }
