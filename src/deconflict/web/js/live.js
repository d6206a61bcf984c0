/* Live updates that keep the reader's place: lists patched in place by id (focus, caret and scroll
 * stay where they were), one polite announcement per new thing for screen readers, and parties
 * named in words in the reader's language.
 *
 *   patchList(list, items)   items: [{ key, node }]; an existing child with the same data-key is
 *                            morphed into the new node (so the element that has focus survives)
 *   announce(text)           said once by screen readers (an off-screen live region)
 *   partyName('IL')          'Israel' / 'İsrail' / 'ישראל' (Intl region names, else the member's name)
 *   partyList(['IL', 'TR'])  'Israel and Türkiye', as the language joins a list
 *
 * Nodes built for patchList carry no event listeners: panels handle clicks by delegation on the
 * list (data-action attributes), so a node kept from an earlier render acts on the data of now.
 * Elements marked data-keep-text (countdowns) keep their text: tick() owns it. */
import { S } from './state.js';
import { lang, t } from './i18n.js';

export function patchList(list, items) {
  const old = new Map();
  for (const child of [...list.children]) {
    if (child.dataset && child.dataset.key) old.set(child.dataset.key, child);
    else child.remove();
  }
  let at = 0;
  for (const { key, node } of items) {
    node.dataset.key = key;
    let keep = old.get(key);
    if (keep) {
      old.delete(key);
      if (keep.tagName !== node.tagName) { keep.replaceWith(node); keep = node; } else morph(keep, node);
    } else keep = node;
    if (list.children[at] !== keep) list.insertBefore(keep, list.children[at] || null);
    at += 1;
  }
  for (const gone of old.values()) gone.remove();
}

/* Make `target` look like `source`, reusing target's nodes where the tags agree. */
export function morph(target, source) {
  if (target.nodeType !== source.nodeType || target.nodeName !== source.nodeName) {
    target.replaceWith(source);
    return;
  }
  if (target.nodeType === Node.TEXT_NODE) {
    if (target.nodeValue !== source.nodeValue) target.nodeValue = source.nodeValue;
    return;
  }
  if (target.nodeType !== Node.ELEMENT_NODE) return;
  for (const { name } of [...target.attributes]) if (!source.hasAttribute(name)) target.removeAttribute(name);
  for (const { name, value } of [...source.attributes]) if (target.getAttribute(name) !== value) target.setAttribute(name, value);
  if (target.hasAttribute('data-keep-text')) return;
  const want = [...source.childNodes];
  const have = [...target.childNodes];
  want.forEach((node, i) => {
    if (i < have.length) morph(have[i], node);
    else target.append(node);
  });
  for (let i = want.length; i < have.length; i += 1) have[i].remove();
}

let quiet = false;
/* Say `text` once to screen readers (the region is polite and holds only the last thing said). */
export function announce(text) {
  const box = document.getElementById('announce');
  if (!box || !text) return;
  // The same words twice in a row would not be read again: alternate a trailing no-break space.
  quiet = !quiet;
  box.textContent = quiet ? text : `${text}\u00a0`;
}

const regionNames = {};
/* A party in words in the reader's language: its country's name when its code is one. */
export function partyName(code) {
  if (!code) return '';
  if (code === 'system') return t('hotline.system'); // the service's own messages
  const l = lang();
  try {
    regionNames[l] = regionNames[l] || new Intl.DisplayNames([l], { type: 'region', fallback: 'none' });
    const name = /^[A-Z]{2}$/.test(code) ? regionNames[l].of(code) : null;
    if (name) return name;
  } catch { /* no region names in this browser */ }
  const member = S.mech && S.mech.members.find((m) => m.id === code);
  return (member && member.name) || code;
}

export function partyList(codes) {
  const names = (codes || []).map(partyName);
  try { return new Intl.ListFormat(lang(), { style: 'long', type: 'conjunction' }).format(names); } catch { return names.join(', '); }
}
