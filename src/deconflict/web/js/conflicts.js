/* The conflict list: one card per unresolved conflict, soonest deadline first, with Acknowledge. */
import { $, el } from './dom.js';
import { api, M } from './api.js';
import { S } from './state.js';
import { dirty } from './data.js';
import { fmtBand, fmtKm, fmtMin, fmtNum, fmtTime, fmtWindow } from './format.js';
import { conflictKindName, conflictStatusName, t, zoneKindName } from './i18n.js';
import { countdown, tick } from './clock.js';
import { zoomToActivity } from './map.js';
import { showHotlineError } from './hotline.js';

export function conflictSummary(c) {
  if (c.kind === 'separation') {
    return t('conflicts.summary.separation', {
      a: c.activity, pa: c.party, b: c.other_activity, pb: c.other_party,
      distance: fmtKm(c.distance_m), minimum: fmtKm(c.separation_m, 2),
    });
  }
  if (c.kind === 'zone') {
    return t('conflicts.summary.zone', { activity: c.activity, party: c.party, zoneKind: zoneKindName(c.zone_kind || 'zone'), zone: c.zone, owner: c.zone_owner });
  }
  if (c.kind === 'short_notice') {
    return t('conflicts.summary.shortNotice', {
      activity: c.activity, party: c.party, lead: fmtMin(Math.round(c.lead_time_s / 60)), minimum: fmtMin(Math.round(c.min_notice_s / 60)),
    });
  }
  if (c.kind === 'tracks') {
    const parts = [t('conflicts.summary.tracks', { a: c.activity, b: c.other_activity })];
    if (typeof c.t_in_s === 'number') parts.push(t('conflicts.summary.tracksIn', { time: fmtMin(c.t_in_s / 60, 1) }));
    if (typeof c.distance_m === 'number') parts.push(t('conflicts.summary.tracksClosest', { distance: fmtKm(c.distance_m) }));
    return parts.join(' · ');
  }
  if (c.kind === 'conformance') return t('conflicts.summary.conformance', { track: c.activity });
  if (c.kind === 'intrusion') {
    return c.other_activity ? t('conflicts.summary.intrusion', { track: c.activity, other: c.other_activity })
      : t('conflicts.summary.intrusionUnknown', { track: c.activity });
  }
  return `${c.activity || ''} · ${conflictKindName(c.kind)}`;
}

export function renderConflicts() {
  const list = $('#conflict-list');
  const source = S.mode === 'replay' && S.replay ? S.replay.conflicts.filter((c) => c.status !== 'resolved') : S.conflicts;
  const sorted = [...source].sort((a, b) => (a.deadline || '').localeCompare(b.deadline || ''));
  $('#conflict-count').textContent = `(${fmtNum(sorted.length)})`;
  list.replaceChildren();
  if (!sorted.length) list.append(el('li', { class: 'empty', text: t('conflicts.empty') }));
  for (const c of sorted) {
    const acked = Object.keys(c.acknowledged || {});
    const mine = (c.awaiting || []).includes(S.party) && !acked.includes(S.party);
    const row = el('div', { class: 'row' });
    if (c.status === 'open') {
      row.append(t('conflicts.ackBy', { time: fmtTime(c.deadline), parties: (c.awaiting || []).join(', ') }),
        S.mode === 'replay' ? null : countdown(c.deadline));
    } else {
      const who = acked.map((p) => t('conflicts.ackedEntry', { party: p, time: fmtTime(c.acknowledged[p].at) })).join(', ');
      row.append(t('conflicts.acknowledgedBy', { who }));
    }
    if (mine && S.mode !== 'replay') {
      row.append(el('button', { type: 'button', class: 'ack', 'data-ack-conflict': c.id, onclick: () => ackConflict(c.id) }, t('actions.acknowledge')));
    }
    list.append(el('li', { class: `conflict ${c.status}`, 'data-conflict': c.id, 'data-kind': c.kind, 'data-status': c.status },
      el('div', { class: 'head' },
        el('button', { type: 'button', class: 'id', title: t('conflicts.showOnMap'), onclick: () => zoomToActivity(c.activity) }, c.id),
        el('span', { text: conflictKindName(c.kind) }),
        el('span', { class: 'status', text: conflictStatusName(c.status) })),
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
