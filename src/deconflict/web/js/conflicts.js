/* The conflict list: one card per unresolved conflict, soonest deadline first.
 *
 * Each card says who it awaits in words ("awaiting Israel's acknowledgement by 06:10 UTC"), the real
 * window and band, and offers what the reader's party may do: Acknowledge (a party awaited that has
 * not yet), Resolve as accepted or escalated with a note (the party it awaits, or the facilitator;
 * accepted only once every other party it awaits acknowledged it),
 * Amend or Cancel (our own activity, through notice-amend.js).
 * Cards are patched in place by id (live.js), and clicks handled by delegation, so focus stays put
 * through live updates. */
import { $, el } from './dom.js';
import { api, M } from './api.js';
import { S, serverNow } from './state.js';
import { refresh } from './data.js';
import { compareIds, fmtBand, fmtKm, fmtMin, fmtNum, fmtTime, fmtWindow, tooLong } from './format.js';
import { conflictKindName, conflictStatusName, rungName, t, zoneKindName } from './i18n.js';
import { countdown, tick } from './clock.js';
import { zoomToConflict } from './map.js';
import { cancelActivity, openAmend } from './notice-amend.js';
import { visibleAt } from './timebar.js';
import { acknowledge } from './alarm.js';
import { patchList, partyList, partyName } from './live.js';

const STRATEGIC = new Set(['separation', 'zone', 'short_notice']); // conflicts between notices, which amend or cancel can change

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
    const meet = predictedLoss(c);
    if (meet) parts.push(t('conflicts.summary.tracksAt', { time: t('time.clock', { time: meet.slice(11, 19) }) }));
    if (typeof c.distance_m === 'number') parts.push(t('conflicts.summary.tracksClosest', { distance: fmtKm(c.distance_m) }));
    const lost = lostTracks(c);
    if (lost.length) parts.push(t('conflicts.summary.contactLost', { tracks: lost.join(', ') }));
    return parts.join(' · ');
  }
  if (c.kind === 'conformance') return t('conflicts.summary.conformance', { track: c.activity });
  if (c.kind === 'intrusion') {
    return c.other_activity ? t('conflicts.summary.intrusion', { track: c.activity, other: c.other_activity })
      : t('conflicts.summary.intrusionUnknown', { track: c.activity });
  }
  return `${c.activity || ''} · ${conflictKindName(c.kind)}`;
}

/* The tracks of an open tracks conflict that are no longer in the live picture (not reported for the rules'
 * stale time): the service keeps such a conflict open, contact lost, and the card says so. Only once the page
 * has read the tracks, and not for a conflict just raised, whose tracks the last reading (every 2 s) may not
 * hold yet. */
const SETTLED_MS = 10_000;
let presentOf = { tracks: null, ids: new Set() }; // the track ids of the last reading, made once per reading
function lostTracks(c) {
  if (c.kind !== 'tracks' || S.mode !== 'live' || !S.tracksRead || c.status === 'resolved') return [];
  if (!(serverNow().getTime() - Date.parse(c.detected_at) > SETTLED_MS)) return [];
  if (presentOf.tracks !== S.tracks) presentOf = { tracks: S.tracks, ids: new Set(S.tracks.map((x) => x.track)) };
  return [c.activity, c.other_activity].filter((id) => id && !presentOf.ids.has(id));
}

/* After each reading of the tracks: the conflict cards again when one's contact was lost or regained. */
let lostDrawn = '';
export function tracksRead() {
  const now = S.conflicts.filter((c) => c.kind === 'tracks').map((c) => `${c.id}:${lostTracks(c)}`).join(' ');
  if (now !== lostDrawn) { lostDrawn = now; renderConflicts(); }
}

/* When the tracks are predicted to lose separation (ISO): the detection's time and the time it predicted then,
 * so that the card says the instant, which stays true, and not "in 2.7 min", which was true once. */
function predictedLoss(c) {
  if (typeof c.t_in_s !== 'number' || !c.detected_at) return null;
  const ms = Date.parse(c.detected_at) + c.t_in_s * 1000;
  return Number.isFinite(ms) && Math.abs(ms) < 8.64e15 ? new Date(ms).toISOString() : null;
}

/* A time within the hour or so around now, as "06:10 UTC" (the full date is in the card's window). */
const hhmm = (iso) => t('time.clock', { time: iso.slice(11, 16) });

/* The card's state in words: who acknowledged, who is still awaited and by when. */
function stateLine(c, live) {
  const acked = Object.keys(c.acknowledged || {});
  const waitingOn = (c.awaiting || []).filter((p) => !acked.includes(p));
  const row = el('div', { class: 'row state' });
  if (acked.length) {
    const who = acked.map((p) => t('conflicts.ackedEntry', { party: partyName(p), time: hhmm(c.acknowledged[p].at) })).join(', ');
    row.append(el('span', {}, t('conflicts.acknowledgedBy', { who })));
  }
  if (waitingOn.length) {
    const us = waitingOn.includes(S.party);
    const time = hhmm(c.deadline);
    const text = us ? t('conflicts.awaitingUs', { time })
      : waitingOn.length === 1 ? t('conflicts.awaitingOne', { party: partyName(waitingOn[0]), time })
        : t('conflicts.awaitingMany', { parties: partyList(waitingOn), time });
    row.append(el('span', {}, text));
    if (live) row.append(countdown(c.deadline));
    // how far its alerts have climbed, on the card too: the facilitator has no waiting list to read it in, and
    // a party sees its own (each reader's messages are those it may see)
    const steps = Math.max(0, ...S.messages.filter((m) => m.needs_ack && m.about && m.about.kind === 'conflict'
      && m.about.id === c.id).map((m) => m.escalation_steps || 0));
    if (steps && S.mode !== 'replay') {
      const ladder = (S.mech && S.mech.rules && S.mech.rules.ladder) || [];
      const rung = ladder[Math.min(steps, ladder.length - 1)];
      row.append(el('span', { class: 'escalated', 'data-escalation': steps, 'data-rung': rung ? rung.name : '' },
        t('hotline.escalated', { steps, rung: rung ? rungName(rung.name) : t('rungs.duty officer') })));
    }
  }
  return row;
}

/* What our party (or the facilitator) may do with this conflict. */
function actions(c) {
  if (S.mode === 'replay' || !S.me) return null;
  const box = el('div', { class: 'row actions' });
  const acked = Object.keys(c.acknowledged || {});
  if ((c.awaiting || []).includes(S.party) && !acked.includes(S.party)) {
    box.append(el('button', { type: 'button', class: 'ack', 'data-action': 'ack', 'data-ack-conflict': c.id }, t('actions.acknowledge')));
  }
  /* By hand only the party the conflict awaits, or the facilitator: the party that caused it amends or cancels. */
  const mayResolve = (S.party && (c.awaiting || []).includes(S.party)) || S.me.member.role === 'facilitator';
  if (mayResolve) {
    box.append(el('button', { type: 'button', 'data-action': 'resolve', 'data-resolve-conflict': c.id,
      'aria-expanded': String(resolving.has(c.id)), 'aria-controls': `resolve-${c.id}` }, t('conflicts.resolve')));
  }
  if (STRATEGIC.has(c.kind)) {
    const ours = [[c.activity, c.party], [c.other_activity, c.other_party]].filter(([a, p]) => a && p === S.party).map(([a]) => a);
    for (const id of ours) {
      box.append(el('button', { type: 'button', 'data-action': 'amend', 'data-activity': id }, t('conflicts.amend', { id })));
      box.append(el('button', { type: 'button', class: 'danger', 'data-action': 'cancel', 'data-activity': id }, t('conflicts.cancelActivity', { id })));
    }
  }
  return box.childNodes.length ? box : null;
}

/* Accepted needs the awaited parties (docs/roles.md): every party the conflict awaits, but ours, acknowledged it. */
function mayAccept(c) {
  const acked = Object.keys(c.acknowledged || {});
  return (c.awaiting || []).every((p) => p === S.party || acked.includes(p));
}

/* The open Resolve forms, by conflict id: what was chosen and typed, and the service's error. */
const resolving = new Map();

function resolveForm(c) {
  const state = resolving.get(c.id);
  if (!state) return null;
  const id = (s) => `resolve-${c.id}-${s}`;
  const accept = mayAccept(c);
  const resolution = accept ? state.resolution : 'escalated';
  return el('form', { class: 'resolve-form', id: `resolve-${c.id}`, 'data-resolve-form': c.id, 'aria-label': t('conflicts.resolveHeading', { id: c.id }) },
    el('fieldset', {},
      el('legend', {}, t('conflicts.resolveHeading', { id: c.id })),
      el('label', {}, el('input', { type: 'radio', name: 'resolution', value: 'accepted', id: id('accepted'), checked: resolution === 'accepted', disabled: !accept }),
        ' ', t('conflicts.resolution.accepted')),
      el('label', {}, el('input', { type: 'radio', name: 'resolution', value: 'escalated', id: id('escalated'), checked: resolution === 'escalated' }),
        ' ', t('conflicts.resolution.escalated'))),
    el('label', { for: id('note') }, t('conflicts.note')),
    el('input', { id: id('note'), name: 'note', 'aria-describedby': id('error'), 'aria-invalid': state.error ? 'true' : null }),
    el('span', { class: 'err', id: id('error'), 'data-error-for': 'note' }, state.error || ''),
    el('div', { class: 'actions' },
      el('button', { type: 'submit', class: 'primary' }, t('conflicts.resolveSend')),
      el('button', { type: 'button', 'data-action': 'resolve-close' }, t('actions.cancel'))));
}

/* The state in words and what we may do, on one wrapping row. */
function stateAndActions(c, live) {
  const row = stateLine(c, live);
  const acts = actions(c);
  if (acts) row.append(el('span', { class: 'actions' }, ...acts.childNodes));
  return row;
}

function card(c) {
  const live = S.mode !== 'replay';
  const acked = Object.keys(c.acknowledged || {});
  const mine = (c.awaiting || []).includes(S.party) && !acked.includes(S.party);
  const windowBand = [c.start && c.end ? fmtWindow(c.start, c.end) : c.start ? fmtTime(c.start) : null,
    typeof c.floor_m === 'number' || c.start ? fmtBand(c.floor_m, c.ceiling_m) : null].filter(Boolean).join(' · ');
  return el('li', { class: `conflict ${c.status}${mine ? ' mine' : ''}`, 'data-conflict': c.id, 'data-kind': c.kind, 'data-status': c.status,
    tabindex: '-1', 'aria-labelledby': `conflict-${c.id}-h` },
  el('div', { class: 'head', id: `conflict-${c.id}-h` },
    el('button', { type: 'button', class: 'id', 'data-action': 'show', title: t('conflicts.showOnMap') }, c.id),
    el('span', { class: 'kind' }, conflictKindName(c.kind)),
    el('span', { class: 'status' }, conflictStatusName(c.status))),
  // One line each (the whole summary is in its title and read by screen readers): three cards or more fit at 1366×768.
  el('div', { class: 'detail summary', title: conflictSummary(c) }, conflictSummary(c)),
  windowBand ? el('div', { class: 'detail band' }, windowBand) : null,
  stateAndActions(c, live),
  live ? resolveForm(c) : null);
}

function shown() {
  if (S.mode === 'replay' && S.replay) return S.replay.conflicts.filter((c) => c.status !== 'resolved');
  if (S.mode === 'planned') return S.conflicts.filter((c) => visibleAt(c));
  return S.conflicts;
}

/* Those awaiting our acknowledgement first, then the other open ones, then the acknowledged; within
 * each, the nearest deadline first. */
const awaitsUs = (c) => (c.awaiting || []).includes(S.party) && !Object.keys(c.acknowledged || {}).includes(S.party);
const rank = (c) => (awaitsUs(c) ? 0 : c.status === 'acknowledged' ? 2 : 1);

export function renderConflicts() {
  const list = $('#conflict-list');
  const sorted = [...shown()].sort((a, b) => rank(a) - rank(b) || (a.deadline || '').localeCompare(b.deadline || '')
    || compareIds(a.id, b.id));
  $('#conflict-count').textContent = `(${fmtNum(sorted.length)})`;
  for (const id of [...resolving.keys()]) if (!sorted.some((c) => c.id === id)) resolving.delete(id);
  if (!sorted.length) {
    patchList(list, [{ key: 'empty', node: el('li', { class: 'empty' }, t('conflicts.empty')) }]);
  } else {
    patchList(list, sorted.map((c) => ({ key: c.id, node: card(c) })));
  }
  keepFirstActionableWhole();
  tick();
}

/* The panel is bounded so the hotline keeps room for a few messages, but never below the whole of
 * the first card awaiting us (its Acknowledge button is not clipped), nor below a card whose Resolve form
 * is open, which can then be scrolled whole into view (its note and its button were below the edge). */
export function keepFirstActionableWhole() {
  const panel = $('#conflicts');
  const first = live() && $('#conflict-list .conflict.mine');
  const resolving = live() && $('#conflict-list [data-resolve-form]')?.closest('.conflict');
  const offset = (node) => node.getBoundingClientRect().top - panel.getBoundingClientRect().top + panel.scrollTop;
  let need = 0;
  for (const node of [first, resolving]) {
    if (!node) continue;
    // Laid out now, not skipped as the cards out of view are (content-visibility: auto, app.css): a card just
    // drawn has not been found in view yet and measured as its placeholder's 48 px, and the panel was bound
    // too short.
    node.style.contentVisibility = 'visible';
    const top = node === first ? offset(node) : offset($('#conflict-list'));
    need = Math.max(need, top + node.offsetHeight + 8);
  }
  panel.style.minHeight = need ? `${Math.ceil(need)}px` : '';
}
const live = () => S.mode !== 'replay';

export async function ackConflict(id) {
  await acknowledge('conflict', id);
  const cardNode = document.querySelector(`[data-conflict="${id}"]`);
  if (cardNode) cardNode.focus();
}

async function resolve(form) {
  const id = form.dataset.resolveForm;
  const state = resolving.get(id);
  const chosen = form.querySelector('input[name=resolution]:checked');
  state.resolution = chosen ? chosen.value : state.resolution;
  const note = form.elements.note.value.trim();
  state.error = tooLong(note, 500) || '';
  if (state.error) { // said beside the note as typed (nothing sent, nothing drawn again)
    document.getElementById(`resolve-${id}-error`).textContent = state.error;
    form.elements.note.setAttribute('aria-invalid', 'true');
    form.elements.note.focus();
    return;
  }
  try {
    await api('POST', M(`/conflicts/${encodeURIComponent(id)}/resolve`), { resolution: state.resolution, note: note || undefined });
    resolving.delete(id);
  } catch (e) {
    state.error = e.message;
  }
  await refresh(['conflicts', 'messages', 'waiting']);
  if (resolving.has(id)) {
    const input = document.getElementById(`resolve-${id}-note`);
    if (input) input.focus();
  } else $('#conflicts-h').focus();
}

function openResolve(id) {
  if (resolving.has(id)) { resolving.delete(id); renderConflicts(); return; }
  resolving.set(id, { resolution: 'accepted', error: '' });
  renderConflicts();
  document.getElementById(`resolve-${id}`)?.closest('.conflict')?.scrollIntoView({ block: 'nearest' });
  const first = document.querySelector(`#resolve-${id} input[name=resolution]:checked`);
  if (first) first.focus({ preventScroll: true });
}

/* Escape inside a Resolve form closes it and gives focus back to its button; true if it did. */
export function escapeConflicts() {
  const form = document.activeElement && document.activeElement.closest && document.activeElement.closest('[data-resolve-form]');
  if (!form) return false;
  const id = form.dataset.resolveForm;
  resolving.delete(id);
  renderConflicts();
  const button = document.querySelector(`[data-resolve-conflict="${id}"]`);
  if (button) button.focus();
  return true;
}

export function initConflicts() {
  const list = $('#conflict-list');
  list.addEventListener('click', (e) => {
    const button = e.target.closest('button[data-action]');
    if (!button) return;
    const cardNode = button.closest('[data-conflict]');
    const id = cardNode && cardNode.dataset.conflict;
    const c = [...shown()].find((x) => x.id === id);
    const { action } = button.dataset;
    if (action === 'show' && c) zoomToConflict(c);
    else if (action === 'ack') ackConflict(id);
    else if (action === 'resolve') openResolve(id);
    else if (action === 'resolve-close') { resolving.delete(id); renderConflicts(); const b = document.querySelector(`[data-resolve-conflict="${id}"]`); if (b) b.focus(); }
    else if (action === 'amend') openAmend(button.dataset.activity);
    else if (action === 'cancel') cancelActivity(button.dataset.activity);
  });
  list.addEventListener('submit', (e) => {
    const form = e.target.closest('[data-resolve-form]');
    if (!form) return;
    e.preventDefault();
    resolve(form);
  });
  list.addEventListener('change', (e) => {
    const form = e.target.closest('[data-resolve-form]');
    if (form && e.target.name === 'resolution') resolving.get(form.dataset.resolveForm).resolution = e.target.value;
  });
}
