/* The hotline: line states in the header, the channel's messages (newest first), acknowledging a
 * message, the "About" picker, the standard phrases and free text. */
import { $, el } from './dom.js';
import { api, M } from './api.js';
import { S, isoMinute, serverNow } from './state.js';
import { dirty } from './data.js';
import { KIND_LABEL, fmtTime } from './format.js';
import { countdown, tick } from './clock.js';
import { clearAlarm, setAwaitingCount } from './alarm.js';

/* Standard phrases a duty officer sends; the others are the service's own (alerts, line checks). */
const PHRASES = ['acknowledged', 'holding', 'acknowledged_amending', 'proceeding_as_notified', 'query_activity', 'incident_at'];

export function showHotlineError(text) { $('#hotline-error').textContent = text; }

export function renderLines() {
  const box = $('#lines');
  box.replaceChildren(...Object.entries(S.lines).map(([p, s]) =>
    el('span', { class: `line ${s}`, 'data-line': p, title: `${p} line: ${s}`, text: `${p} ${s}` })));
}

export function renderMessages() {
  const list = $('#messages');
  const atTop = list.scrollTop < 24; // newest first: keep the newest in view unless the reader scrolled down
  const ladder = (S.mech.rules && S.mech.rules.ladder) || [];
  const source = S.mode === 'replay' && S.replay ? S.replay.messages : S.messages;
  list.replaceChildren();
  if (!source.length) list.append(el('li', { class: 'empty', text: 'No message on the channel.' }));
  const waitingForUs = source.filter((m) => m.needs_ack && (m.to || []).includes(S.party) && !(S.party in (m.acknowledged || {})));
  setAwaitingCount(waitingForUs.length);
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

export async function ackMessage(id) {
  try {
    await api('POST', M(`/messages/${encodeURIComponent(id)}/acknowledge`));
    if (S.alarm && (S.alarm.id === id || (S.alarm.about && S.alarm.about.id === id))) clearAlarm();
  } catch (e) { showHotlineError(e.message); }
  dirty('messages', 'lines');
}

export function renderReOptions() {
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

export function renderPhrases() {
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
    if (!ref) { showHotlineError('Choose what the phrase is about.'); return; }
    params.ref = ref;
    sendMessage({ template: t.id, params, about: aboutOf(ref) });
    return;
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

/* What a reference (C…, M…, an activity id) is, for a message's "about". */
export function aboutOf(ref) {
  if (!ref) return undefined;
  if (S.conflicts.some((c) => c.id === ref)) return { kind: 'conflict', id: ref };
  if (S.messages.some((m) => m.id === ref)) return { kind: 'message', id: ref };
  if (S.activities.some((a) => a.id === ref)) return { kind: 'activity', id: ref };
  return undefined;
}

export async function sendMessage(body) {
  showHotlineError('');
  try {
    const sent = await api('POST', M('/messages'), body);
    S.knownMessages.add(sent.id);
    dirty('messages');
    return true;
  } catch (e) {
    showHotlineError(e.message);
    return false;
  }
}

/* Escape: close the phrase form if it is open; true if it was. */
export function escapeHotline() {
  if ($('#phrase-form').hidden) return false;
  $('#phrase-form').hidden = true;
  return true;
}

export function initHotline() {
  $('#free-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = $('#free-text');
    if (!input.value.trim()) return;
    if (await sendMessage({ text: input.value, about: aboutOf($('#re').value) })) input.value = '';
  });
}
