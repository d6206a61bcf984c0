/* A party's own key in the page. A party that signs its own entries (the service holds no key of its)
 * signs every write here, as `deconflict … --key` and the Python client do (client.py):
 *
 *   1. the write is sent prepared (Deconflict-Prepare: true): the service appends nothing and answers with
 *      the entry it would append and its payload's canonical JSON text;
 *   2. the page signs only what it asked for: the entry's actor is this member, its type the write's, its
 *      mechanism this one, the payload's text hashes to the entry's payload_hash and names what the write
 *      is about, and the entry's hash is computed again here from its head;
 *   3. the entry's hash is signed with the key (WebCrypto's Ed25519) and the same write sent again with the
 *      signature; if the record moved on meanwhile (409 on `signature`) it is prepared again.
 *
 * The key file (`deconflict key new`'s: party, key_id, public_key, seed) is read in the page and its seed
 * imported as a key that cannot be exported; nothing of it is sent or stored, and it is gone when the page
 * is closed, reloaded or signed out of. A write the service refuses because the party signs its own entries
 * (403 on `key`) asks for the file, then goes on signed. */
import { S } from './state.js';
import { el, $ } from './dom.js';
import { t } from './i18n.js';
import { partyName } from './live.js';

const RETRIES = 3;
const PKCS8_ED25519 = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
const ENTRY_MESSAGE = 'deconflict/entry/v1\n'; // record/signing.py: entry_message

/* The writes that append an entry of the member's, and the entry's type (the service's EntryType). */
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

export class KeyError extends Error {}

const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)));
const b64url = (s) => s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4);
const hex = (buf) => [...new Uint8Array(buf)].map((x) => x.toString(16).padStart(2, '0')).join('');
const sha256 = async (text) => hex(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

/* The fields of a key file: lines `name = "value"` (the TOML record/signing.py writes), comments aside. */
function fields(text) {
  const out = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([a-z_]+)\s*=\s*"([^"\\]*)"\s*$/.exec(line);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

/* Read a key file for this member's party: S.key = { party, keyId, key } once it is this party's and
 * whole (its public key and key id those of its seed). Throws KeyError in the reader's words. */
export async function loadKey(file) {
  let text;
  try { text = await file.text(); } catch { throw new KeyError(t('key.unreadable', { name: file.name })); }
  const f = fields(text);
  let seed = null;
  try { seed = f.seed ? bytes(f.seed) : null; } catch { seed = null; }
  if (!f.party || !seed || seed.length !== 32) throw new KeyError(t('key.notAKeyFile', { name: file.name }));
  if (f.party !== S.party) throw new KeyError(t('key.otherParty', { name: file.name, party: partyName(f.party), us: partyName(S.party) }));
  const pkcs8 = new Uint8Array([...PKCS8_ED25519, ...seed]);
  let probe;
  try {
    probe = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, true, ['sign']);
  } catch {
    throw new KeyError(t('key.unsupported'));
  }
  const publicKey = bytes(b64url((await crypto.subtle.exportKey('jwk', probe)).x));
  const keyId = 'ed25519:' + hex(await crypto.subtle.digest('SHA-256', publicKey)).slice(0, 24);
  let stated = null;
  try { stated = f.public_key ? bytes(f.public_key) : null; } catch { stated = new Uint8Array(); }
  if ((stated && !same(stated, publicKey)) || (f.key_id && f.key_id !== keyId)) {
    throw new KeyError(t('key.damaged', { name: file.name }));
  }
  const key = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, false, ['sign']);
  pkcs8.fill(0);
  seed.fill(0);
  S.key = { party: f.party, keyId, key };
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

/* Whether the prepared entry is the one this write asked for; the reason (in the reader's words) if not. */
async function notAsked(answer, write, body) {
  const e = answer && answer.prepared;
  const text = answer && answer.canonical_payload;
  if (!e || typeof text !== 'string' || !Number.isSafeInteger(e.seq)) return t('key.notPrepared');
  if (e.actor !== S.me.member.id || e.type !== write.type || e.mechanism !== S.me.mechanism) {
    return t('key.notAsked', { type: e.type, actor: e.actor });
  }
  if (await sha256(text) !== e.payload_hash || await entryHash(e) !== e.hash) return t('key.notWhole');
  let payload;
  try { payload = JSON.parse(text); } catch { return t('key.notWhole'); }
  const about = write.id !== null ? payload.id === write.id
    : write.type === 'activity.notified' ? payload.kind === (body && body.kind)
    : payload.from_party === S.party; // message.sent
  return about ? null : t('key.notAsked', { type: e.type, actor: e.actor });
}

/* Send a write signed with the loaded key: `send(extraHeaders)` makes the request and returns the Response. */
export async function signed(write, body, send, refuse) {
  for (let i = 0; i < RETRIES; i += 1) {
    const res = await send({ 'Deconflict-Prepare': 'true' });
    let answer = null;
    try { answer = await res.json(); } catch { answer = null; }
    if (!res.ok) return refuse(res, answer);
    const why = await notAsked(answer, write, body);
    if (why) throw new KeyError(why);
    const e = answer.prepared;
    const signature = await crypto.subtle.sign({ name: 'Ed25519' }, S.key.key, new TextEncoder().encode(ENTRY_MESSAGE + e.hash));
    const sent = await send({
      'Deconflict-Signed-At': e.at, 'Deconflict-Entry-Hash': e.hash,
      'Deconflict-Key-Id': S.key.keyId, 'Deconflict-Signature': b64(signature),
    });
    let doc = null;
    try { doc = await sent.json(); } catch { doc = null; }
    if (sent.status === 409 && doc && doc.field === 'signature') continue; // the record moved on: prepare again
    return sent.ok ? doc : refuse(sent, doc);
  }
  throw new KeyError(t('key.overtaken', { count: RETRIES }));
}

/* Ask for the party's key file: resolves true once one is loaded, false if the reader declines. */
export function askForKey() {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const input = el('input', { type: 'file', id: 'key-file', accept: '.key,text/plain', hidden: true });
    const error = el('p', { id: 'key-error', class: 'error', role: 'alert' });
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
