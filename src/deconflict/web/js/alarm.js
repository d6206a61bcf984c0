/* The alarm: what waits on our party (GET …/waiting), at sign-in, on reload and live.
 *
 * While anything waits, a banner shows the most urgent item with its Acknowledge, and under it the
 * list "Waiting on us" (overdue first, the rung reached, the deadline in UTC and the time left in
 * minutes and seconds); the tab title counts them; the sound plays for each new item and each rung
 * climbed (and again every minute while something is overdue, unless silenced). The banner goes
 * when nothing waits any more, however that came about (acknowledged here, in another window, by a
 * hotline phrase, or the conflict resolved): it follows the service, not the clicks. Escape never
 * dismisses it; "Silence" stops the sound and the flashing until something new arrives.
 *
 * Screen readers hear each new item once (live.js announce); the banner and its countdowns are not
 * a live region. */
import { $, el } from './dom.js';
import { api, M } from './api.js';
import { S, serverNow } from './state.js';
import { refresh } from './data.js';
import { fmtTime } from './format.js';
import { conflictKindName, isRtl, messageTypeName, rungName, t } from './i18n.js';
import { countdown, tick } from './clock.js';
import { announce, patchList, partyName } from './live.js';

export function beep() {
  S.beeps = (S.beeps || 0) + 1;
  try {
    const ctx = audio();
    if (ctx.state === 'suspended') ctx.resume();
    [0, 0.3, 0.6].forEach((at) => {
      const osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.type = 'square'; osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, ctx.currentTime + at);
      gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + at + 0.22);
      osc.connect(gain).connect(ctx.destination);
      osc.start(ctx.currentTime + at); osc.stop(ctx.currentTime + at + 0.25);
    });
  } catch (e) { console.warn('sound', e); }
}

/* The browser plays a page's sound only once someone has clicked or typed in it: after a reload (a browser
 * restarted at 03:00) the alarm came back silent, with nothing on screen to say so. Said under the banner while
 * the sound is held back; the first click or key starts it. */
function soundState() {
  let running = true;
  try { running = audio().state === 'running'; } catch { /* no sound in this browser at all: nothing to say */ }
  $('#alarm-sound-off').hidden = running;
}

/* The page's one audio context (made on first use; the browser may hold it suspended until a gesture). */
function audio() {
  if (!S.audio) {
    S.audio = new AudioContext();
    S.audio.addEventListener('statechange', soundState);
  }
  return S.audio;
}
for (const event of ['pointerdown', 'keydown']) {
  document.addEventListener(event, () => {
    if (S.audio && S.audio.state === 'suspended') S.audio.resume().then(soundState, soundState);
  }, { capture: true });
}

let lastRepeat = 0; // when the overdue reminder last sounded (this machine's clock)
const overdue = (item) => Date.parse(item.deadline) <= serverNow().getTime();

/* What waits on us, overdue first, then by deadline. */
export function waitingItems() {
  const items = [...((S.waiting && S.waiting.items) || [])];
  return items.sort((a, b) => (overdue(b) - overdue(a)) || a.deadline.localeCompare(b.deadline));
}

/* "C2 · zone conflict" / "M7 · line check" */
function itemName(item) {
  return item.kind === 'conflict'
    ? t('waiting.conflict', { id: item.id, kind: conflictKindName(item.type) })
    : t('waiting.message', { id: item.id, type: messageTypeName(item.type) });
}

function rungText(item) {
  const name = item.rung_name ? rungName(item.rung_name) : '';
  return item.rung ? t('waiting.escalated', { steps: item.rung, rung: name }) : t('waiting.level', { rung: name || t('rungs.duty officer') });
}

export function renderAlarm() {
  const items = waitingItems();
  const banner = $('#alarm');
  // A failed acknowledgement's words stay while what it was about still waits (try again), not once it is gone
  // (acknowledged elsewhere, resolved): they read as if a later action had failed too.
  const failed = $('#alarm-error');
  if (failed.dataset.about && !items.some((i) => i.id === failed.dataset.about)) {
    failed.textContent = '';
    delete failed.dataset.about;
  }
  if (!items.length) {
    if (!banner.hidden && banner.contains(document.activeElement)) focusAfterAlarm(S.alarm);
    banner.hidden = true;
    S.alarm = null;
    document.title = t('app.title');
    return;
  }
  // Something new, or a rung climbed: sound, flash again, say it once.
  const fresh = items.filter((i) => !S.sounded.has(`${i.id}:${i.rung}`));
  fresh.forEach((i) => S.sounded.add(`${i.id}:${i.rung}`));
  const top = items[0];
  S.alarm = top;
  banner.hidden = false;
  $('#alarm-tag').textContent = t('waiting.tag', { count: items.length });
  const text = $('#alarm-text');
  text.textContent = t('waiting.top', { name: itemName(top), text: top.summary || rungText(top) });
  // The line reads in the page's direction from its start (cut at its end): with every value isolated,
  // "plaintext" found no strong letter and laid a Hebrew line out left to right, cutting its start.
  text.dir = isRtl() ? 'rtl' : 'ltr';
  text.title = top.summary || '';
  $('#alarm-ack').dataset.kind = top.kind;
  $('#alarm-ack').dataset.id = top.id;
  $('#alarm-ack').setAttribute('aria-label', t('waiting.ackItem', { name: itemName(top) }));
  // A tab title is plain text: no bidi isolates (the tab strip would show them as boxes).
  document.title = t('waiting.tabTitle', { count: items.length, id: top.id }).replace(/[\u2066-\u2069]/g, '');
  patchList($('#waiting-list'), items.map((i) => ({ key: i.id, node: waitingRow(i) })));
  if (fresh.length) {
    S.silenced = false;
    beep();
    lastRepeat = Date.now();
    announce(fresh.map((i) => t('waiting.announce', { name: itemName(i), rung: rungText(i) })).join(' '));
  }
  soundState();
  banner.classList.toggle('silenced', S.silenced);
  $('#alarm-silence').setAttribute('aria-pressed', String(S.silenced));
  tick();
}

function waitingRow(item) {
  // Once the first deadline has passed it stays passed ("overdue by", its time in the countdown's title): what is
  // left to say is when the ladder climbs again and to whom, in its place (one line at 1366 px, as before), with
  // its own countdown (the time alone drops the seconds: 06:21:55 read as 06:21 would seem past at 06:21:30).
  const climbs = overdue(item) && item.next_step_at;
  // Acknowledge right after the item's name: a row that wraps (an escalated one, in a longer language) keeps it on
  // its first line, in view, where the banner's few lines would otherwise hide it below the edge
  return el('li', { class: `waiting-item${overdue(item) ? ' overdue' : ''}`, 'data-waiting': item.id, 'data-kind': item.kind },
    el('button', { type: 'button', class: 'link', 'data-action': 'show', 'data-id': item.id, title: t('waiting.show') }, itemName(item)),
    el('button', { type: 'button', class: 'ack', 'data-action': 'ack', 'data-kind': item.kind, 'data-id': item.id,
      'aria-label': t('waiting.ackItem', { name: itemName(item) }) }, t('actions.acknowledge')),
    el('span', { class: 'rung', 'data-rung': item.rung_name || '', 'data-escalation': item.rung }, rungText(item)),
    climbs ? null : el('span', { class: 'by' }, t('waiting.by', { time: fmtTime(item.deadline) })),
    countdown(item.deadline),
    climbs ? el('span', { class: 'next', 'data-next': item.next_step_at },
      t('waiting.next', { rung: rungName(item.next_rung_name), time: fmtTime(item.next_step_at) }), ' ',
      countdown(item.next_step_at)) : null);
}

/* Acknowledge a conflict or a message that waits on us; one acknowledgement settles the conflict and its alerts. */
export async function acknowledge(kind, id) {
  $('#alarm-error').textContent = '';
  delete $('#alarm-error').dataset.about;
  const path = kind === 'conflict' ? `/conflicts/${encodeURIComponent(id)}/acknowledge` : `/messages/${encodeURIComponent(id)}/acknowledge`;
  try {
    await api('POST', M(path));
  } catch (e) {
    $('#alarm-error').textContent = e.message;
    $('#alarm-error').dataset.about = id;
  }
  await refresh(['waiting', 'conflicts', 'messages', 'lines']);
}

/* The banner went while focus was in it: put focus where the item lives, not on the page body. */
function focusAfterAlarm(item) {
  const card = item && document.querySelector(`[data-conflict="${item.id}"], [data-message="${item.id}"]`);
  (card || $('#conflicts-h')).focus();
}

function onList(e) {
  const button = e.target.closest('button[data-action]');
  if (!button) return;
  const { action, kind, id } = button.dataset;
  if (action === 'ack') ackFrom(button, kind, id);
  else if (action === 'show') {
    const card = document.querySelector(`[data-conflict="${id}"], [data-message="${id}"]`);
    if (card) { card.scrollIntoView({ block: 'nearest' }); card.focus(); }
    if (S.onShow) S.onShow(kind, id);
  }
}

/* After an Acknowledge in the banner, focus stays in the banner while something still waits. */
async function ackFrom(button, kind, id) {
  const row = button.closest('li');
  const next = row && (row.nextElementSibling || row.previousElementSibling);
  const nextId = next && next.dataset.waiting;
  await acknowledge(kind, id);
  if ($('#alarm').hidden) return;
  const again = nextId && document.querySelector(`#waiting-list [data-waiting="${nextId}"] button.ack`);
  (again || $('#alarm-ack')).focus();
}

export function silence() {
  S.silenced = true;
  $('#alarm').classList.add('silenced');
  $('#alarm-silence').setAttribute('aria-pressed', 'true');
}

/* A message arrived on the stream (each once): screen readers hear it once; what waits on us is
 * read again by the stream, and the alarm follows that. */
export function onNewMessage(m) {
  if (S.knownMessages.has(m.id)) return;
  S.knownMessages.add(m.id);
  if (m.from === S.party) return;
  announce(t('hotline.announce', { id: m.id, type: messageTypeName(m.type), from: partyName(m.from_party || m.from), text: m.display || m.text }));
}

/* Overdue and not silenced: sound again every minute. */
function repeat() {
  if (!S.alarm || S.silenced || $('#alarm').hidden) return;
  if (!waitingItems().some(overdue)) return;
  const now = Date.now();
  if (now - lastRepeat >= 60000) { lastRepeat = now; beep(); }
}

/* Browsers start sound only after a gesture: any key or click in the page unlocks it. */
export function initAlarm() {
  $('#alarm-ack').addEventListener('click', () => {
    const { kind, id } = $('#alarm-ack').dataset;
    if (id) ackFrom($('#alarm-ack'), kind, id);
  });
  $('#alarm-silence').addEventListener('click', silence);
  $('#waiting-list').addEventListener('click', onList);
  const unlock = () => { try { S.audio = S.audio || new AudioContext(); S.audio.resume(); } catch { /* no sound */ } };
  document.addEventListener('pointerdown', unlock, { once: true });
  document.addEventListener('keydown', unlock, { once: true });
  setInterval(repeat, 5000);
}

export const alarmShown = () => !$('#alarm').hidden;
