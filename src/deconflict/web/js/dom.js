/* Small DOM helpers shared by every panel. */

export const $ = (sel, root = document) => root.querySelector(sel);

/* el('button', { type: 'button', class: 'ack', onclick: fn, text: '…' }, ...children) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k === 'style') node.style.cssText = v; /* through the CSSOM: the page's CSP allows no inline style attribute */
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}

/* fn once calls stop for ms; .cancel() drops a call still waiting. */
/* fn after calls stop for ms; with maxMs, also once maxMs after the first call of a burst that never stops. */
export function debounce(fn, ms, maxMs = Infinity) {
  let t = null;
  let first = null;
  const call = (...args) => {
    clearTimeout(t);
    first = first ?? Date.now();
    const wait = Math.max(0, Math.min(ms, first + maxMs - Date.now()));
    t = setTimeout(() => { first = null; fn(...args); }, wait);
  };
  call.cancel = () => { clearTimeout(t); first = null; };
  return call;
}
