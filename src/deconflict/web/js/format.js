/* Times, windows, numbers, bands and countdowns as the reader sees them, in the member's language.
 * Every time is UTC and says so; every duration says its units. */
import { locale, t } from './i18n.js';
import { FL_M, FT_M } from './units.js';

export const pad = (n) => String(n).padStart(2, '0');
const hhmm = (d) => `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;

/* One formatter per locale and options: making an Intl formatter costs as much as formatting hundreds of
 * values, and a long list formats thousands. */
const formatters = new Map();
function formatter(Kind, options) {
  const key = `${Kind.name} ${locale()} ${JSON.stringify(options)}`;
  let f = formatters.get(key);
  if (!f) { f = new Kind(locale(), options); formatters.set(key, f); }
  return f;
}

/* Ids in their numeric order ("C2" before "C10"): one collator for every comparison, as localeCompare with
 * options makes one per call (a sort of 2,000 conflicts makes tens of thousands). */
export const compareIds = new Intl.Collator('en', { numeric: true }).compare;

/* 9 April as the reader writes it (day and month name), in UTC. */
export function fmtDay(iso) {
  return formatter(Intl.DateTimeFormat, { day: '2-digit', month: 'short', timeZone: 'UTC' }).format(new Date(iso));
}
/* "09 Apr 06:10 UTC" (worded per language). */
export function fmtTime(iso) {
  const d = new Date(iso);
  return t('time.at', { day: fmtDay(iso), time: hhmm(d) });
}
/* "09 Apr 08:00–10:00 UTC", "09 Apr 22:00 UTC – 10 Apr 02:00 UTC", "from 09 Apr 08:00 UTC". */
export function fmtWindow(start, end) {
  if (!end) return t('time.from', { start: fmtTime(start) });
  const a = new Date(start), b = new Date(end);
  if (a.toISOString().slice(0, 10) === b.toISOString().slice(0, 10)) {
    return t('time.windowSameDay', { day: fmtDay(start), from: hhmm(a), to: hhmm(b) });
  }
  return t('time.window', { start: fmtTime(start), end: fmtTime(end) });
}
/* The clock in the header: "06:00:00 UTC". */
export const fmtClock = (d) => t('time.clock', { time: `${hhmm(d)}:${pad(d.getUTCSeconds())}` });

export function fmtNum(x, digits = 0) {
  return formatter(Intl.NumberFormat, { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(x);
}
/* Why a text is longer than a field may hold, in the reader's words (null: it fits). Counted as the service counts
 * (characters, not UTF-16 units). An input's maxlength cut a pasted text without a word: the page says so instead. */
export function tooLong(text, max) {
  const count = [...text].length;
  return count > max ? t('hotline.form.tooLong', { count: fmtNum(count), max: fmtNum(max) }) : null;
}
export const fmtKm = (m, digits = 1) => t('units.km', { value: fmtNum(m / 1000, digits) });
export const fmtM = (m) => t('units.m', { value: fmtNum(Math.round(m)) });
export const fmtMin = (min, digits = 0) => t('units.min', { value: fmtNum(min, digits) });
export const fmtBand = (f, c) => (typeof f === 'number' && typeof c === 'number'
  ? t('units.band', { floor: fmtNum(Math.round(f)), ceiling: fmtNum(Math.round(c)) }) : t('units.anyAltitude'));

/* "9 min 59 s", "1 h 05 min 03 s". */
export function fmtDuration(ms) {
  const s = Math.floor(Math.abs(ms) / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return h ? t('duration.hms', { h, m: pad(m), s: pad(sec) }) : t('duration.ms', { m, s: pad(sec) });
}
/* "9 min 59 s left" or "overdue by 0 min 27 s". */
export const fmtCountdown = (ms) => (ms >= 0
  ? t('countdown.left', { duration: fmtDuration(ms) }) : t('countdown.overdue', { duration: fmtDuration(ms) }));

/* An altitude in feet, and as a flight level ("FL100"). */
export const fmtFt = (m) => t('units.ft', { value: fmtNum(Math.round(m / FT_M)) });
export const fmtFL = (m) => t('units.fl', { value: String(Math.round(m / FL_M)).padStart(3, '0') });
/* An altitude given in `unit`, worded with what it is in the others: "FL100 = 10,000 ft = 3,048 m". */
export function fmtAltIn(m, unit) {
  if (unit === 'FL') return t('units.sameAs3', { a: fmtFL(m), b: fmtFt(m), c: fmtM(m) });
  if (unit === 'ft') return t('units.sameAs', { a: fmtFt(m), b: fmtM(m) });
  return t('units.sameAs', { a: fmtM(m), b: fmtFt(m) });
}
/* A time picked as a UTC calendar date ("2025-04-09") and UTC hour and minute → ISO 8601 with Z; null
 * if incomplete. Nothing here goes through the browser's time zone. */
export function isoFromUtcParts(date, hour, minute) {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date || '') || hour === '' || minute === '') return null;
  return `${date}T${pad(Number(hour))}:${pad(Number(minute))}:00Z`;
}
/* ISO 8601 → { date: 'YYYY-MM-DD', hour: 'HH', minute: 'MM' } read in UTC. */
export function utcParts(iso) {
  const d = new Date(iso);
  return { date: d.toISOString().slice(0, 10), hour: pad(d.getUTCHours()), minute: pad(d.getUTCMinutes()) };
}
/* "06:00" in UTC (the time bar's ticks; the bar says UTC once). */
export const fmtHour = (d) => hhmm(d);
