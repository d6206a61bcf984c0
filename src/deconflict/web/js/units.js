/* Units of the trade, one spelling each (as deconflict.units on the service's side): metres, feet,
 * flight levels, nautical miles and knots, and the altitude units the notice form offers.
 *
 *   toMetres(100, 'FL')    → 3048      (an altitude as typed → metres, to the centimetre)
 *   fromMetres(3048, 'ft') → 10000     (metres → the unit, rounded as a reader gives it)
 */

/* Metres per international foot. */
export const FT_M = 0.3048;
/* Metres per flight level (hundreds of feet on the standard pressure setting; here simply 100 ft a
 * level, as notices give it). */
export const FL_M = 100 * FT_M;
/* Metres per international nautical mile. */
export const NM_M = 1852;
/* Metres per second per knot. */
export const KT_MPS = NM_M / 3600;
/* Metres per degree of latitude (near enough for placing a label or a handle on the map). */
export const M_PER_DEG_LAT = 111320;

/* Altitude units of the notice form: metres (what is stored and sent), feet, flight level. */
export const ALT_UNITS = ['m', 'ft', 'FL'];
const PER_UNIT = { m: 1, ft: FT_M, FL: FL_M };
/* A value in `unit` → metres (to the centimetre), and metres → `unit` (rounded as a reader gives it). */
export const toMetres = (value, unit) => Math.round(value * (PER_UNIT[unit] || 1) * 100) / 100;
export const fromMetres = (m, unit) => (unit === 'm' ? Math.round(m * 10) / 10 : Math.round(m / (PER_UNIT[unit] || 1)));
