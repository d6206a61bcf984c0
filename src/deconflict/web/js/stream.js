/* The record as Server-Sent Events, read with fetch() so the request can carry the bearer token.
 * Each entry marks parts of the picture dirty (data.js reloads them); a new message is announced once,
 * and what waits on us is read again (the alarm follows it). */
import { $ } from './dom.js';
import { API, M } from './api.js';
import { S, serverNow } from './state.js';
import { dirty } from './data.js';
import { onNewMessage } from './alarm.js';
import { announce } from './live.js';
import { t } from './i18n.js';
import { fmtTime } from './format.js';

/* How long the stream may be down before the page says so plainly: a restart or a failover of a few
 * seconds goes by with "reconnecting…" in the header; longer, the officer must know that what the page
 * shows has stopped following the record and that no new alert can reach it. */
const LOST_AFTER_MS = 5000;
let downSince = null; // the service's time when the stream was last lost (null: live, or not yet opened)
let watching = false;
/* A connection can die without being closed (a link that dropped without a reset): nothing then comes, not
 * even the keep-alives the service sends when it has nothing to say (every Deconflict-Keep-Alive seconds).
 * After several of those periods of silence the stream is taken for dead and opened again. */
const SILENT = new Error('the stream went silent');
let heardAt = 0; // this machine's clock: when the stream last brought anything
let silentAfterMs = null;

function lost() {
  if (downSince === null && silentAfterMs !== null && Date.now() - heardAt > silentAfterMs) {
    downSince = new Date(serverNow().getTime() - (Date.now() - heardAt)); // nothing has come since then
    silentAfterMs = null;
    S.streamAbort.abort(SILENT);
  }
  const banner = $('#offline');
  const shown = downSince !== null && serverNow() - downSince >= LOST_AFTER_MS;
  if (shown) banner.textContent = t('header.streamLost', { time: fmtTime(downSince.toISOString()) });
  banner.hidden = !shown;
}

export async function stream({ onUnauthorised }) {
  const state = $('#stream-state');
  downSince = null;
  if (!watching) { watching = true; setInterval(lost, 1000); } // a request that hangs never returns to the loop
  for (;;) {
    S.streamAbort = new AbortController();
    try {
      // With the hash of the last entry seen, the service can tell us if its record there is another one.
      const held = S.lastHash ? { 'Last-Event-Hash': S.lastHash } : {};
      const res = await fetch(`${API}${M('/events')}?after=${S.lastSeq}`, {
        headers: { Authorization: `Bearer ${S.token}`, Accept: 'text/event-stream', ...held }, signal: S.streamAbort.signal,
      });
      if (res.status === 401) { onUnauthorised(); return; }
      if (!res.ok || !res.body) throw new Error(`stream: HTTP ${res.status}`);
      state.textContent = t('header.streamLive'); state.className = 'stream live';
      downSince = null; lost();
      const keepAlive = Number(res.headers.get('Deconflict-Keep-Alive'));
      silentAfterMs = keepAlive > 0 ? Math.max(3 * keepAlive + 5, 20) * 1000 : null;
      heardAt = Date.now();
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        heardAt = Date.now();
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          handleFrame(frame);
        }
      }
    } catch (e) {
      if (e.name === 'AbortError') { downSince = null; silentAfterMs = null; lost(); return; } // signed out
    }
    silentAfterMs = null;
    state.textContent = t('header.streamReconnecting'); state.className = 'stream down';
    if (downSince === null) downSince = serverNow();
    lost();
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
  if (type === 'rewound') {
    // The record ends before what we had seen (restored from a backup, or failed over): what we hold after
    // its head is not its record, and what was written since the restore may already take those numbers.
    // Go on from the head, read everything again, say so (in the header and aloud), and sound again for
    // everything that waits on us; announce every message the stream brings from now on, whatever its id.
    S.lastSeq = entry.head;
    S.lastHash = null;
    S.knownMessages = new Set();
    S.seenRefs = new Set();
    S.sounded = new Set();
    const state = $('#stream-state');
    state.textContent = t('header.streamRewound');
    state.title = t('header.rewound', { head: entry.head });
    announce(t('header.rewound', { head: entry.head }));
    dirty('messages', 'conflicts', 'waiting', 'lines', 'activities', 'zones', 'tracks');
    return;
  }
  if (typeof entry.seq === 'number' && entry.seq >= S.lastSeq) {
    S.lastSeq = entry.seq;
    S.lastHash = typeof entry.hash === 'string' ? entry.hash : null;
  }
  // An entry stamped later than our idea of the service's time means our clock lags: catch up.
  const stamped = Date.parse(entry.at);
  if (stamped > serverNow().getTime() + 1000) S.offsetMs = stamped - Date.now();
  // A message in the entry is as it was sent: its status now (settled, closed) is read again, with
  // the conflicts, since one acknowledgement settles both and a resolution closes the alerts.
  if (type.startsWith('message.')) {
    if (type === 'message.sent' && entry.message) onNewMessage(entry.message);
    dirty('messages', 'conflicts', 'waiting', 'lines');
  } else if (type.startsWith('conflict.')) dirty('conflicts', 'messages', 'waiting', 'activities', 'tracks');
  else if (type.startsWith('activity.')) dirty('activities', 'conflicts', 'messages', 'waiting');
  else if (type.startsWith('zone.')) dirty('zones', 'conflicts', 'messages', 'waiting');
}
