/* The alarm: banner, sound and tab title for what needs our answer. */
import { $ } from './dom.js';
import { S } from './state.js';
import { messageTypeName, t } from './i18n.js';

export function beep() {
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

export function raiseAlarm(m) {
  S.alarm = m;
  const text = $('#alarm-text');
  text.textContent = t('alarm.text', { id: m.id, type: messageTypeName(m.type), text: m.display || m.text });
  text.dir = m.rtl ? 'rtl' : 'ltr';
  text.lang = m.lang || '';
  $('#alarm').hidden = false;
  document.title = t('alarm.tabTitle', { id: m.id });
  beep();
}

export function clearAlarm() {
  S.alarm = null;
  $('#alarm').hidden = true;
  document.title = t('app.title');
}

export const alarmShown = () => !$('#alarm').hidden;

/* A message arrived on the stream (each once): anything that needs our answer, and every escalation
 * of an unanswered one, sounds and flashes. */
export function onNewMessage(m) {
  if (S.knownMessages.has(m.id)) return;
  S.knownMessages.add(m.id);
  const loud = m.needs_ack || m.template === 'escalated_to';
  if (loud && (m.to || []).includes(S.party) && m.from !== S.party) raiseAlarm(m);
}

/* The banner's tag counts what awaits us (hotline renders call it). */
export function setAwaitingCount(n) {
  $('#alarm .alarm-tag').textContent = n > 1 ? t('alarm.tagCount', { count: n }) : t('alarm.tag');
}

/* Browsers start sound only after a gesture: any key or click in the page unlocks it. */
export function initAlarm({ onAcknowledge }) {
  $('#alarm-dismiss').addEventListener('click', clearAlarm);
  $('#alarm-ack').addEventListener('click', () => { if (S.alarm) onAcknowledge(S.alarm); });
  const unlock = () => { try { S.audio = S.audio || new AudioContext(); S.audio.resume(); } catch { /* no sound */ } };
  document.addEventListener('pointerdown', unlock, { once: true });
  document.addEventListener('keydown', unlock, { once: true });
}
