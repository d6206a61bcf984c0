/* The page in the member's language: i18next (vendored, web/vendor/i18next/) with one catalogue per
 * language in web/i18n/<lang>.json. English is the fallback for a missing key or language.
 *
 *   t('conflicts.empty')                       a string by key (nested keys joined with '.')
 *   t('conflicts.ackBy', { time, parties })    with {{placeholders}}
 *   <span data-i18n="hotline.heading">         static text in index.html, set by applyStatic()
 *   data-i18n-title / -aria-label / -placeholder   the same for those attributes
 *
 * Names that come from data (activity kinds, zone kinds, rung names, …) go through the helpers below,
 * which fall back to the name as given when the catalogue has none. */
import i18next from '../vendor/i18next/i18next.js';

export const LANGUAGES = ['en', 'tr', 'he', 'ar', 'ru'];
const RTL = new Set(['he', 'ar']);
const FSI = '\u2068', PDI = '\u2069'; // isolate interpolated values inside right-to-left text

const loaded = {};
async function catalogue(lang) {
  if (!loaded[lang]) {
    const res = await fetch(`web/i18n/${lang}.json`);
    if (!res.ok) throw new Error(`catalogue ${lang}: HTTP ${res.status}`);
    loaded[lang] = await res.json();
  }
  return loaded[lang];
}

/* The language to use for a wanted one ('he', 'he-IL', 'az', …): a supported one, else English. */
export function supported(wanted) {
  const base = String(wanted || '').toLowerCase().split(/[-_]/)[0];
  return LANGUAGES.includes(base) ? base : 'en';
}

export const lang = () => i18next.language || 'en';
export const isRtl = () => RTL.has(lang());
/* The locale for Intl: the member's language, always with Western digits (ids, coordinates and
 * times are in Western digits everywhere in the mechanism). */
export const locale = () => `${lang()}-u-nu-latn`;

/* Switch the page to `wanted` (loading its catalogue once): <html lang dir>, static texts.
 * Calls are queued, so the sign-in page's language and the member's cannot interleave. */
let queue = Promise.resolve();
export function setLanguage(wanted) {
  queue = queue.catch(() => {}).then(() => switchTo(wanted));
  return queue;
}
async function switchTo(wanted) {
  const code = supported(wanted);
  const resources = { en: { translation: await catalogue('en') } };
  if (code !== 'en') {
    try { resources[code] = { translation: await catalogue(code) }; } catch (e) { console.warn(e); }
  }
  const options = {
    lng: code, fallbackLng: 'en', resources, nsSeparator: false, returnNull: false, returnEmptyString: false,
    interpolation: { escapeValue: false }, // every string goes into textContent, never into HTML
  };
  if (i18next.isInitialized) {
    for (const [l, r] of Object.entries(resources)) i18next.addResourceBundle(l, 'translation', r.translation, true, true);
    await i18next.changeLanguage(code);
  } else {
    await i18next.init(options);
  }
  document.documentElement.lang = code;
  document.documentElement.dir = RTL.has(code) ? 'rtl' : 'ltr';
  applyStatic(document);
}

export function t(key, vars) {
  if (vars && isRtl()) {
    vars = Object.fromEntries(Object.entries(vars).map(([k, v]) =>
      [k, k !== 'defaultValue' && (typeof v === 'string' || typeof v === 'number') && v !== '' ? `${FSI}${v}${PDI}` : v]));
  }
  return i18next.t(key, vars);
}

/* Fill every element marked with data-i18n* under `root`. */
export function applyStatic(root) {
  for (const node of root.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
  for (const [attr, data] of [['title', 'i18nTitle'], ['aria-label', 'i18nAriaLabel'], ['placeholder', 'i18nPlaceholder']]) {
    for (const node of root.querySelectorAll(`[data-i18n-${attr}]`)) node.setAttribute(attr, t(node.dataset[data]));
  }
}

/* Names from data, by their English identifier; the identifier itself when the catalogue has none. */
const named = (group, id, fallback) => (id === undefined || id === null || id === ''
  ? '' : i18next.t(`${group}.${id}`, { defaultValue: fallback ?? String(id).replace(/_/g, ' ') }));
export const kindName = (k) => named('kinds', k);
export const zoneKindName = (k) => named('zoneKinds', k);
export const zoneTag = (k) => named('zoneTags', k, String(k).replace(/_/g, ' ').toUpperCase());
export const conflictKindName = (k) => named('conflictKinds', k);
export const conflictStatusName = (s) => named('conflictStatuses', s);
export const resolutionName = (r) => named('resolutions', r);
export const activityStateName = (s) => named('activityStates', s);
export const messageTypeName = (m) => named('messageTypes', m);
export const lineStateName = (s) => named('lineStates', s);
export const roleName = (r) => named('roles', r);
/* A rung of the escalation ladder, keyed by its English name in the mechanism's rules. */
export const rungName = (name) => named('rungs', name, name);
export const phraseParamName = (p) => named('phraseParams', p, p);
