/* Numbers as the reader types them, read by the page's own locale: one reader for every numeric field
 * of the notice form (floor, ceiling, radius, centre latitude and longitude).
 *
 *   readNumber('1.000', { range: [-500, 30000] })   on the Turkish page → { value: 1000 }
 *   readNumber('1,000', { range: [-500, 30000] })   on the Turkish page → { error: 'ambiguous', reading: 1, other: 1000 }
 *   readNumber('5,5')                               on the Hebrew page  → { error: 'invalid', suggestion: 5.5 }
 *   fmtPlain(34.5226, 4)                            on the Turkish page → '34,5226' (what the form writes)
 *
 * Accepted: plain digits, the page's grouping (groups of exactly three digits), one decimal separator
 * of the page's, a leading sign. Refused: anything else, and a number that reads one way here and
 * 1000 times that the other usual way (1.000 on an English page, 1,000 on a Turkish one) when both
 * readings are in the field's range. Nothing is truncated: a text is read whole or not at all.
 *
 * A field read `eitherWay` (the centre's latitude and longitude) also takes the other usual way when the
 * page's own reading is impossible or out of its range and the other is in it: 36.2 on the Turkish page,
 * 34,6 on the Hebrew one, 36.512 read as 36,512 on the Turkish page (36.512 there is out of a latitude's
 * range). The value understood is shown under the field, in the page's way. */
import { locale } from './i18n.js';

const BIDI = /[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]/g;
const SPACES = /[\s\u00a0\u202f\u2007]/g;
const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/* The page's group and decimal separators (from Intl, never guessed). */
export function separators(loc = locale()) {
  const parts = new Intl.NumberFormat(loc).formatToParts(1234567.5);
  const group = (parts.find((p) => p.type === 'group') || { value: ',' }).value;
  const decimal = (parts.find((p) => p.type === 'decimal') || { value: '.' }).value;
  return { group, decimal, spaceGroup: /^[\s\u00a0\u202f\u2007]$/.test(group) };
}

/* `text` read with this group and decimal separator: a number, or null if it is not written so. */
function readWith(text, group, decimal) {
  const m = /^([+\-\u2212]?)(.*)$/.exec(text);
  const sign = m[1] === '-' || m[1] === '\u2212' ? -1 : 1;
  const body = m[2];
  const g = esc(group), d = esc(decimal);
  const plain = new RegExp(`^\\d+(?:${d}\\d+)?$`);
  const grouped = new RegExp(`^\\d{1,3}(?:${g}\\d{3})+(?:${d}\\d+)?$`);
  if (!plain.test(body) && !grouped.test(body)) return null;
  const digits = body.split(group).join('').replace(decimal, '.');
  const x = Number(digits);
  return Number.isFinite(x) ? sign * x : null;
}

/* What the reader typed, understood: { value } or { error: 'missing' | 'invalid' | 'ambiguous', … }.
 * range: [min, max] of the field, used to tell whether the other reading of an ambiguous text could
 * be meant at all (a latitude of 34,567 cannot). */
export function readNumber(raw, { range = null, loc = locale(), eitherWay = false } = {}) {
  const { group, decimal, spaceGroup } = separators(loc);
  let text = String(raw ?? '').replace(BIDI, '').trim();
  if (text === '') return { error: 'missing' };
  // A group written as a space: any kind of space will do (no one types U+202F).
  const g = spaceGroup ? ' ' : group;
  if (spaceGroup) text = text.replace(SPACES, ' ');
  const inRange = (x) => !range || (x >= range[0] && x <= range[1]);
  const value = readWith(text, g, decimal);
  // The other usual way of writing numbers (1,000.5 against 1.000,5), for the ambiguous and the slips.
  const others = [[',', '.'], ['.', ',']].filter(([og, od]) => !(og === g && od === decimal));
  if (value !== null) {
    // One decimal separator followed by exactly three digits, no grouping: "1.000" here, "1,000" there.
    const unsigned = text.replace(/^[+\-\u2212]/, '');
    const looksGrouped = new RegExp(`^[1-9]\\d{0,2}${esc(decimal)}\\d{3}$`).test(unsigned);
    if (looksGrouped) {
      const other = Number(text.replace(decimal, '').replace('\u2212', '-'));
      if (other !== value && inRange(other) && inRange(value)) return { error: 'ambiguous', reading: value, other };
    }
    if (!eitherWay || inRange(value)) return { value };
  }
  const readings = [...new Set(others.map(([og, od]) => readWith(text, og, od)).filter((x) => x !== null))];
  // A field that takes either way (a coordinate, often pasted from a GPS or another tool in the other
  // convention): when this page's reading is impossible there and the other one is not, it is the one meant.
  const fit = readings.filter(inRange); // (a page that groups with a space tries both other ways: 37.125 and 37125)
  if (eitherWay && fit.length === 1) return { value: fit[0] };
  if (value !== null) return { value };
  return readings.length === 1 ? { error: 'invalid', suggestion: readings[0] } : { error: 'invalid' };
}

/* A number as the form writes it back into a field: the page's decimal separator, no grouping. */
export function fmtPlain(x, maxDigits = 2, minDigits = 0) {
  return new Intl.NumberFormat(locale(), { useGrouping: false, minimumFractionDigits: minDigits, maximumFractionDigits: maxDigits })
    .format(x).replace(BIDI, '');
}

/* The number of decimals a reading needs to be shown as typed (5,50 → 2). */
export function decimalsOf(raw, loc = locale()) {
  const { decimal } = separators(loc);
  const text = String(raw ?? '').replace(BIDI, '').trim();
  const i = text.lastIndexOf(decimal);
  return i < 0 ? 0 : Math.min(text.length - i - 1, 10);
}
