/* The common operating picture of one member: map, conflicts, hotline, notice form, time bar.
 * Plain browser ES modules, no build step. Every request goes to this service (the API under
 * /api/v1); times are the service's (GET /me gives its clock), so countdowns do not depend on this
 * machine's clock. This module signs in, subscribes each panel to the data it shows, starts the
 * stream and the timers, and routes the global keys. */
import { $ } from './dom.js';
import { api, M } from './api.js';
import { S } from './state.js';
import { refresh, subscribe } from './data.js';
import { stream } from './stream.js';
import { syncClock, tick } from './clock.js';
import { initAlarm, renderAlarm } from './alarm.js';
import { initMap, renderPicture } from './map.js';
import { renderTracks } from './tracks.js';
import { escapeConflicts, initConflicts, renderConflicts, tracksRead } from './conflicts.js';
import {
  dropDrafts, escapeHotline, initHotline, renderPhrases, renderRecipients, renderReOptions, restoreDraft,
} from './hotline.js';
import { initMessages, renderMessages } from './messages.js';
import { renderLines } from './lines.js';
import { bindNotifyToMap, canNotify, enterNotify, escapeNotify, initNotify, openNotify } from './notify.js';
import { escapeTimebar, initTimebar } from './timebar.js';
import { roleName, setLanguage, t } from './i18n.js';

const TOKEN_KEY = 'deconflict.token';
const PALETTE = ['#c084fc', '#38bdf8', '#4ade80', '#f472b6', '#facc15', '#2dd4bf'];

/* Which render runs after which data changed (in this order). */
subscribe(['lines'], renderLines);
subscribe(['zones', 'activities', 'conflicts', 'time'], renderPicture);
subscribe(['tracks'], renderTracks);
subscribe(['tracks'], tracksRead);
subscribe(['conflicts', 'messages', 'time'], renderConflicts); // messages: how far a conflict's alerts climbed
subscribe(['messages', 'time'], renderMessages);
subscribe(['messages', 'conflicts', 'activities', 'waiting'], renderReOptions);
subscribe(['waiting'], renderAlarm);

async function signIn(token) {
  S.token = token;
  const me = await api('GET', '/me');
  sessionStorage.setItem(TOKEN_KEY, token);
  S.me = me;
  S.party = me.member.party;
  S.offsetMs = Date.parse(me.now) - Date.now();
  await setLanguage(me.member.language); // <html lang dir>, static texts; every render after this is worded in it
  document.title = t('app.title');
  S.mech = await api('GET', M());
  const parties = S.mech.members.filter((m) => m.role === 'party').map((m) => m.id).sort();
  parties.forEach((p, i) => { S.colours[p] = PALETTE[i % PALETTE.length]; });
  try { S.templates = await api('GET', M('/templates')); } catch { S.templates = []; }
  $('#signin').hidden = true;
  $('#app').hidden = false;
  $('#mech-name').textContent = S.mech.name;
  $('#who').textContent = t('header.who', { name: me.member.name, id: me.member.id, role: roleName(me.member.role) });
  document.documentElement.dataset.member = me.member.id;
  $('#open-notify').hidden = me.member.role !== 'party';
  $('#phrases').hidden = me.member.role !== 'party' && me.member.role !== 'facilitator';
  bindNotifyToMap(initMap());
  // The stream resumes after the newest message we hold, so it need not replay the whole record.
  // Messages are read first: every other part of the picture is then read at that point or later,
  // and entries between are replayed harmlessly (each only triggers a refresh).
  await refresh(['messages']);
  await refresh(['zones', 'activities', 'conflicts', 'lines', 'tracks']);
  // What was already waiting on us (a shift taking over, a reload) sounds now, not only what arrives.
  await refresh(['waiting']);
  S.messages.forEach((m) => S.knownMessages.add(m.id));
  S.lastSeq = S.messages.reduce((top, m) => Math.max(top, m.seq || 0), 0);
  S.lastHash = null; // the stream tells the hash of each entry it sends; none known for this one yet
  renderPhrases();
  renderRecipients();
  restoreDraft();
  stream({ onUnauthorised: signOut });
  setInterval(tick, 1000);
  setInterval(() => refresh(['lines', 'waiting']), 30000);
  setInterval(syncClock, 60000);
  // Position reports are not record entries: the tactical picture is polled while the view is live.
  setInterval(() => { if (S.mode === 'live' && !document.hidden) refresh(['tracks']); }, 2000);
  tick();
}

/* The sign-in under way (null: none). One at a time: two would both draw the map, and the one that failed
 * would clear the token under the other. */
let signingIn = null;
const signedIn = () => !$('#app').hidden;
function signInOnce(token) {
  const attempt = signIn(token);
  signingIn = attempt;
  attempt.catch(() => {}).finally(() => { if (signingIn === attempt) signingIn = null; });
  return attempt;
}

/* `byHand`: the officer signed out (the tab's free text goes too); else the service turned the token away. */
function signOut(byHand = false) {
  sessionStorage.removeItem(TOKEN_KEY);
  if (byHand === true) dropDrafts();
  if (S.streamAbort) S.streamAbort.abort();
  location.reload();
}

/* Escape closes what holds focus (a Resolve form, the phrase form or its place picking, the notice
 * form), else the first of them that is open, else returns to the live picture. It never dismisses
 * the alarm: that goes when nothing waits on us any more. */
/* Alt+N: the N key whatever the layout says it types (a Hebrew, Arabic or Russian layout gives its own letter,
 * a Mac's Option+N a dead key); a Latin layout's own letter N wherever it sits. */
const isAltN = (e) => e.altKey && (e.key === 'n' || e.key === 'N' || (e.code === 'KeyN' && !/^[a-z]$/i.test(e.key)));

function onKey(e) {
  if (isAltN(e) && canNotify()) {
    e.preventDefault(); openNotify(); return;
  }
  if (e.key === 'Escape') {
    const inside = (sel) => { const box = document.querySelector(sel); return box && box.contains(document.activeElement); };
    if (escapeConflicts()) return;
    if (inside('#phrase-form') && escapeHotline()) return;
    if (inside('#notify') && escapeNotify()) return;
    if (escapeHotline() || escapeNotify()) return;
    escapeTimebar();
  } else if (e.key === 'Enter' && enterNotify()) {
    e.preventDefault();
  }
}

function wire() {
  $('#signin-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    $('#signin-error').textContent = '';
    try { S.audio = S.audio || new AudioContext(); } catch { /* no sound */ }
    if (signingIn) {
      // A sign-in is under way (the token this tab kept, just after a reload; or an earlier press of Enter): one
      // at a time. Signed in by it, the page is there; only if it was refused does the token typed here sign in.
      try { await signingIn; return; } catch { /* refused: the typed token below */ }
    }
    if (signedIn()) return;
    try { await signInOnce($('#token').value.trim()); } catch (err) {
      $('#signin-error').textContent = err.status === 401 ? t('signin.unknownToken') : err.message;
    }
  });
  $('#signout').addEventListener('click', () => signOut(true));
  initAlarm();
  initConflicts();
  initNotify();
  initMessages();
  initHotline();
  initTimebar();
  document.addEventListener('keydown', onKey);
}

wire();
// Until the member is known, the sign-in page follows the browser's language.
await setLanguage(navigator.language).catch((e) => console.warn('language', e));
document.title = t('app.title');
// The token this tab kept signs in again (a reload), unless a sign-in from the form began while the words above
// were loading (the form is live from wire() on, and keeps its token in the tab once /me answers): signing in
// a second time would fail (the map is drawn already) and forget the token under the first sign-in, whose
// next requests would say "Bearer null", get 401 and sign the page out.
const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved && !signingIn && !signedIn()) {
  signInOnce(saved).catch(() => { sessionStorage.removeItem(TOKEN_KEY); S.token = null; });
}
