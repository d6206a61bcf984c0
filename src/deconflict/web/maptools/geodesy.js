/* The map tools' pure part: range and bearing on the WGS84 ellipsoid (Vincenty's inverse solution),
 * the great circle drawn between two points, and how positions, ranges and bearings are written (DMS,
 * MGRS, three-digit bearings). No Leaflet, no DOM. */
import { forward as mgrsForward } from '../vendor/mgrs/mgrs.esm.js';

const DEG = Math.PI / 180;

/** Vincenty's inverse problem on WGS84: { distance (m), bearing (initial true azimuth, degrees
 * 0..360), finalBearing, approximate } between two points given in degrees. */
export function geodesicInverse(lat1, lon1, lat2, lon2) {
  const a = 6378137;
  const f = 1 / 298.257223563;
  const b = a * (1 - f);
  let dLon = (lon2 - lon1) % 360;
  if (dLon > 180) dLon -= 360;
  if (dLon < -180) dLon += 360;
  const Lw = dLon * DEG;
  const U1 = Math.atan((1 - f) * Math.tan(lat1 * DEG));
  const U2 = Math.atan((1 - f) * Math.tan(lat2 * DEG));
  const sinU1 = Math.sin(U1), cosU1 = Math.cos(U1);
  const sinU2 = Math.sin(U2), cosU2 = Math.cos(U2);
  let lambda = Lw;
  let sinLambda, cosLambda, sinSigma, cosSigma, sigma, cos2Alpha, cos2SigmaM;
  let converged = false;
  for (let i = 0; i < 200; i++) {
    sinLambda = Math.sin(lambda);
    cosLambda = Math.cos(lambda);
    const t1 = cosU2 * sinLambda;
    const t2 = cosU1 * sinU2 - sinU1 * cosU2 * cosLambda;
    sinSigma = Math.sqrt(t1 * t1 + t2 * t2);
    if (sinSigma === 0) return { distance: 0, bearing: 0, finalBearing: 0, approximate: false };
    cosSigma = sinU1 * sinU2 + cosU1 * cosU2 * cosLambda;
    sigma = Math.atan2(sinSigma, cosSigma);
    const sinAlpha = (cosU1 * cosU2 * sinLambda) / sinSigma;
    cos2Alpha = 1 - sinAlpha * sinAlpha;
    cos2SigmaM = cos2Alpha !== 0 ? cosSigma - (2 * sinU1 * sinU2) / cos2Alpha : 0; // equatorial line
    const C = (f / 16) * cos2Alpha * (4 + f * (4 - 3 * cos2Alpha));
    const prev = lambda;
    lambda = Lw + (1 - C) * f * sinAlpha
      * (sigma + C * sinSigma * (cos2SigmaM + C * cosSigma * (-1 + 2 * cos2SigmaM * cos2SigmaM)));
    if (Math.abs(lambda - prev) < 1e-12) { converged = true; break; }
  }
  if (!converged) return sphericalInverse(lat1, lon1, lat2, lon2);
  const uSq = (cos2Alpha * (a * a - b * b)) / (b * b);
  const A = 1 + (uSq / 16384) * (4096 + uSq * (-768 + uSq * (320 - 175 * uSq)));
  const B = (uSq / 1024) * (256 + uSq * (-128 + uSq * (74 - 47 * uSq)));
  const deltaSigma = B * sinSigma * (cos2SigmaM + (B / 4) * (cosSigma * (-1 + 2 * cos2SigmaM * cos2SigmaM)
    - (B / 6) * cos2SigmaM * (-3 + 4 * sinSigma * sinSigma) * (-3 + 4 * cos2SigmaM * cos2SigmaM)));
  const distance = b * A * (sigma - deltaSigma);
  const alpha1 = Math.atan2(cosU2 * sinLambda, cosU1 * sinU2 - sinU1 * cosU2 * cosLambda);
  const alpha2 = Math.atan2(cosU1 * sinLambda, -sinU1 * cosU2 + cosU1 * sinU2 * cosLambda);
  return { distance, bearing: normDeg(alpha1 / DEG), finalBearing: normDeg(alpha2 / DEG), approximate: false };
}

function sphericalInverse(lat1, lon1, lat2, lon2) {
  const R = 6371008.8;
  const p1 = lat1 * DEG, p2 = lat2 * DEG, dl = (lon2 - lon1) * DEG;
  const h = Math.sin((p2 - p1) / 2) ** 2 + Math.cos(p1) * Math.cos(p2) * Math.sin(dl / 2) ** 2;
  const distance = 2 * R * Math.asin(Math.min(1, Math.sqrt(h)));
  const y = Math.sin(dl) * Math.cos(p2);
  const x = Math.cos(p1) * Math.sin(p2) - Math.sin(p1) * Math.cos(p2) * Math.cos(dl);
  return { distance, bearing: normDeg(Math.atan2(y, x) / DEG), finalBearing: NaN, approximate: true };
}

const normDeg = (d) => ((d % 360) + 360) % 360;

/** Points along the great circle from a to b (for drawing; the numbers come from geodesicInverse). */
export function greatCircle(a, b, n = 48) {
  const toV = (ll) => [Math.cos(ll.lat * DEG) * Math.cos(ll.lng * DEG), Math.cos(ll.lat * DEG) * Math.sin(ll.lng * DEG), Math.sin(ll.lat * DEG)];
  const va = toV(a), vb = toV(b);
  const dot = Math.min(1, Math.max(-1, va[0] * vb[0] + va[1] * vb[1] + va[2] * vb[2]));
  const w = Math.acos(dot);
  if (w < 1e-9) return [a, b];
  const out = [];
  for (let i = 0; i <= n; i++) {
    const t = i / n;
    const s1 = Math.sin((1 - t) * w) / Math.sin(w), s2 = Math.sin(t * w) / Math.sin(w);
    const v = [s1 * va[0] + s2 * vb[0], s1 * va[1] + s2 * vb[1], s1 * va[2] + s2 * vb[2]];
    let lng = Math.atan2(v[1], v[0]) / DEG;
    // keep the line continuous from a's longitude
    while (lng - a.lng > 180) lng -= 360;
    while (lng - a.lng < -180) lng += 360;
    out.push([Math.atan2(v[2], Math.hypot(v[0], v[1])) / DEG, lng]);
  }
  return out;
}

/** "37S CU 74240 20955" (1 m), or '' outside MGRS's latitudes (80°S..84°N). */
export function mgrsString(lat, lon) {
  let s;
  try { s = mgrsForward([lon, lat], 5); } catch { return ''; }
  const m = /^(\d{1,2}[C-X])([A-Z]{2})(\d{5})(\d{5})$/.exec(s);
  return m ? `${m[1]} ${m[2]} ${m[3]} ${m[4]}` : s;
}

/** 34°31′21.4″N, 037°37′47.3″E */
export function dms(value, isLat) {
  const hemi = isLat ? (value >= 0 ? 'N' : 'S') : (value >= 0 ? 'E' : 'W');
  let tenths = Math.round(Math.abs(value) * 36000); // tenths of a second
  const d = Math.floor(tenths / 36000); tenths -= d * 36000;
  const m = Math.floor(tenths / 600); tenths -= m * 600;
  const s = (tenths / 10).toFixed(1).padStart(4, '0');
  return `${String(d).padStart(isLat ? 2 : 3, '0')}°${String(m).padStart(2, '0')}′${s}″${hemi}`;
}

/** "087°": whole degrees, three digits, 000..359. */
export function bearing3(deg) {
  const r = Math.round(normDeg(deg)) % 360;
  return `${String(r).padStart(3, '0')}°`;
}

/** A distance as the tool writes it: two decimals under 10, one under 1000, else whole. */
export const fmtDist = (x) => (x < 10 ? x.toFixed(2) : x < 1000 ? x.toFixed(1) : x.toFixed(0));
