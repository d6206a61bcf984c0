/* A party's own key in the page. A party that signs its own entries (the service holds no key of its)
 * signs every write here, as `deconflict … --key` and the Python client do (client.py):
 *
 *   1. the write is sent prepared (Deconflict-Prepare: true): the service appends nothing and answers with
 *      the entry it would append and its payload's canonical JSON text;
 *   2. the page signs only what it asked for: the entry's actor is this member, its type the write's, its
 *      mechanism this one, its time the service's now (within minutes), its place after the entries the page
 *      holds, its hash computed again here from its head, and the payload's text hashes to its payload_hash
 *      and holds what the write sent (every field of the body, the id in the path);
 *   3. the entry's hash is signed with the key (WebCrypto's Ed25519) and the same write sent again with the
 *      signature; if the record moved on meanwhile (409 on `signature`) it is prepared again.
 *
 * These checks catch a service that prepares something else by mistake. They cannot stand against the
 * service's operator, who serves this very script: a party that does not trust the operator with its key
 * signs with the command line (--key), whose code it holds (README, "The signed record").
 *
 * The key file (`deconflict keys generate`'s: party, key_id, public_key, seed) is read in the page and its
 * seed imported as a key that cannot be exported; nothing of it is sent or stored, and it is gone when the
 * page is closed, reloaded or signed out of. A write the service refuses because the party signs its own
 * entries, or because the key loaded is not (or no longer) the party's (403 on `key`), asks for the file,
 * then goes on signed. */
import { S, serverNow } from './state.js';
import { el, $ } from './dom.js';
import { t } from './i18n.js';
import { partyName } from './live.js';

const RETRIES = 3;
const PKCS8_ED25519 = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
const ENTRY_MESSAGE = 'deconflict/entry/v1\n'; // record/signing.py: entry_message
const SKEW_MS = 5 * 60 * 1000; // a prepared entry's time against the service's now, as the page keeps it

/* The writes that append an entry of the member's: method, path, the entry's type (the service's EntryType). */
const SIGNED = [
  ['POST', /^\/mechanisms\/[^/]+\/activities$/, 'activity.notified'],
  ['PUT', /^\/mechanisms\/[^/]+\/activities\/([^/]+)$/, 'activity.amended'],
  ['POST', /^\/mechanisms\/[^/]+\/activities\/([^/]+)\/cancel$/, 'activity.cancelled'],
  ['POST', /^\/mechanisms\/[^/]+\/conflicts\/([^/]+)\/acknowledge$/, 'conflict.acknowledged'],
  ['POST', /^\/mechanisms\/[^/]+\/conflicts\/([^/]+)\/resolve$/, 'conflict.resolved'],
  ['POST', /^\/mechanisms\/[^/]+\/messages$/, 'message.sent'],
  ['POST', /^\/mechanisms\/[^/]+\/messages\/([^/]+)\/acknowledge$/, 'message.acknowledged'],
];

/* What a write would append: { type, id } (id: the path's activity, conflict or message), or null. */
export function signedWrite(method, path) {
  for (const [m, re, type] of SIGNED) {
    const found = m === method && re.exec(path);
    if (found) return { type, id: found[1] === undefined ? null : decodeURIComponent(found[1]) };
  }
  return null;
}

/* A refusal on this side, in the reader's words (the notice form shows `worded` errors as they are). */
export class KeyError extends Error {
  constructor(message) { super(message); this.status = 0; this.worded = true; }
}

const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)));
const hex = (buf) => [...new Uint8Array(buf)].map((x) => x.toString(16).padStart(2, '0')).join('');
const sha256 = async (text) => hex(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));

/* The fields of a key file: lines `name = "value"` (or 'value'), as record/signing.py writes them; comments aside. */
function fields(text) {
  const out = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([A-Za-z_]+)\s*=\s*(?:"([^"\\]*)"|'([^']*)')\s*(?:#.*)?$/.exec(line);
    if (m) out[m[1]] = m[2] !== undefined ? m[2] : m[3];
  }
  return out;
}

const decoded = (text) => { try { return text ? bytes(text.trim()) : null; } catch { return null; } };

/* Read a key file for this member's party: S.key = { party, keyId, key } once it is this party's and whole
 * (its seed signs what its public key verifies, and its key id is that key's). Throws KeyError in words. */
export async function loadKey(file) {
  let text;
  try { text = await file.text(); } catch { throw new KeyError(t('key.unreadable', { name: file.name })); }
  const f = fields(text);
  const seed = decoded(f.seed), pub = decoded(f.public_key);
  if (!f.party || !seed || seed.length !== 32 || !pub || pub.length !== 32) {
    throw new KeyError(t('key.notAKeyFile', { name: file.name }));
  }
  if (f.party !== S.party) throw new KeyError(t('key.otherParty', { name: file.name, party: partyName(f.party), us: partyName(S.party) }));
  const pkcs8 = new Uint8Array([...PKCS8_ED25519, ...seed]); // RFC 8410: the seed in an OCTET STRING
  seed.fill(0);
  let key, verifier;
  try {
    key = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, false, ['sign']);
    verifier = await crypto.subtle.importKey('raw', pub, { name: 'Ed25519' }, true, ['verify']);
  } catch {
    throw new KeyError(t('key.unsupported'));
  } finally {
    pkcs8.fill(0);
  }
  const probe = new TextEncoder().encode('deconflict/key-check/v1');
  const whole = await crypto.subtle.verify({ name: 'Ed25519' }, verifier, await crypto.subtle.sign({ name: 'Ed25519' }, key, probe), probe);
  const keyId = 'ed25519:' + hex(await crypto.subtle.digest('SHA-256', pub)).slice(0, 24);
  if (!whole || (f.key_id && f.key_id !== keyId)) throw new KeyError(t('key.damaged', { name: file.name }));
  S.key = { party: f.party, keyId, key };
  showKey();
}

/* Forget the key (the service refused it: not, or no longer, the party's). */
function forgetKey() {
  S.key = null;
  showKey();
}

function showKey() {
  const badge = $('#key-state');
  if (!badge) return;
  badge.hidden = !S.key;
  if (S.key) {
    badge.textContent = t('key.loaded', { party: partyName(S.key.party) });
    badge.title = t('key.loadedTitle', { id: S.key.keyId });
  }
}

/* The entry's hash from its head, as record/chain.py's entry_hash writes the head's canonical JSON. */
function entryHash(e) {
  const q = JSON.stringify;
  return sha256(`{"actor":${q(e.actor)},"at":${q(e.at)},"mechanism":${q(e.mechanism)},`
    + `"payload_hash":${q(e.payload_hash)},"prev_hash":${q(e.prev_hash)},"seq":${e.seq},"type":${q(e.type)}}`);
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d/;
/* Whether the payload holds what the page sent: every field of `sent`, at any depth, the same in `got`
 * (numbers equal, a number the same as its text, times the same instant, text but for the spaces around it,
 * lists in order); fields the service adds (ids, states, times of notice) are not compared. */
function holds(sent, got) {
  if (sent === undefined) return true;
  if (Array.isArray(sent)) return Array.isArray(got) && got.length === sent.length && sent.every((x, i) => holds(x, got[i]));
  if (sent !== null && typeof sent === 'object') {
    return got !== null && typeof got === 'object' && !Array.isArray(got) && Object.entries(sent).every(([k, v]) => holds(v, got[k]));
  }
  if (typeof sent === 'number') {
    const x = typeof got === 'string' && got.trim() !== '' ? Number(got) : got;
    return typeof x === 'number' && Math.abs(sent - x) <= 1e-9 * Math.max(1, Math.abs(sent));
  }
  if (typeof sent === 'string' && typeof got === 'string' && sent !== got && ISO.test(sent) && ISO.test(got)) {
    return Date.parse(sent) === Date.parse(got) && !Number.isNaN(Date.parse(sent));
  }
  // text as the service keeps it: a title, a free text, a note trimmed of the spaces around it
  if (typeof sent === 'string' && typeof got === 'string') return sent.trim() === got.trim();
  return sent === got;
}

const sorted = (xs) => [...xs].map(String).sort();
const sameJson = (a, b) => holds(a, b) && holds(b, a);

/* The phrases that acknowledge what their ref names (hotline/messages.py ACK_PHRASES; a test holds them equal). */
const ACK_PHRASES = ['acknowledged', 'acknowledged_amending', 'holding', 'proceeding_as_notified'];
/* Whether what a prepared message settles is what its phrase may: nothing, or, for a phrase that
 * acknowledges, the conflict or the alert its ref names (and that alert's conflict). */
function settlesOnly(settles, template, ref) {
  if (!settles) return true;
  if (!ACK_PHRASES.includes(template) || typeof settles !== 'object' || typeof ref !== 'string') return false;
  const conflicts = settles.conflicts || [], messages = settles.messages || [];
  return Array.isArray(conflicts) && Array.isArray(messages) && conflicts.length <= 1 && (conflicts.includes(ref) || messages.includes(ref));
}

const ZONED = /^\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d)$/i;
/* A phrase's parameter as the service stores it (hotline/wording.py, format_param): a time with its zone
 * to the minute in UTC, a number to two decimals, text as it is; undefined: not sent. */
function sameParam(sent, got) {
  if (sent === undefined) return true;
  if (typeof got !== 'string') return false;
  if (typeof sent === 'number') return got.trim() !== '' && Math.abs(sent - Number(got)) <= 0.0051;
  if (typeof sent === 'string' && ZONED.test(sent.trim())) {
    const at = Date.parse(sent.trim());
    return !Number.isNaN(at) && new Date(at).toISOString().slice(0, 16) === got;
  }
  return sent === got;
}

/* Whether the prepared entry's payload is what this write asked for (the entry's type already one it may be). */
function asked(type, payload, write, body) {
  const b = body || {};
  if (!payload || typeof payload !== 'object') return false;
  switch (type) {
    case 'activity.notified':
      return payload.party === S.party && holds(b, payload);
    case 'activity.amended': {
      const { version, ...rest } = b;
      return payload.id === write.id && payload.version === version + 1 && holds(rest, payload);
    }
    case 'activity.cancelled':
      return payload.id === write.id && payload.state === 'cancelled' && (b.version === undefined || payload.version === b.version + 1);
    case 'conflict.acknowledged': // a conflict's, or an alert's: acknowledging the alert acknowledges its conflict
      return payload.party === S.party && (write.type === 'conflict.acknowledged'
        ? payload.id === write.id : Array.isArray(payload.messages) && payload.messages.includes(write.id));
    case 'conflict.resolved':
      return payload.id === write.id && holds(b, payload);
    case 'message.sent': {
      const { to, params = {}, ...rest } = b;
      const same = to === undefined || (Array.isArray(payload.to) && sorted(new Set(to)).join() === sorted(new Set(payload.to)).join());
      const got = payload.params;
      const worded = got !== null && typeof got === 'object' && Object.entries(params).every(([k, v]) => sameParam(v, got[k]))
        && (b.template !== undefined || Object.keys(got).length === 0); // a free text has no parameters
      // nothing the officer did not say: no template made of a free text, no subject not named, and an
      // acknowledgement only by a phrase that acknowledges, of what its ref names
      const plain = (payload.template ?? null) === (b.template ?? null) && sameJson(payload.about ?? null, b.about ?? null);
      return payload.from_party === S.party && same && worded && plain && settlesOnly(payload.settles, b.template, params.ref)
        && holds(rest, payload);
    }
    case 'message.acknowledged':
      return payload.id === write.id && payload.party === S.party;
    default:
      return false;
  }
}

/* Why the prepared entry is not to be signed (in the reader's words), or null: it is the one asked for. */
async function notAsked(answer, write, body) {
  const e = answer && answer.prepared;
  const text = answer && answer.canonical_payload;
  if (!e || typeof text !== 'string' || !Number.isSafeInteger(e.seq) || e.seq < 1
      || !['at', 'hash', 'prev_hash', 'payload_hash', 'type', 'actor', 'mechanism'].every((k) => typeof e[k] === 'string')) {
    return t('key.notPrepared');
  }
  const types = write.type === 'message.acknowledged' ? [write.type, 'conflict.acknowledged'] : [write.type];
  if (e.actor !== S.me.member.id || !types.includes(e.type) || e.mechanism !== S.me.mechanism) {
    return t('key.notAsked', { type: e.type, actor: e.actor });
  }
  if (await sha256(text) !== e.payload_hash || await entryHash(e) !== e.hash) return t('key.notWhole');
  const at = Date.parse(e.at);
  if (!(Math.abs(at - serverNow().getTime()) <= SKEW_MS)) return t('key.notNow', { at: e.at });
  if (e.seq <= S.lastSeq || (e.seq === S.lastSeq + 1 && S.lastHash && e.prev_hash !== S.lastHash)) {
    return t('key.notNext', { seq: e.seq, held: S.lastSeq });
  }
  let payload;
  try { payload = JSON.parse(text); } catch { return t('key.notWhole'); }
  return asked(e.type, payload, write, body) ? null : t('key.notAsked', { type: e.type, actor: e.actor });
}

/* Send a write signed with the loaded key: `send(extraHeaders)` makes the request and returns the Response;
 * `refuse(res, doc)` throws the service's refusal. */
export async function signed(write, body, send, refuse) {
  for (let i = 0; i < RETRIES; i += 1) {
    const res = await send({ 'Deconflict-Prepare': 'true' });
    let answer = null;
    try { answer = await res.json(); } catch { answer = null; }
    if (!res.ok) return refuse(res, answer);
    const seq = answer && answer.prepared && answer.prepared.seq;
    if (Number.isSafeInteger(seq) && seq <= S.lastSeq && i < RETRIES - 1) continue; // already overtaken: again
    const why = await notAsked(answer, write, body);
    if (why) throw new KeyError(why);
    const e = answer.prepared;
    const key = S.key; // another write may have had it refused and forgotten meanwhile
    if (!key) throw new KeyError(t('key.needed', { party: partyName(S.party) }));
    const signature = await crypto.subtle.sign({ name: 'Ed25519' }, key.key, new TextEncoder().encode(ENTRY_MESSAGE + e.hash));
    const sent = await send({
      'Deconflict-Signed-At': e.at, 'Deconflict-Entry-Hash': e.hash,
      'Deconflict-Key-Id': key.keyId, 'Deconflict-Signature': b64(signature),
    });
    let doc = null;
    try { doc = await sent.json(); } catch { doc = null; }
    if (sent.status === 409 && doc && doc.field === 'signature') continue; // the record moved on: prepare again
    if (sent.status === 403 && doc && doc.field === 'key') forgetKey(); // not, or no longer, the party's key
    return sent.ok ? doc : refuse(sent, doc);
  }
  throw new KeyError(t('key.overtaken', { count: RETRIES }));
}

let asking = null; // the key file asked for: one dialog, whatever number of writes wait on it

/* Ask for the party's key file (one dialog at a time; `why`: the service's refusal of the key loaded before):
 * resolves true once one is loaded, false if declined. */
export function askForKey(why = '') {
  if (!asking) asking = openDialog(why).finally(() => { asking = null; });
  return asking;
}

function openDialog(why) {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const input = el('input', { type: 'file', id: 'key-file', accept: '.key,text/plain', hidden: true });
    const error = el('p', { id: 'key-error', class: 'error', role: 'alert', text: why });
    const dialog = el('dialog', { class: 'confirm-step', 'data-confirm': 'key', 'aria-labelledby': 'key-h', 'aria-describedby': 'key-text' });
    const finish = (answer) => {
      if (!dialog.isConnected) return;
      dialog.close();
      dialog.remove();
      if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
      resolve(answer);
    };
    input.addEventListener('change', async () => {
      const file = input.files && input.files[0];
      if (!file) return;
      error.textContent = '';
      try {
        await loadKey(file);
        finish(true);
      } catch (e) {
        error.textContent = e instanceof KeyError ? e.message : String(e);
        input.value = '';
      }
    });
    const choose = el('button', { type: 'button', 'data-answer': 'yes', class: 'primary', onclick: () => input.click() }, t('key.choose'));
    const no = el('button', { type: 'button', 'data-answer': 'no', onclick: () => finish(false) }, t('actions.cancel'));
    dialog.append(
      el('h2', { id: 'key-h', text: t('key.title', { party: partyName(S.party) }) }),
      el('p', { id: 'key-text', text: t('key.text', { party: partyName(S.party) }) }),
      input, error,
      el('div', { class: 'actions' }, choose, no),
    );
    dialog.addEventListener('keydown', (e) => { if (e.key === 'Escape') e.stopPropagation(); });
    dialog.addEventListener('cancel', (e) => { e.preventDefault(); finish(false); });
    document.body.append(dialog);
    dialog.showModal();
    choose.focus();
  });
}
