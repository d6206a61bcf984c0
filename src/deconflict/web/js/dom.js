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
export function debounce(fn, ms) {
  let t = null;
  const call = (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
  call.cancel = () => clearTimeout(t);
  return call;
}
