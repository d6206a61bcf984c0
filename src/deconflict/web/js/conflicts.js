/* The conflict list: one card per unresolved conflict, soonest deadline first, with Acknowledge. */
import { $, el } from './dom.js';
import { api, M } from './api.js';
import { S } from './state.js';
import { dirty } from './data.js';
import { fmtBand, fmtTime, fmtWindow } from './format.js';
import { countdown, tick } from './clock.js';
import { zoomToActivity } from './map.js';
import { showHotlineError } from './hotline.js';

export function conflictSummary(c) {
  if (c.kind === 'separation') {
    return `${c.activity} (${c.party}) × ${c.other_activity} (${c.other_party}) · ` +
      `${(c.distance_m / 1000).toFixed(1)} km apart, minimum ${(c.separation_m / 1000).toFixed(2)} km`;
  }
  if (c.kind === 'zone') return `${c.activity} (${c.party}) inside ${(c.zone_kind || 'zone').replace('_', ' ')} ${c.zone} of ${c.zone_owner}`;
  if (c.kind === 'short_notice') {
    return `${c.activity} (${c.party}) notified ${Math.round(c.lead_time_s / 60)} min ahead; the rules ask ${Math.round(c.min_notice_s / 60)} min`;
  }
  if (c.kind === 'tracks') {
    return `tracks ${c.activity} × ${c.other_activity} predicted to lose separation` +
      (typeof c.t_in_s === 'number' ? ` in ${(c.t_in_s / 60).toFixed(1)} min` : '') +
      (typeof c.distance_m === 'number' ? `, closest ${(c.distance_m / 1000).toFixed(1)} km` : '');
  }
  if (c.kind === 'conformance') return `track ${c.activity} outside every volume its party notified`;
  if (c.kind === 'intrusion') return `track ${c.activity} inside ${c.other_activity || 'another party\'s volume'}`;
  return `${c.activity || ''} ${c.kind}`;
}

export function renderConflicts() {
  const list = $('#conflict-list');
  const source = S.mode === 'replay' && S.replay ? S.replay.conflicts.filter((c) => c.status !== 'resolved') : S.conflicts;
  const sorted = [...source].sort((a, b) => (a.deadline || '').localeCompare(b.deadline || ''));
  $('#conflict-count').textContent = `(${sorted.length})`;
  list.replaceChildren();
  if (!sorted.length) list.append(el('li', { class: 'empty', text: 'No open conflict.' }));
  for (const c of sorted) {
    const acked = Object.keys(c.acknowledged || {});
    const mine = (c.awaiting || []).includes(S.party) && !acked.includes(S.party);
    const row = el('div', { class: 'row' });
    if (c.status === 'open') {
      row.append(`acknowledge by ${fmtTime(c.deadline)} (${(c.awaiting || []).join(', ')}):`,
        S.mode === 'replay' ? null : countdown(c.deadline));
    } else {
      row.append(`acknowledged by ${acked.map((p) => `${p} at ${fmtTime(c.acknowledged[p].at)}`).join(', ')}`);
    }
    if (mine && S.mode !== 'replay') {
      row.append(el('button', { type: 'button', class: 'ack', 'data-ack-conflict': c.id, onclick: () => ackConflict(c.id) }, 'Acknowledge'));
    }
    list.append(el('li', { class: `conflict ${c.status}`, 'data-conflict': c.id },
      el('div', { class: 'head' },
        el('button', { type: 'button', class: 'id', title: 'Show on the map', onclick: () => zoomToActivity(c.activity) }, c.id),
        el('span', { text: c.kind.replace('_', ' ') }),
        el('span', { class: 'status', text: c.status })),
      el('div', { class: 'detail', text: conflictSummary(c) }),
      c.start && c.end ? el('div', { class: 'detail', text: `${fmtWindow(c.start, c.end)} · ${fmtBand(c.floor_m, c.ceiling_m)}` }) : null,
      row));
  }
  tick();
}

export async function ackConflict(id) {
  try {
    await api('POST', M(`/conflicts/${encodeURIComponent(id)}/acknowledge`));
  } catch (e) { showHotlineError(e.message); }
  dirty('conflicts', 'messages');
}
