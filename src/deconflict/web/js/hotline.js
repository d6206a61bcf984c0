/* The hotline: line states in the header, the channel's messages (newest first), acknowledging a
 * message, the "About" picker, the standard phrases and free text. */
import { $, el } from './dom.js';
import { api, M } from './api.js';
import { S, isoMinute, serverNow } from './state.js';
import { dirty } from './data.js';
import { fmtTime } from './format.js';
import { conflictKindName, kindName, lineStateName, messageTypeName, phraseParamName, rungName, t } from './i18n.js';
import { countdown, tick } from './clock.js';
import { clearAlarm, setAwaitingCount } from './alarm.js';

/* Standard phrases a duty officer sends; the others are the service's own (alerts, line checks). */
const PHRASES = ['acknowledged', 'holding', 'acknowledged_amending', 'proceeding_as_notified', 'query_activity', 'incident_at'];

export function showHotlineError(text) { $('#hotline-error').textContent = text; }

export function renderLines() {
  const box = $('#lines');
  box.replaceChildren(...Object.entries(S.lines).map(([p, s]) =>
    el('span', { class: `line ${s}`, 'data-line': p, 'data-state': s, title: t('hotline.lineTitle', { party: p, state: lineStateName(s) }),
      text: t('hotline.lineChip', { party: p, state: lineStateName(s) }) })));
}

export function renderMessages() {
  const list = $('#messages');
  const atTop = list.scrollTop < 24; // newest first: keep the newest in view unless the reader scrolled down
  const ladder = (S.mech.rules && S.mech.rules.ladder) || [];
  const source = S.mode === 'replay' && S.replay ? S.replay.messages : S.messages;
  list.replaceChildren();
  if (!source.length) list.append(el('li', { class: 'empty', text: t('hotline.empty') }));
  const waitingForUs = source.filter((m) => m.needs_ack && (m.to || []).includes(S.party) && !(S.party in (m.acknowledged || {})));
  setAwaitingCount(waitingForUs.length);
  for (const m of [...source].reverse()) { // newest first
    const acked = Object.keys(m.acknowledged || {});
    const forMe = (m.to || []).includes(S.party);
    const waiting = m.needs_ack && forMe && !acked.includes(S.party);
    const state = el('div', { class: 'state' });
    if (m.needs_ack) {
      if (acked.length) {
        state.append(m.acknowledged_at ? t('hotline.acknowledgedByAt', { parties: acked.join(', '), time: fmtTime(m.acknowledged_at) })
          : t('hotline.acknowledgedBy', { parties: acked.join(', ') }));
      } else {
        state.append(t('hotline.ackBy', { time: fmtTime(m.deadline) }));
        if (S.mode !== 'replay') state.append(countdown(m.deadline));
      }
      const steps = m.escalation_steps || 0;
      const rung = ladder[Math.min(steps, ladder.length - 1)];
      const rungAs = rung ? rungName(rung.name) : t('rungs.duty officer');
      state.append(el('span', { class: steps ? 'escalated' : '', 'data-escalation': steps, 'data-rung': rung ? rung.name : '',
        text: steps ? t('hotline.escalated', { steps, rung: rungAs }) : t('hotline.level', { rung: rungAs }) }));
      if (waiting && S.mode !== 'replay') {
        state.append(el('button', { type: 'button', class: 'ack', 'data-ack-message': m.id, onclick: () => ackMessage(m.id) }, t('actions.acknowledge')));
      }
    }
    list.append(el('li', { class: `msg ${m.type}${waiting ? ' pending' : ''}`, 'data-message': m.id },
      el('div', { class: 'meta' },
        el('strong', { text: m.id }), el('span', { text: messageTypeName(m.type) }),
        el('span', { text: t('hotline.fromTo', { from: m.from, to: (m.to || []).join(', ') }) }), el('span', { text: fmtTime(m.sent_at) }),
        m.about ? el('span', { text: t('hotline.re', { id: m.about.id }) }) : null),
      el('p', { class: 'text', dir: m.rtl ? 'rtl' : 'ltr', lang: m.lang, text: m.display || m.text }),
      m.free_text ? el('div', { class: 'free', text: t('hotline.freeAsWritten', { lang: m.lang }) }) : null,
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
  for (const c of S.conflicts) refs.push([c.id, t('hotline.reConflict', { id: c.id, kind: conflictKindName(c.kind) })]);
  for (const m of [...S.messages].reverse().slice(0, 10)) refs.push([m.id, t('hotline.reMessage', { id: m.id, type: messageTypeName(m.type) })]);
  for (const a of S.activities.filter((x) => x.party === S.party).slice(-10)) {
    refs.push([a.id, t('hotline.reActivity', { id: a.id, kind: kindName(a.kind) })]);
  }
  select.replaceChildren(...refs.map(([v, text]) => el('option', { value: v, text })));
  const fresh = S.conflicts.find((c) => !S.seenRefs.has(c.id));
  if (fresh) select.value = fresh.id;
  else if (refs.some(([v]) => v === keep)) select.value = keep;
  refs.forEach(([v]) => S.seenRefs.add(v));
}

export function renderPhrases() {
  const box = $('#phrase-buttons');
  box.replaceChildren();
  for (const id of PHRASES) {
    const tpl = S.templates.find((x) => x.id === id);
    if (!tpl) continue;
    box.append(el('button', {
      type: 'button', dir: tpl.rtl ? 'rtl' : 'ltr', lang: tpl.lang, 'data-template': tpl.id,
      title: tpl.text, onclick: () => phrase(tpl),
    }, tpl.text.replace(/\{(\w+)\}/g, (_, p) => (p === 'ref' ? '…' : `{${p}}`))));
  }
}

function phrase(tpl) {
  const params = {};
  const ref = $('#re').value;
  const now = serverNow();
  const defaults = { ref, party: S.party, t1: isoMinute(now), t2: isoMinute(new Date(now.getTime() + 3600e3)), place: '' };
  const extra = tpl.params.filter((p) => p !== 'ref');
  if (!extra.length) {
    if (!ref) { showHotlineError(t('hotline.chooseAbout')); return; }
    params.ref = ref;
    sendMessage({ template: tpl.id, params, about: aboutOf(ref) });
    return;
  }
  const form = $('#phrase-form');
  form.replaceChildren(el('strong', { style: 'grid-column: 1 / -1', dir: tpl.rtl ? 'rtl' : 'ltr', text: tpl.text }));
  for (const p of tpl.params) {
    form.append(el('label', { for: `pp-${p}`, text: phraseParamName(p) }), el('input', { id: `pp-${p}`, name: p, value: defaults[p] ?? '' }));
  }
  form.append(el('span'), el('div', { class: 'actions' },
    el('button', { type: 'submit', class: 'primary' }, t('actions.send')),
    el('button', { type: 'button', onclick: () => { form.hidden = true; } }, t('actions.cancel'))));
  form.onsubmit = (e) => {
    e.preventDefault();
    for (const p of tpl.params) params[p] = form.elements[p].value;
    form.hidden = true;
    sendMessage({ template: tpl.id, params, about: aboutOf(params.ref) });
  };
  form.hidden = false;
  form.elements[tpl.params[0]].focus();
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
