/* The hotline's messages, newest first, each with its state in words (awaiting whom and by when,
 * settled, closed and why, the rung reached) and its Acknowledge; a message arriving while the list
 * is scrolled down is cued ("↑ 1 new above — show") instead of landing out of sight. The list is
 * patched in place by id (live.js) and its clicks handled by delegation. */
import { $, el } from './dom.js';
import { S } from './state.js';
import { fmtTime } from './format.js';
import { messageTypeName, resolutionName, rungName, t } from './i18n.js';
import { countdown, tick } from './clock.js';
import { acknowledge } from './alarm.js';
import { patchList, partyList } from './live.js';

/* A message's state in words (and its Acknowledge while it awaits us); `ladder`: the escalation rungs. */
function messageState(m, ladder) {
  const state = el('div', { class: 'state' });
  const acked = Object.keys(m.acknowledged || {});
  const status = m.status || (!m.needs_ack ? 'info' : acked.length ? 'acknowledged' : 'awaiting');
  const live = S.mode !== 'replay';
  if (status === 'acknowledged') {
    const at = m.acknowledged_at || (acked.length && m.acknowledged[acked[0]].at);
    state.append(el('span', { class: 'settled', 'data-status': 'acknowledged' },
      at ? t('hotline.settledAt', { parties: partyList(acked), time: fmtTime(at) }) : t('hotline.settled', { parties: partyList(acked) })));
  } else if (status === 'closed') {
    const note = closedReason(m);
    state.append(el('span', { class: 'closed', 'data-status': 'closed', 'data-resolution': m.closed_resolution || null },
      m.closed_at ? t('hotline.closedAt', { time: fmtTime(m.closed_at), note }) : t('hotline.closed', { note })));
  } else if (status === 'awaiting') {
    const waitingOn = m.awaiting || (m.to || []).filter((p) => !acked.includes(p));
    const us = waitingOn.includes(S.party);
    state.append(el('span', { 'data-status': 'awaiting' }, us ? t('hotline.awaitingUs', { time: fmtTime(m.deadline) })
      : t('hotline.awaitingParties', { parties: partyList(waitingOn), time: fmtTime(m.deadline) })));
    if (live) state.append(countdown(m.deadline));
  }
  if (m.needs_ack) {
    const steps = m.escalation_steps || 0;
    const rung = ladder[Math.min(steps, ladder.length - 1)];
    const rungAs = rung ? rungName(rung.name) : t('rungs.duty officer');
    if (status === 'awaiting' || steps) {
      // how far it climbed stays said once it is settled or closed, no longer in the alarm's red
      const climbed = status === 'awaiting' ? 'escalated' : 'escalated past';
      state.append(el('span', { class: steps ? climbed : 'level', 'data-escalation': steps, 'data-rung': rung ? rung.name : '' },
        steps ? t('hotline.escalated', { steps, rung: rungAs }) : t('hotline.level', { rung: rungAs })));
    }
    if (status === 'awaiting' && live && (m.awaiting || m.to || []).includes(S.party) && !acked.includes(S.party)) {
      state.append(el('button', { type: 'button', class: 'ack', 'data-action': 'ack', 'data-ack-message': m.id,
        'aria-label': t('hotline.ackMessage', { id: m.id }) }, t('actions.acknowledge')));
    }
  }
  return state;
}

/* Why an alert closed, in the reader's words: the conflict it was about and how that was resolved
 * (closed_resolution), else the service's note as given. */
function closedReason(m) {
  const how = m.closed_resolution;
  const id = (m.about && m.about.kind === 'conflict' && m.about.id)
    || ((/conflict (\S+) resolved/.exec(m.closed_note || '') || [])[1]);
  if (how && id) return t('hotline.closedResolved', { id, how: resolutionName(how) });
  return m.closed_note || t('hotline.noNote');
}
/* A message's text with each ISO time kept on one line (a Hebrew line broke "2026-12-" / "02T03:00"). */
const ISO_TIME = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?/g;
function unbroken(text) {
  const out = [];
  let at = 0;
  for (const m of String(text || '').matchAll(ISO_TIME)) {
    if (m.index > at) out.push(text.slice(at, m.index));
    out.push(el('span', { class: 'ts', dir: 'ltr' }, m[0]));
    at = m.index + m[0].length;
  }
  if (at < String(text || '').length) out.push(text.slice(at));
  return out;
}
/* What a message is about, in words: a message about another (an escalation notice, "no acknowledgement of
 * M12") also names the conflict that one alerted to, when the page holds it: the officer looks for C7. */
function aboutText(about, byId) {
  if (about.kind === 'message') {
    const first = byId.get(about.id);
    if (first && first.about && first.about.kind === 'conflict') return t('hotline.reVia', { id: about.id, conflict: first.about.id });
  }
  return t('hotline.re', { id: about.id });
}
/* The sender: a party's code as it is, the service's own messages worded. */
const senderName = (from) => (from === 'system' ? t('hotline.system') : from);

function messageNode(m, ladder, byId) {
  const status = m.status || '';
  const pending = status === 'awaiting' && (m.awaiting || []).includes(S.party);
  return el('li', { class: `msg ${m.type}${pending ? ' pending' : ''}${status ? ` ${status}` : ''}`, 'data-message': m.id,
    'data-status': status || null, tabindex: '-1' },
  el('div', { class: 'meta' },
    el('strong', {}, m.id), el('span', {}, messageTypeName(m.type)),
    el('span', {}, t('hotline.fromTo', { from: senderName(m.from), to: (m.to || []).join(', ') })), el('span', {}, fmtTime(m.sent_at)),
    m.about ? el('span', { 'data-about': m.about.id }, aboutText(m.about, byId)) : null),
  el('p', { class: 'text', dir: m.rtl ? 'rtl' : 'ltr', lang: m.lang }, unbroken(m.display || m.text)),
  m.free_text ? el('div', { class: 'free' }, t('hotline.freeAsWritten', { lang: m.lang })) : null,
  messageState(m, ladder));
}

/* Messages the reader has had in view (ids): a new one arriving while the list is scrolled down is out of sight. */
const rendered = new Set();
let unseenAbove = 0;

/* "3 new messages above": a button over the list while new messages wait out of sight; it scrolls to them. */
function newAboveCue(list) {
  let cue = document.getElementById('new-above');
  if (!cue) {
    cue = el('button', { id: 'new-above', type: 'button', class: 'new-above', hidden: true });
    cue.addEventListener('click', () => { list.scrollTop = 0; hideCue(); list.querySelector('li')?.focus?.(); });
    list.addEventListener('scroll', () => { if (list.scrollTop < 24) hideCue(); });
    list.before(cue);
  }
  return cue;
}
function hideCue() {
  unseenAbove = 0;
  const cue = document.getElementById('new-above');
  if (cue) cue.hidden = true;
}

export function renderMessages() {
  const list = $('#messages');
  const atTop = list.scrollTop < 24; // newest first: keep the newest in view unless the reader scrolled down
  const ladder = (S.mech.rules && S.mech.rules.ladder) || [];
  const source = S.mode === 'replay' && S.replay ? S.replay.messages : S.messages;
  const me = S.me && S.me.member.id;
  const arrived = source.filter((m) => !rendered.has(m.id));
  // what this member just sent is no news to it: it is shown (the list goes to the newest), not counted as new
  const sentHere = arrived.some((m) => m.from === me);
  const fresh = arrived.filter((m) => m.from !== me).length;
  const first = rendered.size === 0;
  source.forEach((m) => rendered.add(m.id));
  if (!source.length) patchList(list, [{ key: 'empty', node: el('li', { class: 'empty' }, t('hotline.empty')) }]);
  else {
    const byId = new Map(source.map((m) => [m.id, m])); // once a render: an escalation notice names its alert's conflict
    patchList(list, [...source].reverse().map((m) => ({ key: m.id, node: messageNode(m, ladder, byId) })));
  }
  const cue = newAboveCue(list);
  if (atTop || (sentHere && S.mode !== 'replay')) {
    list.scrollTop = 0;
    hideCue();
  } else if (fresh && !first && S.mode !== 'replay') {
    unseenAbove += fresh;
    cue.textContent = t('hotline.newAbove', { count: unseenAbove });
    cue.hidden = false;
  }
  tick();
}

/* Acknowledge a message; focus stays on it. */
async function ackMessage(id) {
  await acknowledge('message', id);
  const node = document.querySelector(`[data-message="${id}"]`);
  if (node) node.focus();
}

/* DOM wiring (at load): Acknowledge on a message. */
export function initMessages() {
  $('#messages').addEventListener('click', (e) => {
    const button = e.target.closest('button[data-action=ack]');
    if (button) ackMessage(button.dataset.ackMessage);
  });
}
