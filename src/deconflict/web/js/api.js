/* Every request goes to this service, under /api/v1, with the member's bearer token. A write that appends
 * an entry of the member's is signed in the page with the party's own key when the party holds it
 * (signing.js): once the key is loaded, or asked for when the service answers that the party signs its
 * own entries. */
import { S } from './state.js';
import { KeyError, askForKey, signed, signedWrite } from './signing.js';
import { t } from './i18n.js';
import { partyName } from './live.js';

export const API = '/api/v1';

export class ApiError extends Error {
  constructor(status, detail, field) { super(detail); this.status = status; this.field = field; }
}

/* A request to the service; one that reaches no service (it is down, the network is gone) is refused in the
 * reader's words (the browser's own is "Failed to fetch", in English, whatever the page's language). */
async function request(method, path, body, extra = {}) {
  const headers = { Authorization: `Bearer ${S.token}`, ...extra };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  try {
    return await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    const unreached = new ApiError(0, t('notify.errors.network'));
    unreached.worded = true;
    throw unreached;
  }
}

const refuse = (res, doc) => { throw new ApiError(res.status, (doc && doc.detail) || res.statusText, doc && doc.field); };

export async function api(method, path, body) {
  const write = signedWrite(method, path);
  const viaKey = () => signed(write, body, (extra) => request(method, path, body, extra), refuse);
  const needed = () => new KeyError(t('key.needed', { party: partyName(S.party) }));
  if (write && S.key) {
    try {
      return await viaKey();
    } catch (e) { // the key refused (not, or no longer, the party's: forgotten): another file, then again
      if (!(e instanceof ApiError && e.status === 403 && e.field === 'key')) throw e;
      if (!await askForKey(e.message)) throw needed();
      return viaKey();
    }
  }
  const res = await request(method, path, body);
  let doc = null;
  try { doc = await res.json(); } catch { doc = null; }
  if (write && res.status === 403 && doc && doc.field === 'key') { // the party signs its own entries
    if (!S.key && !await askForKey()) throw needed();
    return viaKey();
  }
  if (!res.ok) refuse(res, doc);
  return doc;
}

/* A path under the member's mechanism: M('/conflicts') → /mechanisms/<id>/conflicts */
export const M = (p = '') => `/mechanisms/${encodeURIComponent(S.me.mechanism)}${p}`;
