/* The header clock and every countdown, ticking on the service's time. */
import { $, el } from './dom.js';
import { api } from './api.js';
import { S, serverNow } from './state.js';
import { fmtClock, fmtCountdown, fmtTime } from './format.js';
import { t } from './i18n.js';

/* A countdown to `deadline` (ISO); tick() fills and refreshes it. */
export function countdown(deadline) {
  return el('span', { class: 'countdown', 'data-deadline': deadline, title: t('countdown.deadline', { time: fmtTime(deadline) }) });
}

export function tick() {
  const now = serverNow();
  $('#clock').textContent = fmtClock(now);
  document.querySelectorAll('.countdown[data-deadline]').forEach((n) => {
    const ms = Date.parse(n.dataset.deadline) - now.getTime();
    n.textContent = fmtCountdown(ms);
    n.classList.toggle('overdue', ms < 0);
  });
}

/* The service's clock, read again now and then: countdowns follow it, not this machine's clock. */
export async function syncClock() {
  try {
    const sent = Date.now();
    const me = await api('GET', '/me');
    S.offsetMs = Date.parse(me.now) - (sent + Date.now()) / 2;
  } catch { /* keep the last offset */ }
}
