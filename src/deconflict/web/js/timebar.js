/* The time bar: back in time (replay of the record), ahead (planned activities in force) or live. */
import { $, debounce } from './dom.js';
import { api, M } from './api.js';
import { S, serverNow } from './state.js';
import { changed } from './data.js';
import { fmtTime } from './format.js';
import { t } from './i18n.js';

async function onTimeline() {
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
      try { S.replay = await api('GET', M(`/replay?at=${encodeURIComponent(at.toISOString())}`)); } catch (e) {
        label.textContent = e.message; return;
      }
    } else {
      S.mode = 'planned'; S.replay = null;
      label.textContent = t('timebar.plannedLabel', { time: fmtTime(at.toISOString()) });
    }
    const time = fmtTime(at.toISOString());
    badge.textContent = S.mode === 'replay' ? t('timebar.replayBadge', { time }) : t('timebar.plannedBadge', { time });
    badge.hidden = false;
  }
  changed('time');
}

export function goLive() { $('#timeline').value = '0'; onTimeline(); }

/* Escape: back to the live picture; true if it was elsewhere. */
export function escapeTimebar() {
  if (S.mode === 'live') return false;
  goLive();
  return true;
}

export function initTimebar() {
  $('#timeline').addEventListener('input', debounce(onTimeline, 200));
  $('#live').addEventListener('click', goLive);
}
