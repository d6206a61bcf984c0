/* The header clock and every countdown, ticking on the service's time. */
import { $, el } from './dom.js';
import { api } from './api.js';
import { S, serverNow } from './state.js';
import { fmtClock, fmtCountdown, fmtTime } from './format.js';
import { t } from './i18n.js';

/* A countdown to `deadline` (ISO), written as it stands now; tick() refreshes it. A list patched in place
 * (live.js) takes the text and the overdue mark of the one built at each render. */
export function countdown(deadline) {
  const n = el('span', { class: 'countdown', 'data-deadline': deadline, title: t('countdown.deadline', { time: fmtTime(deadline) }) });
  fill(n, serverNow());
  return n;
}

/* The countdowns in view are written every second; the others when they scroll into view, and a slice of
 * them each second so that none is more than OUT_OF_VIEW_S behind. An alert storm puts thousands on the
 * page: writing every one each second kept the page busy laying them out. */
const OUT_OF_VIEW_S = 60;
const all = new Set();
const shown = new Set();
let turn = []; // the countdowns out of view still to refresh in this round of OUT_OF_VIEW_S
const seen = new IntersectionObserver((entries) => {
  const now = serverNow();
  for (const e of entries) {
    if (!isCountdown(e.target)) forget(e.target);
    else if (e.isIntersecting) { shown.add(e.target); fill(e.target, now); } else shown.delete(e.target);
  }
});

/* Still a countdown: a list patched in place (live.js) may have made the element something else (a card
 * acknowledged meanwhile turns its countdown into its buttons), and its text is then no longer ours. */
function isCountdown(n) {
  return n.isConnected && n.classList.contains('countdown') && Boolean(n.dataset.deadline);
}

function forget(n) {
  all.delete(n);
  shown.delete(n);
  seen.unobserve(n);
}

function fill(n, now) {
  const ms = Date.parse(n.dataset.deadline) - now.getTime();
  n.textContent = fmtCountdown(ms);
  n.classList.toggle('overdue', ms < 0);
}

export function tick() {
  const now = serverNow();
  $('#clock').textContent = fmtClock(now);
  for (const n of document.querySelectorAll('.countdown[data-deadline]')) {
    if (!all.has(n)) { all.add(n); seen.observe(n); }
  }
  for (const n of all) {
    if (!isCountdown(n)) forget(n);
    else if (shown.has(n)) fill(n, now);
  }
  if (!turn.length) turn = [...all];
  for (const n of turn.splice(0, Math.ceil(all.size / OUT_OF_VIEW_S))) if (all.has(n) && !shown.has(n)) fill(n, now);
}

/* The service's clock, read again now and then: countdowns follow it, not this machine's clock. */
export async function syncClock() {
  try {
    const sent = Date.now();
    const me = await api('GET', '/me');
    S.offsetMs = Date.parse(me.now) - (sent + Date.now()) / 2;
  } catch { /* keep the last offset */ }
}
