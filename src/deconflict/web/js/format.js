/* Times, windows, bands and countdowns as the reader sees them. */

export const pad = (n) => String(n).padStart(2, '0');
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
export const KIND_LABEL = {
  air_sortie: 'Air sortie', uav_patrol: 'UAV patrol', ground_movement: 'Ground movement',
  deployment: 'Deployment', air_defence_activation: 'Air-defence activation', exercise: 'Exercise',
};
export const ZONE_LABEL = { red_line: 'RED LINE', restricted: 'RESTRICTED', protected: 'PROTECTED', air_defence: 'AIR DEFENCE' };

export function fmtTime(iso) {
  const d = new Date(iso);
  return `${pad(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}Z`;
}
export function fmtWindow(start, end) {
  if (!end) return `from ${fmtTime(start)}`;
  const a = new Date(start), b = new Date(end);
  const sameDay = a.toISOString().slice(0, 10) === b.toISOString().slice(0, 10);
  return sameDay ? `${fmtTime(start).slice(0, -1)}–${pad(b.getUTCHours())}:${pad(b.getUTCMinutes())}Z`
    : `${fmtTime(start)} – ${fmtTime(end)}`;
}
export const fmtBand = (f, c) => (typeof f === 'number' && typeof c === 'number'
  ? `${Math.round(f).toLocaleString('en')}–${Math.round(c).toLocaleString('en')} m` : 'any altitude');
export function fmtCountdown(ms) {
  const s = Math.floor(Math.abs(ms) / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const body = h ? `${h}:${pad(m)}:${pad(sec)}` : `${pad(m)}:${pad(sec)}`;
  return ms >= 0 ? body : `OVERDUE +${body}`;
}
