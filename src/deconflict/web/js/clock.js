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

/* Countdowns on screen, refreshed every second; the others get their text once (when tick() first meets
 * them) and again as they scroll into view. An alert storm puts thousands on the page: writing every one
 * each second kept the page busy laying them out. */
const all = new Set();
const shown = new Set();
const seen = new IntersectionObserver((entries) => {
  const now = serverNow();
  for (const e of entries) {
    if (e.isIntersecting) { shown.add(e.target); fill(e.target, now); } else shown.delete(e.target);
  }
});

function fill(n, now) {
  const ms = Date.parse(n.dataset.deadline) - now.getTime();
  n.textContent = fmtCountdown(ms);
  n.classList.toggle('overdue', ms < 0);
}

export function tick() {
  const now = serverNow();
  $('#clock').textContent = fmtClock(now);
  for (const n of document.querySelectorAll('.countdown[data-deadline]')) {
    if (!all.has(n)) { all.add(n); seen.observe(n); fill(n, now); }
  }
  for (const n of all) {
    if (!n.isConnected) { all.delete(n); shown.delete(n); seen.unobserve(n); } else if (shown.has(n)) fill(n, now);
  }
}

/* The service's clock, read again now and then: countdowns follow it, not this machine's clock. */
export async function syncClock() {
  try {
    const sent = Date.now();
    const me = await api('GET', '/me');
    S.offsetMs = Date.parse(me.now) - (sent + Date.now()) / 2;
  } catch { /* keep the last offset */ }
}
