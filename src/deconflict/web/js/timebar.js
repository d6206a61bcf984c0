/* The time bar: back in time (replay of the record), ahead (planned activities in force) or live.
 *
 * Ticks mark every 3 hours, labelled with the UTC hour (the date at 00:00; the bar's label says UTC)
 * as often as the width allows, and a mark at "now", the live position.
 * Looking ahead, the conflict list shows only the conflicts in force at the chosen instant:
 * visibleAt(conflict) is the predicate the conflicts panel applies.
 *
 * Direction: the bar runs from the past on the left to the future on the right in every language,
 * Hebrew and Arabic included. It is a time axis, not text: like a media player's progress bar, a
 * chart's axis or the map itself (none of them mirrored for right-to-left readers), and like the
 * left-to-right UTC timelines Israeli and Arab air-traffic and operations tools show. ArrowRight is
 * later in every language. Only the words around it read right to left. */
import { $, el, debounce } from './dom.js';
import { api, M } from './api.js';
import { S, inWindowAt, serverNow } from './state.js';
import { changed } from './data.js';
import { fmtDay, fmtHour, fmtTime } from './format.js';
import { t } from './i18n.js';
import i18next from '../vendor/i18next/i18next.js';

const TICK_H = 3;

/* Is conflict `c` shown at the time bar's instant? Live and replay: every one the list holds; looking
 * ahead: those whose window contains the instant (a conflict without a window, about tracks now, is
 * not in force then). */
export function visibleAt(c) {
  if (S.mode !== 'planned' || !S.at) return true;
  if (!c.start) return false;
  return inWindowAt(c, S.at);
}

/* Answers to replay requests can come back out of order (each is rebuilt from the record, from the
 * newest snapshot before its instant): only the latest request's answer is shown. The bar asks for what
 * matters around the instant (window_h: in force, open or awaited then, ended, resolved or sent in the
 * WINDOW_H hours before), which the service answers at a cost that does not grow with the record. */
let asked = 0;
const WINDOW_H = 24;

async function onTimeline() {
  const mine = ++asked;
  const minutes = Number($('#timeline').value);
  const label = $('#timeline-label');
  const badge = $('#mode-badge');
  if (minutes === 0) {
    S.mode = 'live'; S.at = null; S.replay = null;
    label.textContent = t('timebar.live');
    badge.hidden = true;
  } else {
    const at = new Date(serverNow().getTime() + minutes * 60e3);
    at.setUTCSeconds(0, 0);
    S.at = at;
    if (minutes < 0) {
      S.mode = 'replay';
      label.textContent = t('timebar.replayLabel', { time: fmtTime(at.toISOString()) });
      let answer;
      try { answer = await api('GET', M(`/replay?at=${encodeURIComponent(at.toISOString())}&window_h=${WINDOW_H}`)); } catch (e) {
        if (mine === asked) label.textContent = e.message;
        return;
      }
      if (mine !== asked) return; // the bar has moved on meanwhile
      S.replay = answer;
    } else {
      S.mode = 'planned'; S.replay = null;
      label.textContent = t('timebar.plannedFilter', { time: fmtTime(at.toISOString()) });
    }
    const time = fmtTime(at.toISOString());
    badge.textContent = S.mode === 'replay' ? t('timebar.replayBadge', { time }) : t('timebar.plannedBadge', { time });
    badge.hidden = false;
  }
  $('#timeline').setAttribute('aria-valuetext', label.textContent);
  changed('time');
}

export function goLive() { $('#timeline').value = '0'; onTimeline(); }

/* Escape: back to the live picture; true if it was elsewhere. */
export function escapeTimebar() {
  if (S.mode === 'live') return false;
  goLive();
  return true;
}

/* The ticks under the slider, placed where the thumb stands at that instant. */
function renderTicks() {
  const input = $('#timeline');
  const box = $('#timeline-ticks');
  if (!input || !box || !S.me) return;
  const min = Number(input.min), max = Number(input.max), span = max - min;
  const now = serverNow().getTime();
  // A label every 3, 6, 12 or 24 hours: as often as the bar's width leaves 56 px between labels.
  const width = input.getBoundingClientRect().width || 800;
  const every = [1, 2, 4, 8].find((k) => (width * k * TICK_H * 60) / span >= 56) || 8;
  const first = Math.ceil((now + min * 60e3) / (TICK_H * 3600e3)) * TICK_H * 3600e3;
  const ticks = [];
  for (let ms = first; ms <= now + max * 60e3; ms += TICK_H * 3600e3) {
    const d = new Date(ms);
    const at = (ms - now) / 60e3;
    const midnight = d.getUTCHours() === 0;
    const labelled = (d.getUTCHours() / TICK_H) % every === 0;
    ticks.push(el('span', {
      class: `tick${midnight ? ' day' : ''}`, 'data-at': d.toISOString(),
      style: `--pos:${((at - min) / span).toFixed(5)}`,
    }, labelled ? el('span', { class: 'tick-label', text: midnight ? fmtDay(d.toISOString()) : fmtHour(d) }) : null));
  }
  ticks.push(el('span', { class: 'tick now', title: t('timebar.now'), style: `--pos:${((0 - min) / span).toFixed(5)}` }));
  box.replaceChildren(...ticks);
}

export function initTimebar() {
  const input = $('#timeline');
  input.setAttribute('dir', 'ltr'); // past on the left, future on the right in every language (see above)
  // The slider and its ticks share a box, so a tick sits exactly under the thumb's position.
  const wrap = el('div', { class: 'timeline-wrap', dir: 'ltr' });
  input.replaceWith(wrap);
  wrap.append(input, el('div', { id: 'timeline-ticks', class: 'timeline-ticks', 'aria-hidden': 'true' }));
  input.addEventListener('input', debounce(onTimeline, 200));
  $('#live').addEventListener('click', goLive);
  // Every 5 minutes (the slider's step) the ticks move on with the clock; and with the language.
  setInterval(renderTicks, 60e3);
  new ResizeObserver(debounce(renderTicks, 100)).observe(wrap);
  i18next.on('languageChanged', renderTicks);
  const started = setInterval(() => { if (S.me) { renderTicks(); clearInterval(started); } }, 250);
}
