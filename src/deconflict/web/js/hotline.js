/* The hotline's composing side: the "About" picker, the standard phrases as forms in words, and free
 * text. (The line states in the header are lines.js; the messages, messages.js.)
 *
 * A phrase opens a small form: labelled fields in the reader's language (what it is about, a time
 * in UTC, a place clicked on the map), a preview of the message as the agreed wording will read, and
 * Send. An error keeps the form open with the error beside its field; nothing typed is lost. Only
 * the phrases that fit the member's role are offered. */
import { $, el } from './dom.js';
import { api, M } from './api.js';
import { S, isOver, serverNow } from './state.js';
import { compareIds, tooLong } from './format.js';
import { dirty, refresh } from './data.js';
import { conflictKindName, kindName, messageTypeName, phraseParamName, t } from './i18n.js';
import { waitingItems } from './alarm.js';
import { getMap } from './map.js';
import { partyList, partyName } from './live.js';

/* Standard phrases a duty officer sends; the others are the service's own (alerts, line checks). */
const PHRASES = ['acknowledged', 'holding', 'acknowledged_amending', 'proceeding_as_notified', 'query_activity', 'incident_at'];
/* What each role may say: a facilitator does not hold, amend or proceed with an activity of its own. */
const FOR_ROLE = {
  party: PHRASES,
  facilitator: ['acknowledged', 'query_activity', 'incident_at'],
};
/* A phrase's button and form title, in words (never the template's {placeholders}). */
const PHRASE_LABEL = {
  acknowledged: () => t('hotline.phrases.acknowledged'),
  holding: () => t('hotline.phrases.holding'),
  acknowledged_amending: () => t('hotline.phrases.acknowledged_amending'),
  proceeding_as_notified: () => t('hotline.phrases.proceeding_as_notified'),
  query_activity: () => t('hotline.phrases.query_activity'),
  incident_at: () => t('hotline.phrases.incident_at'),
};

export function showHotlineError(text) { $('#hotline-error').textContent = text; }

/* ------------------------------------------------------------------ what a phrase is about */

const newestFirst = (a, b) => compareIds(b, a);
/* An option's label starts with the id, bare (no bidi isolates), so a select's type-ahead finds "M1". */
const option = ([v, text]) => el('option', { value: v }, text.replace(/[\u2066-\u2069]/g, ''));

/* The open conflicts and the alerts still awaited, newest first: what a response phrase answers. */
function answerable() {
  const out = [];
  for (const c of [...S.conflicts].sort((a, b) => newestFirst(a.id, b.id))) {
    out.push([c.id, t('hotline.reConflict', { id: c.id, kind: conflictKindName(c.kind) })]);
  }
  // what waits on us, not our own questions that wait on others
  const alerts = S.messages.filter((m) => m.needs_ack && (m.status ? m.status === 'awaiting' : true)
    && (m.awaiting || []).includes(S.party)).sort((a, b) => (b.seq || 0) - (a.seq || 0));
  for (const m of alerts) out.push([m.id, t('hotline.reMessage', { id: m.id, type: messageTypeName(m.type) })]);
  return out;
}

/* The other parties' activities, newest first: what a query asks about. */
function theirActivities() {
  return S.activities.filter((a) => a.party !== S.party && !isOver(a))
    .sort((a, b) => newestFirst(a.id, b.id))
    .map((a) => [a.id, t('hotline.reTheirActivity', { id: a.id, kind: kindName(a.kind), party: partyName(a.party) })]);
}

/* The most urgent thing waiting on us, else the newest open conflict: never the oldest. */
function defaultRef(options) {
  const ids = new Set(options.map(([v]) => v));
  const urgent = waitingItems().find((i) => ids.has(i.id));
  if (urgent) return urgent.id;
  return options.length ? options[0][0] : '';
}

let chosenRe = null; // what the reader picked in "About" (null: follow the page's default)

export function renderReOptions() {
  const select = $('#re');
  const keep = select.value;
  const answers = answerable(); // once: with an alert storm's thousands of items, each call took 0.1-0.2 s
  const refs = [...answers];
  for (const a of S.activities.filter((x) => x.party === S.party).sort((a, b) => newestFirst(a.id, b.id)).slice(0, 10)) {
    refs.push([a.id, t('hotline.reActivity', { id: a.id, kind: kindName(a.kind) })]);
  }
  refs.push(...theirActivities().slice(0, 10));
  const options = [['', t('hotline.aboutNothing')], ...refs];
  select.replaceChildren(...options.map(option));
  // The reader's own choice stays while it exists and nothing new waits on us; otherwise the most
  // urgent item waiting on us, else the newest open conflict (never the oldest).
  // While a free text is being typed, what it is about does not change under the officer's hands: the
  // alarm says what arrived; the subject stays the one in view when they press Enter.
  const fresh = waitingItems().find((i) => !S.seenRefs.has(i.id) && refs.some(([v]) => v === i.id));
  const typing = $('#free-text').value.trim() !== '';
  if (typing && options.some(([v]) => v === keep)) select.value = keep;
  else if (!fresh && chosenRe !== null && refs.some(([v]) => v === chosenRe)) select.value = chosenRe;
  else { chosenRe = null; select.value = defaultRef(answers) || (keep && refs.some(([v]) => v === keep) ? keep : ''); }
  waitingItems().forEach((i) => S.seenRefs.add(i.id));
  if (phraseOpen && !$('#phrase-form').hidden) refreshRefField();
}

/* ------------------------------------------------------------------ who a message goes to */

/* The other parties (by code, in order) whose members `keep` picks. */
function others(keep) {
  const members = (S.mech && S.mech.members) || [];
  return [...new Set(members.filter((m) => keep(m) && m.party !== S.party).map((m) => m.party))].sort();
}

/* "To": a box for each party that may be written to, all ticked (the service's own default), shown when
 * there is a choice to make (two or more). */
export function renderRecipients() {
  const parties = others((m) => m.role !== 'observer'); // who answers the hotline: parties and facilitators
  $('#to-row').hidden = parties.length < 2;
  $('#to-parties').replaceChildren(...parties.map((p) => el('label', { class: 'to-party', title: partyName(p) },
    el('input', { type: 'checkbox', name: 'to', value: p, checked: true, onchange: toChanged, 'aria-label': partyName(p) }),
    ' ', p)));
  // who reads the whole channel whoever is ticked: "To" says who is asked, not who else reads
  const readers = others((m) => m.role !== 'party');
  const said = readers.length ? t('hotline.toReadAll', { parties: partyList(readers) }) : '';
  $('#to-readers').textContent = said;
  $('#to-readers').title = said;
  $('#to-row').title = said;
}

/* A box ticked again after "none ticked" was refused: the refusal no longer holds. */
function toChanged() {
  showLeftOut();
  const none = t('hotline.toNone');
  if ($('#hotline-error').textContent === none) showHotlineError('');
  const general = $('#pp-general-err');
  if (general && general.textContent === none) general.textContent = '';
}

/* A message's `to`: undefined while every box is ticked (the service then addresses every party and
 * facilitator but us: the same) or, for the open phrase (`phrase`) about something some parties may not see,
 * while every box but theirs is (the service's own default for it: see `leftOut`), else the parties ticked;
 * null when none is. Whatever is sent goes as the boxes say: a free text (which the service does not narrow)
 * sent while a phrase's subject has unticked a party goes without that party, as shown. */
function recipients(phrase = false) {
  const boxes = [...document.querySelectorAll('#to-parties input[name=to]')];
  const ticked = boxes.filter((b) => b.checked).map((b) => b.value);
  const left = phrase ? boxes.filter((b) => b.dataset.leftOut).map((b) => b.value) : [];
  if (ticked.length === boxes.length - left.length && !ticked.some((p) => left.includes(p))) return undefined;
  return ticked.length ? ticked : null;
}

/* After a message narrowed to some parties went, the next goes to everyone again unless narrowed anew:
 * an urgent phrase later does not leave out a party by what was ticked for another message. The boxes of an
 * open phrase's subject stay as they are (left out, or ticked for it by name). */
function everyoneAgain() {
  document.querySelectorAll('#to-parties input[name=to]').forEach((b) => { if (!b.dataset.leftOut) b.checked = true; });
  showLeftOut();
}

/* The phrases that acknowledge what their subject names when our party is awaited (the service's ACK_PHRASES). */
const SETTLING = ['acknowledged', 'acknowledged_amending', 'holding', 'proceeding_as_notified'];
const NOBODY = { parties: [] }; // nobody left out
let askedOf = ''; // the party a query the boxes are marked for is asked of ('': they are marked for what it may not see)

/* The parties among the "To" boxes that the phrase `tpl` about `ref` does not go to unless ticked, as the
 * service addresses a phrase sent with no `to` (service/hotline.py: `_who_may_see`): a query about an activity,
 * to the party whose activity it is (`asked`);
 * about a conflict, its parties and the facilitator; about a message, those it went to (and its sender), or,
 * when the phrase acknowledges an alert that awaits us with its conflict, that conflict's parties; so that a
 * party is not told of what it may not see. An activity's audience is the service's to work out (under
 * conflicts-only it depends on conflicts this page may not see): none is named, and the message, once sent,
 * shows whom it went to. With no choice to make (the "To" row hidden), none either. */
function leftOut(tpl, ref) {
  const boxes = [...document.querySelectorAll('#to-parties input[name=to]')].map((b) => b.value);
  if ($('#to-row').hidden || !ref) return NOBODY;
  if (tpl.id === 'query_activity') {
    const activity = S.activities.find((a) => a.id === ref);
    return activity ? { parties: boxes.filter((p) => p !== activity.party), asked: activity.party } : NOBODY;
  }
  const conflict = (id) => S.conflicts.find((c) => c.id === id);
  const awaitsUs = (x) => (x.awaiting || []).includes(S.party) && !Object.keys(x.acknowledged || {}).includes(S.party);
  const reads = new Set(others((m) => m.role === 'facilitator')); // the facilitator reads the whole channel
  const told = new Set([S.party]);
  const c = conflict(ref);
  const m = c ? null : S.messages.find((x) => x.id === ref);
  if (c) (c.parties || []).forEach((p) => told.add(p));
  else if (m) {
    const about = m.about && m.about.kind === 'conflict' ? m.about.id : null;
    const its = about ? conflict(about) : null;
    const acknowledges = SETTLING.includes(tpl.id) && m.needs_ack && m.status === 'awaiting' && awaitsUs(m) && about;
    if (acknowledges && !its) return NOBODY; // whether it settles its conflict is not known here
    if (acknowledges && awaitsUs(its)) (its.parties || []).forEach((p) => told.add(p));
    else {
      (m.to || []).forEach((p) => told.add(p));
      const sender = ((S.mech && S.mech.members) || []).find((x) => x.id === m.from);
      if (sender) told.add(sender.party);
    }
  } else return NOBODY;
  return { parties: boxes.filter((p) => !told.has(p) && !reads.has(p)) };
}

/* The boxes of the parties a phrase about `ref` leaves out, unticked (for a new subject) and said so; those no
 * longer left out as the officer had them before the phrase's subject changed them. The officer may tick one
 * left out, and then it is asked by name. */
function markLeftOut({ parties, asked }, ref) {
  askedOf = asked || '';
  for (const b of document.querySelectorAll('#to-parties input[name=to]')) {
    if (parties.includes(b.value)) {
      if (!b.dataset.leftOut) b.dataset.wasChecked = b.checked ? '1' : '';
      if (b.dataset.leftOut !== ref) b.checked = false; // a new subject: not asked unless ticked for it
      b.dataset.leftOut = ref;
    } else if (b.dataset.leftOut) {
      b.checked = b.dataset.wasChecked === '1';
      delete b.dataset.leftOut;
      delete b.dataset.wasChecked;
    }
  }
  showLeftOut();
  keepDraft(); // a free text being typed keeps the boxes as shown
}

/* The parties left out and not ticked, marked and said under "To" (one ticked is asked: nothing to say). */
function showLeftOut() {
  const out = [];
  let ref = '';
  const say = (parties, about) => (askedOf
    ? t('hotline.toAsked', { parties, ref: about, owner: partyName(askedOf) })
    : t('hotline.toLeftOut', { parties, ref: about }));
  for (const b of document.querySelectorAll('#to-parties input[name=to]')) {
    const left = Boolean(b.dataset.leftOut) && !b.checked;
    if (left) { out.push(b.value); ref = b.dataset.leftOut; }
    b.closest('label').classList.toggle('left-out', left);
    b.closest('label').title = left ? say(partyName(b.value), b.dataset.leftOut) : partyName(b.value);
  }
  const said = out.length ? say(partyList(out), ref) : '';
  const note = $('#to-left-out');
  if (note) { note.textContent = said; note.hidden = !said; }
}

/* ------------------------------------------------------------------ phrases as forms */

let phraseOpen = null; // the template being filled in, while its form is open
let picking = false; // the next click on the map gives the place

export function renderPhrases() {
  const box = $('#phrase-buttons');
  const allowed = FOR_ROLE[S.me && S.me.member.role] || [];
  box.replaceChildren();
  for (const id of PHRASES) {
    const tpl = S.templates.find((x) => x.id === id);
    if (!tpl || !allowed.includes(id)) continue;
    box.append(el('button', { type: 'button', 'data-template': tpl.id, 'aria-haspopup': 'dialog',
      'aria-expanded': 'false', 'aria-controls': 'phrase-form', onclick: () => openPhrase(tpl) }, PHRASE_LABEL[id]()));
  }
}

const isoInput = (d) => d.toISOString().slice(0, 16); // what <input type=datetime-local> takes, read as UTC
const paramTime = (v) => (v ? v.slice(0, 16) : ''); // "2025-04-09T08:00", as the service words times

function field(name, control, hint) {
  return el('div', { class: 'field', 'data-field': name },
    el('label', { for: control.id }, phraseParamName(name)),
    control,
    hint ? el('span', { class: 'hint', id: `${control.id}-hint` }, hint) : null,
    el('span', { class: 'err', id: `${control.id}-err`, 'data-error-for': name }));
}

/* The phrases that answer for an activity of ours in conflict: about a conflict or its alert, never a line check. */
const ABOUT_A_CONFLICT = ['holding', 'acknowledged_amending', 'proceeding_as_notified'];
function refOptions(tpl) {
  if (tpl.id === 'query_activity') return theirActivities();
  const all = answerable();
  if (!ABOUT_A_CONFLICT.includes(tpl.id)) return all;
  const checks = new Set(S.messages.filter((m) => m.type === 'line_check').map((m) => m.id)); // once: thousands in a storm
  return all.filter(([v]) => !checks.has(v));
}

function refreshRefField() {
  const select = $('#pp-ref');
  if (!select || !phraseOpen) return;
  const keep = select.value;
  const options = refOptions(phraseOpen);
  select.replaceChildren(...options.map(option));
  if (options.some(([v]) => v === keep)) select.value = keep;
  updatePreview();
}

function openPhrase(tpl) {
  const form = $('#phrase-form');
  const now = serverNow();
  phraseOpen = tpl;
  document.querySelectorAll('#phrase-buttons [aria-expanded]').forEach((b) => b.setAttribute('aria-expanded', String(b.dataset.template === tpl.id)));
  const parts = [el('h3', { id: 'phrase-h', class: 'phrase-title' }, PHRASE_LABEL[tpl.id]())];
  const options = tpl.params.includes('ref') ? refOptions(tpl) : [];
  const wanted = $('#re').value;
  const ref = options.some(([v]) => v === wanted) ? wanted : defaultRef(options);
  // A query about an activity asks about its window by default.
  const activity = S.activities.find((a) => a.id === ref);
  const span = activity && activity.volumes && activity.volumes[0];
  for (const p of tpl.params) {
    if (p === 'ref') {
      const select = el('select', { id: 'pp-ref', name: 'ref', 'aria-describedby': 'pp-ref-err' }, ...options.map(option));
      select.value = ref;
      parts.push(field('ref', select));
    } else if (p === 't1' || p === 't2') {
      let at = p === 't1' ? now : new Date(now.getTime() + 3600e3);
      if (span && span.start) at = new Date(p === 't1' ? span.start : span.end || span.start);
      parts.push(field(p, el('input', { id: `pp-${p}`, name: p, type: 'datetime-local', step: '60', dir: 'ltr', value: isoInput(at),
        'aria-describedby': `pp-${p}-hint pp-${p}-err` }), t('hotline.form.utc')));
    } else if (p === 'place') {
      const input = el('input', { id: 'pp-place', name: 'place', dir: 'auto', autocomplete: 'off', 'aria-describedby': 'pp-place-hint pp-place-err' });
      const f = field('place', input, t('hotline.form.placeHint'));
      f.insertBefore(el('button', { type: 'button', id: 'pp-pick', 'aria-pressed': 'false', onclick: startPick }, t('hotline.form.pick')), f.querySelector('.hint'));
      parts.push(f);
    } else if (p === 'party') {
      parts.push(el('div', { class: 'field', 'data-field': 'party' },
        el('span', { class: 'label' }, phraseParamName('party')), el('output', { name: 'party', value: S.party }, partyName(S.party))));
    }
  }
  parts.push(el('div', { class: 'preview-box' },
    el('span', { class: 'label', id: 'phrase-preview-label' }, t('hotline.form.preview')),
    el('p', { id: 'phrase-preview', class: 'phrase-preview', dir: tpl.rtl ? 'rtl' : 'ltr', lang: tpl.lang, 'aria-labelledby': 'phrase-preview-label' })));
  parts.push(el('p', { class: 'err', id: 'pp-general-err', 'data-error-for': '_general' }));
  parts.push(el('div', { class: 'actions' },
    el('button', { type: 'submit', class: 'primary' }, t('actions.send')),
    el('button', { type: 'button', onclick: () => closePhrase() }, t('actions.cancel'))));
  form.replaceChildren(...parts);
  form.setAttribute('aria-labelledby', 'phrase-h');
  form.hidden = false;
  form.oninput = updatePreview;
  form.onchange = updatePreview;
  form.onsubmit = (e) => { e.preventDefault(); sendPhrase(tpl); };
  updatePreview();
  const first = form.querySelector('select, input');
  (first || form.querySelector('button[type=submit]')).focus();
}

function phraseParams(tpl) {
  const form = $('#phrase-form');
  const params = {};
  for (const p of tpl.params) {
    if (p === 'party') params.party = S.party;
    else if (p === 't1' || p === 't2') params[p] = paramTime(form.elements[p].value);
    else params[p] = (form.elements[p].value || '').trim();
  }
  return params;
}

function updatePreview() {
  const tpl = phraseOpen;
  const box = $('#phrase-preview');
  if (!tpl || !box) return;
  const params = phraseParams(tpl);
  box.textContent = tpl.text.replace(/\{(\w+)\}/g, (_, p) => params[p] || phraseParamName(p));
  const ref = params.ref || '';
  const marked = document.querySelector('#to-parties input[data-left-out]');
  if (ref || marked) {
    const now = ref ? leftOut(tpl, ref) : NOBODY;
    if (!marked || marked.dataset.leftOut !== ref || now.parties.length === 0) markLeftOut(now, ref);
  }
}

function clearPhraseErrors() {
  document.querySelectorAll('#phrase-form [data-error-for]').forEach((n) => { n.textContent = ''; });
  document.querySelectorAll('#phrase-form [aria-invalid]').forEach((n) => n.removeAttribute('aria-invalid'));
}

function phraseError(name, text) {
  const slot = document.querySelector(`#phrase-form [data-error-for="${name}"]`) || $('#pp-general-err');
  slot.textContent = text;
  const input = $(`#phrase-form [name="${name}"]`);
  if (input && input.tagName !== 'OUTPUT') { input.setAttribute('aria-invalid', 'true'); input.focus(); }
}

async function sendPhrase(tpl) {
  clearPhraseErrors();
  showHotlineError(''); // a refusal of the free text before is not this phrase's
  const params = phraseParams(tpl);
  for (const p of tpl.params) {
    if (!params[p]) { phraseError(p, p === 'ref' ? t('hotline.chooseAbout') : t('hotline.form.required', { field: phraseParamName(p) })); return; }
  }
  const long = params.place && tooLong(params.place, 200);
  if (long) { phraseError('place', long); return; }
  // a window that ends before it starts, said beside its end in the page's words (the service's refusal named
  // "params.t2" and "t1", in English, which the form calls start and end)
  if (tpl.params.includes('t1') && tpl.params.includes('t2') && !(params.t2 > params.t1)) {
    phraseError('t2', t('notify.errors.endAfterStart')); return;
  }
  const to = recipients(true);
  if (to === null) { phraseError('_general', t('hotline.toNone')); return; }
  try {
    const sent = await api('POST', M('/messages'), { template: tpl.id, params, about: aboutOf(params.ref), to });
    S.knownMessages.add(sent.id);
    closePhrase(); // its subject's boxes as the officer had them, then everyone again for the next message
    everyoneAgain();
    await refresh(['messages', 'conflicts', 'waiting', 'lines']);
  } catch (e) {
    // The form stays open as it was typed; the error goes beside the field it names.
    const name = String(e.field || '').split('.').pop();
    phraseError(tpl.params.includes(name) ? name : '_general', e.message);
  }
}

function closePhrase() {
  const form = $('#phrase-form');
  const was = phraseOpen;
  stopPick();
  if (document.querySelector('#to-parties input[data-left-out]')) markLeftOut(NOBODY, ''); // the free text's "To" again
  phraseOpen = null;
  form.hidden = true;
  form.replaceChildren();
  document.querySelectorAll('#phrase-buttons [aria-expanded]').forEach((b) => b.setAttribute('aria-expanded', 'false'));
  const button = was && document.querySelector(`#phrase-buttons [data-template="${was.id}"]`);
  if (button) button.focus();
}

/* A place clicked on the map: "34.5574 N 38.3169 E". */
function startPick() {
  const map = getMap();
  if (!map) return;
  picking = true;
  $('#pp-pick').setAttribute('aria-pressed', 'true');
  document.body.classList.add('picking');
  $('#pp-place-hint').textContent = t('hotline.form.pickNow');
  map.once('click', (e) => {
    if (!picking) return;
    const { lat, lng } = e.latlng;
    const input = $('#pp-place');
    if (input) {
      // Coordinates read the same in every language (Western digits, N/E as in the mechanism's records).
      input.value = `${Math.abs(lat).toFixed(4)} ${lat >= 0 ? 'N' : 'S'} ${Math.abs(lng).toFixed(4)} ${lng >= 0 ? 'E' : 'W'}`;
      input.focus();
    }
    stopPick();
    updatePreview();
  });
}

function stopPick() {
  picking = false;
  document.body.classList.remove('picking');
  const pick = $('#pp-pick');
  if (pick) pick.setAttribute('aria-pressed', 'false');
  const hint = $('#pp-place-hint');
  if (hint) hint.textContent = t('hotline.form.placeHint');
}

/* What a reference (C…, M…, an activity id) is, for a message's "about". */
export function aboutOf(ref) {
  if (!ref) return undefined;
  if (S.conflicts.some((c) => c.id === ref)) return { kind: 'conflict', id: ref };
  if (S.activities.some((a) => a.id === ref)) return { kind: 'activity', id: ref };
  if (S.messages.some((m) => m.id === ref)) return { kind: 'message', id: ref }; // a line check, an alert
  return undefined;
}

export async function sendMessage(body) {
  showHotlineError('');
  try {
    const sent = await api('POST', M('/messages'), body);
    S.knownMessages.add(sent.id);
    dirty('messages', 'waiting');
    return true;
  } catch (e) {
    showHotlineError(e.message);
    return false;
  }
}

/* Escape: stop picking a place, else close the phrase form if it is open; true if it did. */
export function escapeHotline() {
  if (picking) { stopPick(); const input = $('#pp-place'); if (input) input.focus(); return true; }
  if ($('#phrase-form').hidden) return false;
  closePhrase();
  return true;
}

/* ------------------------------------------------------------------ a free text survives a reload */

/* A free text being typed is kept in the tab (as the token is) for this member, with what it is about and
 * whom it is to: a reload mid-sentence, or the page opened again in the same tab, finds it as it was. It
 * goes once sent, and when the officer signs out (not when the service turns the token away: the officer
 * signs in again and finds it). */
const DRAFT_KEY = 'deconflict.draft';
const draftKey = () => `${DRAFT_KEY}.${S.me.mechanism}.${S.me.member.id}`;

function keepDraft() {
  const text = $('#free-text').value;
  try {
    if (!text.trim()) { sessionStorage.removeItem(draftKey()); return; }
    sessionStorage.setItem(draftKey(), JSON.stringify({ text, re: $('#re').value, to: recipients() }));
  } catch { /* storage full or refused: the text stays in the box */ }
}

/* After sign-in, once the About and To rows are drawn: the free text kept before a reload, if any. A subject
 * or party no longer offered is left at the page's default (the officer sees it before sending). */
export function restoreDraft() {
  let draft = null;
  try { draft = JSON.parse(sessionStorage.getItem(draftKey()) || 'null'); } catch { draft = null; }
  if (!draft || typeof draft.text !== 'string' || !draft.text.trim()) return;
  $('#free-text').value = draft.text;
  if (Array.isArray(draft.to) || draft.to === null) {
    const to = new Set(draft.to || []);
    document.querySelectorAll('#to-parties input[name=to]').forEach((b) => { b.checked = to.has(b.value); });
  }
  const select = $('#re');
  if (typeof draft.re === 'string' && [...select.options].some((o) => o.value === draft.re)) {
    select.value = draft.re;
    chosenRe = draft.re;
  }
}

/* At sign-out: no free text of this tab is left for whoever signs in next. */
export function dropDrafts() {
  try {
    for (const k of Object.keys(sessionStorage)) if (k.startsWith(`${DRAFT_KEY}.`)) sessionStorage.removeItem(k);
  } catch { /* nothing kept */ }
}

export function initHotline() {
  $('#free-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = $('#free-text');
    if (!input.value.trim()) return;
    const to = recipients();
    if (to === null) { showHotlineError(t('hotline.toNone')); return; }
    const long = tooLong(input.value.trim(), 4000);
    if (long) { showHotlineError(long); return; }
    if (await sendMessage({ text: input.value.trim(), about: aboutOf($('#re').value), to })) { // kept trimmed
      input.value = '';
      everyoneAgain();
      keepDraft();
    }
  });
  $('#free-text').addEventListener('input', keepDraft);
  $('#re').addEventListener('change', () => { chosenRe = $('#re').value; keepDraft(); });
  $('#to-parties').addEventListener('change', keepDraft);
}
