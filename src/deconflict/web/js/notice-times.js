/* The notice form's start and end, picked as a UTC date, hour and minute (never through the browser's
 * time zone); the hidden #n-start/#n-end hold the ISO value sent, the line under the pickers says it
 * in words. */
import { $, el } from './dom.js';
import { serverNow } from './state.js';
import { fmtTime, isoFromUtcParts, pad, utcParts } from './format.js';
import { t } from './i18n.js';

const WHICH = ['start', 'end'];

/* The ISO time picked for 'start' or 'end', or null while incomplete. */
export function timeValue(which) {
  return isoFromUtcParts($(`#n-${which}-date`).value, $(`#n-${which}-hour`).value, $(`#n-${which}-minute`).value);
}

export function setTime(which, iso) {
  const p = utcParts(iso);
  $(`#n-${which}-date`).value = p.date;
  $(`#n-${which}-hour`).value = p.hour;
  const minute = $(`#n-${which}-minute`);
  if (![...minute.options].some((o) => o.value === p.minute)) {
    // A time not on the 5-minute steps (an amended notice, say): offer it as it is.
    const after = [...minute.options].find((o) => o.value > p.minute);
    minute.insertBefore(el('option', { value: p.minute }, p.minute), after || null);
  }
  minute.value = p.minute;
  syncTime(which);
}

function syncTime(which) {
  const iso = timeValue(which);
  $(`#n-${which}`).value = iso || '';
  $(`#n-${which}-echo`).textContent = iso ? fmtTime(iso) : '';
}

/* In about two hours (past the usual minimum notice), on a quarter hour, for two hours. */
export function defaultWindow() {
  const start = new Date(Math.floor((serverNow().getTime() + 2 * 3600e3) / 900e3) * 900e3);
  setTime('start', start.toISOString());
  setTime('end', new Date(start.getTime() + 2 * 3600e3).toISOString());
}

function options(select, values) { select.replaceChildren(...values.map((v) => el('option', { value: v }, v))); }

/* Once, at load: the original inputs become hidden, a date, hour and minute picker goes after each;
 * onChange runs when a part is chosen (the form checks the notice then). */
export function buildTimePickers(onChange) {
  for (const which of WHICH) {
    const input = $(`#n-${which}`);
    const field = input.closest('.field');
    field.classList.add('when');
    input.type = 'hidden';
    const label = field.querySelector('label');
    label.id = `n-${which}-label`;
    label.setAttribute('for', `n-${which}-date`);
    const hour = el('select', { id: `n-${which}-hour`, 'data-part': 'hour' });
    const minute = el('select', { id: `n-${which}-minute`, 'data-part': 'minute' });
    options(hour, Array.from({ length: 24 }, (_, h) => pad(h)));
    options(minute, Array.from({ length: 12 }, (_, i) => pad(i * 5)));
    const picker = el('div', { class: 'utc-picker', role: 'group', 'aria-labelledby': `n-${which}-label`, dir: 'ltr' },
      el('input', { type: 'date', id: `n-${which}-date`, 'data-part': 'date', required: true }),
      hour, el('span', { 'aria-hidden': 'true', text: ':' }), minute,
      el('span', { class: 'utc-tag', id: `n-${which}-utc` }));
    input.after(picker, el('span', { class: 'conv', id: `n-${which}-echo`, dir: 'auto' }));
    for (const part of picker.querySelectorAll('input, select')) {
      part.addEventListener('change', () => { syncTime(which); onChange(); });
      part.addEventListener('input', () => syncTime(which));
    }
  }
}

/* The pickers' names and the time in words, in the page's language. */
export function relabelTimes() {
  for (const which of WHICH) {
    $(`#n-${which}-date`).setAttribute('aria-label', t('notify.when.date'));
    $(`#n-${which}-hour`).setAttribute('aria-label', t('notify.when.hour'));
    $(`#n-${which}-minute`).setAttribute('aria-label', t('notify.when.minute'));
    $(`#n-${which}-utc`).textContent = t('notify.when.utc');
    syncTime(which);
  }
}
