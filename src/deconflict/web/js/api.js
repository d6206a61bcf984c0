/* Every request goes to this service, under /api/v1, with the member's bearer token. */
import { S } from './state.js';

export const API = '/api/v1';

export class ApiError extends Error {
  constructor(status, detail, field) { super(detail); this.status = status; this.field = field; }
}

export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${S.token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let doc = null;
  try { doc = await res.json(); } catch { doc = null; }
  if (!res.ok) throw new ApiError(res.status, (doc && doc.detail) || res.statusText, doc && doc.field);
  return doc;
}

/* A path under the member's mechanism: M('/conflicts') → /mechanisms/<id>/conflicts */
export const M = (p = '') => `/mechanisms/${encodeURIComponent(S.me.mechanism)}${p}`;
