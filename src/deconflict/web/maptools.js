/* Map tools for the common operating picture: offline place names, a scale bar in km and nautical
 * miles, the cursor's position (lat/lon in DMS and decimal degrees, and MGRS) and a range and bearing
 * tool. Leaflet 1.x is the global `L`; this is an ES module without a build step.
 *
 *   import { installMapTools } from '../maptools.js';
 *   const tools = installMapTools(map, { t: (k, v) => i18next.t(k, v), lang: 'he' });
 *   tools.setLanguage('tr');   // labels, place names and control sides follow
 *   tools.destroy();           // removes every control, layer and listener it added
 *
 * options
 *   t(key, vars)  translation function (i18next's t fits); when it returns the key unchanged (a
 *                 missing key) the English text below is used. Interpolation is {{name}}.
 *   lang          'en' | 'tr' | 'he' | 'ar' | 'ru' (default 'en'); 'he' and 'ar' mirror the controls
 *                 to the right-hand side and place labels to the left of their dot.
 *   placesUrl     the place names (default: data/places.geojson next to this module)
 *   css           false to not add maptools.css (default: a <link> to maptools.css next to this
 *                 module is added once to <head>)
 *
 * returns { destroy(), setLanguage(lang), ready }: `ready` is a promise settled once the place names
 * are loaded and drawn.
 *
 * i18n keys (English fallback):
 *   maptools.rangeTool    "Range and bearing"              the tool's toggle button
 *   maptools.attribution  "Place names: Natural Earth (public domain)"   the map's credit line
 *   maptools.rangeHint    "Click point A, then point B (Enter on the map: its centre). Escape closes the tool."
 *   maptools.pickA        "Click the first point (A)"
 *   maptools.pickB        "Click the second point (B)"
 *   maptools.range        "Range"
 *   maptools.bearing      "Bearing"
 *   maptools.true         "true"                           after a bearing: 087° true
 *   maptools.clear        "Clear"
 *   maptools.result       "Range {{km}} km, {{nm}} nautical miles, bearing {{bearing}} degrees true"
 *                         (announced once, to screen readers, when point B is set)
 *   maptools.cursor       "Cursor"                         the position readout while the pointer is on the map
 *   maptools.centre       "Map centre"                     ... and otherwise
 *   maptools.position     "Position"                       the readout's accessible name
 *   maptools.mgrs         "MGRS"
 *   maptools.unit.km      "km"
 *   maptools.unit.m       "m"
 *   maptools.unit.nm      "NM"
 *
 * Geodesy: range and bearing are Vincenty's inverse solution on the WGS84 ellipsoid (a = 6378137 m,
 * f = 1/298.257223563), iterated to 1e-12 rad: about 0.5 mm in distance and 1e-6° in azimuth, the
 * same as GeographicLib/pyproj within 1 mm for any pair of points in the theatre (tested). For nearly
 * antipodal points, where it does not converge, a spherical estimate is shown marked "≈". MGRS is
 * the `mgrs` library (proj4js), truncated to 1 m (10 digits) as MGRS readings are. The scale bar uses
 * Leaflet's own measure across the bar (spherical, within 0.5 %: it is a scale bar). */

import { forward as mgrsForward } from './vendor/mgrs/mgrs.esm.js';

const EN = {
  'maptools.rangeTool': 'Range and bearing',
  'maptools.attribution': 'Place names: Natural Earth (public domain)',
  'maptools.rangeHint': 'Click point A, then point B (Enter on the map: its centre). Escape closes the tool.',
  'maptools.pickA': 'Click the first point (A)',
  'maptools.pickB': 'Click the second point (B)',
  'maptools.range': 'Range',
  'maptools.bearing': 'Bearing',
  'maptools.true': 'true',
  'maptools.clear': 'Clear',
  'maptools.result': 'Range {{km}} km, {{nm}} nautical miles, bearing {{bearing}} degrees true',
  'maptools.cursor': 'Cursor',
  'maptools.centre': 'Map centre',
  'maptools.position': 'Position',
  'maptools.mgrs': 'MGRS',
  'maptools.unit.km': 'km',
  'maptools.unit.m': 'm',
  'maptools.unit.nm': 'NM',
};
export const I18N_KEYS = Object.freeze({ ...EN });

const RTL = new Set(['he', 'ar']);
const LANGS = new Set(['en', 'tr', 'he', 'ar', 'ru']);
const NM = 1852;
const DEG = Math.PI / 180;

/* ---------------------------------------------------------------- geodesy (pure) */

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
function greatCircle(a, b, n = 48) {
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

/* ---------------------------------------------------------------- formatting (pure) */

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

const fmtDist = (x) => (x < 10 ? x.toFixed(2) : x < 1000 ? x.toFixed(1) : x.toFixed(0));

/* ---------------------------------------------------------------- install */

export function installMapTools(map, options = {}) {
  const opts = { lang: 'en', t: null, placesUrl: null, css: true, ...options };
  let lang = LANGS.has(opts.lang) ? opts.lang : 'en';
  const container = map.getContainer();
  const cleanups = [];
  const on = (target, type, fn, capture = false) => {
    target.addEventListener(type, fn, capture);
    cleanups.push(() => target.removeEventListener(type, fn, capture));
  };
  const onMap = (types, fn) => { map.on(types, fn); cleanups.push(() => map.off(types, fn)); };

  const tr = (key, vars) => {
    let s;
    try { s = opts.t ? opts.t(key, vars) : key; } catch { s = key; }
    if (typeof s !== 'string' || s === '' || s === key) {
      s = (EN[key] ?? key).replace(/\{\{\s*(\w+)\s*\}\}/g, (_, k) => (vars && k in vars ? String(vars[k]) : ''));
    }
    return s;
  };
  const rtl = () => RTL.has(lang);

  if (opts.css !== false) {
    const link = addStylesheet();
    // label widths are measured in the stylesheet's fonts: measure again once it is in
    if (link) link.addEventListener('load', () => { widthCache.clear(); renderLabels(); }, { once: true });
  }

  const pane = (name, z) => {
    const p = map.getPane(name) || map.createPane(name);
    p.style.zIndex = z;
    p.style.pointerEvents = 'none';
    p.setAttribute('aria-hidden', 'true');
    return p;
  };
  const placesPane = pane('maptools-places', 350); // above the area, under zones and activities
  const measurePane = pane('maptools-measure', 460); // above the draft layer

  /* ---------------- place names ---------------- */
  const labelsRoot = L.DomUtil.create('div', 'maptools-places leaflet-zoom-hide', placesPane);
  labelsRoot.setAttribute('aria-hidden', 'true');
  let places = [];
  const measureCanvas = document.createElement('canvas').getContext('2d');
  const widthCache = new Map();

  function textWidth(text, kind) {
    const key = `${kind}|${text}`;
    if (!widthCache.has(key)) {
      const probe = L.DomUtil.create('span', `maptools-place maptools-place--${kind}`, labelsRoot);
      const lab = L.DomUtil.create('span', 'maptools-label', probe);
      lab.textContent = 'x';
      const cs = getComputedStyle(lab);
      measureCanvas.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
      L.DomUtil.remove(probe);
      widthCache.set(key, measureCanvas.measureText(text).width + 4);
    }
    return widthCache.get(key);
  }

  const nameOf = (p) => p.names[lang] || p.names.en;
  const LINE = 16; // the labels' line height (maptools.css)
  function labelRect(side, c, w) {
    switch (side) {
      case 'e': return { x1: c.x - 4, x2: c.x + 7 + w, y1: c.y - LINE / 2, y2: c.y + LINE / 2 };
      case 'w': return { x1: c.x - 7 - w, x2: c.x + 4, y1: c.y - LINE / 2, y2: c.y + LINE / 2 };
      case 'n': return { x1: c.x - w / 2, x2: c.x + w / 2, y1: c.y - 5 - LINE, y2: c.y + 4 };
      default: return { x1: c.x - w / 2, x2: c.x + w / 2, y1: c.y - 4, y2: c.y + 5 + LINE };
    }
  }

  function renderLabels() {
    if (!places.length || !map._loaded) return;
    const z = map.getZoom();
    const view = map.getBounds().pad(0.15);
    const shown = places.filter((p) => p.minzoom <= z + 1e-9 && view.contains(p.latlng));
    for (const p of shown) p.cp = map.latLngToContainerPoint(p.latlng);
    // the dots of airfields and capitals are kept clear of other labels (T4's name must not hide Palmyra)
    const placed = shown.filter((p) => p.kind !== 'city')
      .map((p) => ({ x1: p.cp.x - 4, x2: p.cp.x + 4, y1: p.cp.y - 4, y2: p.cp.y + 4, owner: p }));
    const keep = new Set();
    const isRtl = rtl();
    for (const p of shown) {
      const cp = p.cp;
      const text = nameOf(p);
      const w = textWidth(text, p.kind);
      // beside the dot on the reading side, else the other side, else above, else below; else not drawn
      let side = null;
      for (const cand of isRtl ? ['w', 'e', 'n', 's'] : ['e', 'w', 'n', 's']) {
        const r = labelRect(cand, cp, w);
        if (!placed.some((q) => q.owner !== p && r.x1 < q.x2 + 3 && r.x2 > q.x1 - 3 && r.y1 < q.y2 + 1 && r.y2 > q.y1 - 1)) {
          placed.push(r);
          side = cand;
          break;
        }
      }
      if (!side) continue;
      keep.add(p);
      if (!p.el) {
        p.el = L.DomUtil.create('div', `maptools-place maptools-place--${p.kind}`);
        L.DomUtil.create('span', 'maptools-dot', p.el);
        p.labelEl = L.DomUtil.create('span', 'maptools-label', p.el);
        p.labelEl.setAttribute('dir', 'auto');
      }
      if (p.labelEl.textContent !== text) p.labelEl.textContent = text;
      if (p.side !== side) {
        if (p.side) p.el.classList.remove(`maptools-place--${p.side}`);
        p.el.classList.add(`maptools-place--${side}`);
        p.side = side;
      }
      if (p.el.parentNode !== labelsRoot) labelsRoot.appendChild(p.el);
      L.DomUtil.setPosition(p.el, map.latLngToLayerPoint(p.latlng));
    }
    for (const p of places) if (p.el && !keep.has(p) && p.el.parentNode) L.DomUtil.remove(p.el);
  }

  const ready = fetch(opts.placesUrl || new URL('./data/places.geojson', import.meta.url).href)
    .then((r) => { if (!r.ok) throw new Error(`places: HTTP ${r.status}`); return r.json(); })
    .then((fc) => {
      const order = { airfield: 0, capital: 1, city: 2 };
      places = fc.features.map((f) => {
        const pr = f.properties || {};
        const names = {};
        for (const l of LANGS) if (pr[`name_${l}`]) names[l] = pr[`name_${l}`];
        if (!names.en) names.en = pr.name || '';
        return {
          kind: order[pr.kind] !== undefined ? pr.kind : 'city',
          minzoom: Number.isFinite(pr.minzoom) ? pr.minzoom : 7,
          pop: pr.pop || 0,
          names,
          latlng: L.latLng(f.geometry.coordinates[1], f.geometry.coordinates[0]),
        };
      }).sort((a, b) => order[a.kind] - order[b.kind] || a.minzoom - b.minzoom || b.pop - a.pop);
      if (!destroyed) renderLabels();
    })
    .catch((err) => { console.warn('maptools: no place names', err); });
  onMap('zoomend moveend viewreset resize', renderLabels);
  // The credit for the place names, in the reader's language (re-worded by setLanguage).
  let attribution = null;
  const credit = () => {
    if (!map.attributionControl) return;
    if (attribution) map.attributionControl.removeAttribution(attribution);
    attribution = tr('maptools.attribution');
    map.attributionControl.addAttribution(attribution);
  };
  credit();
  cleanups.push(() => map.attributionControl && attribution && map.attributionControl.removeAttribution(attribution));

  /* ---------------- scale: metric and nautical miles ---------------- */
  const ScaleNM = L.Control.Scale.extend({
    options: { metric: true, imperial: true, maxWidth: 120, updateWhenIdle: false },
    onAdd(m) {
      const div = L.Control.Scale.prototype.onAdd.call(this, m);
      div.classList.add('maptools-scale');
      div.setAttribute('aria-hidden', 'true'); // a picture of distance; the range tool gives numbers
      this._iScale.classList.add('maptools-scale-nm');
      this._mScale.classList.add('maptools-scale-metric');
      for (const line of [this._iScale, this._mScale]) line.setAttribute('dir', 'ltr'); // "50 km", also in RTL
      return div;
    },
    _updateMetric(maxMeters) {
      const metres = this._getRoundNum(maxMeters);
      const label = metres < 1000 ? `${metres} ${tr('maptools.unit.m')}` : `${metres / 1000} ${tr('maptools.unit.km')}`;
      this._updateScale(this._mScale, label, metres / maxMeters);
    },
    _updateImperial(maxMeters) { // this line shows nautical miles
      const maxNm = maxMeters / NM;
      let nm;
      if (maxNm >= 1) nm = this._getRoundNum(maxNm);
      else nm = [0.5, 0.2, 0.1, 0.05, 0.02, 0.01].find((x) => x <= maxNm) || 0.01;
      this._updateScale(this._iScale, `${nm} ${tr('maptools.unit.nm')}`, nm / maxNm);
    },
    _updateScale(scale, text, ratio) {
      scale.style.width = `${Math.round(this.options.maxWidth * ratio)}px`;
      scale.textContent = text;
    },
  });
  const scale = new ScaleNM({ position: corner('bottom') });

  /* ---------------- cursor position ---------------- */
  const Coords = L.Control.extend({
    onAdd() {
      const div = L.DomUtil.create('div', 'maptools-coords leaflet-bar');
      div.setAttribute('role', 'group');
      div.setAttribute('aria-live', 'off');
      L.DomEvent.disableClickPropagation(div);
      L.DomEvent.disableScrollPropagation(div);
      this.title = L.DomUtil.create('div', 'maptools-coords-title', div);
      const line = (cls) => { const d = L.DomUtil.create('div', cls, div); d.setAttribute('dir', 'ltr'); return d; };
      this.dmsEl = line('maptools-coords-dms');
      this.decEl = line('maptools-coords-dec');
      const mg = line('maptools-coords-mgrs');
      this.mgrsLabel = L.DomUtil.create('span', 'maptools-coords-key', mg);
      this.mgrsEl = L.DomUtil.create('span', 'maptools-coords-mgrsval', mg);
      return div;
    },
  });
  const coords = new Coords({ position: corner('bottom') });
  let pointerOnMap = false;
  let lastCursor = null;
  let raf = 0;

  function showPosition(ll, isCursor) {
    const c = coords;
    if (!c.dmsEl) return;
    const lat = ll.lat;
    const lon = ((ll.lng + 540) % 360) - 180;
    c.title.textContent = tr(isCursor ? 'maptools.cursor' : 'maptools.centre');
    c.dmsEl.textContent = `${dms(lat, true)} ${dms(lon, false)}`;
    c.decEl.textContent = `${lat.toFixed(5)}, ${lon.toFixed(5)}`;
    c.mgrsLabel.textContent = `${tr('maptools.mgrs')} `;
    c.mgrsEl.textContent = mgrsString(lat, lon) || '—';
    const div = c.getContainer();
    div.dataset.lat = String(lat);
    div.dataset.lon = String(lon);
    div.dataset.source = isCursor ? 'cursor' : 'centre';
  }
  const showCentre = () => { if (!pointerOnMap) showPosition(map.getCenter(), false); };
  onMap('mousemove', (e) => {
    pointerOnMap = true;
    lastCursor = e.latlng;
    if (!raf) raf = requestAnimationFrame(() => { raf = 0; if (lastCursor && pointerOnMap) showPosition(lastCursor, true); });
  });
  onMap('mouseout', () => { pointerOnMap = false; showCentre(); });
  onMap('moveend', showCentre);

  /* ---------------- range and bearing ---------------- */
  const measureLayer = L.layerGroup();
  let active = false;
  let ptA = null, ptB = null;
  let line = null, markA = null, markB = null, tag = null;
  const Range = L.Control.extend({
    onAdd() {
      const div = L.DomUtil.create('div', 'maptools-range');
      L.DomEvent.disableClickPropagation(div);
      L.DomEvent.disableScrollPropagation(div);
      const bar = L.DomUtil.create('div', 'leaflet-bar', div);
      const btn = L.DomUtil.create('button', 'maptools-range-toggle', bar);
      btn.type = 'button';
      btn.setAttribute('aria-pressed', 'false');
      btn.innerHTML = '<svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" focusable="false">'
        + '<circle cx="5" cy="19" r="2.2" fill="none" stroke="currentColor" stroke-width="1.8"/>'
        + '<circle cx="19" cy="5" r="2.2" fill="none" stroke="currentColor" stroke-width="1.8"/>'
        + '<path d="M6.6 17.4 17.4 6.6" stroke="currentColor" stroke-width="1.8" stroke-dasharray="3 2"/>'
        + '<path d="M5 3v5M2.5 5.5h5" stroke="currentColor" stroke-width="1.6"/></svg>';
      L.DomEvent.on(btn, 'click', (e) => { L.DomEvent.stop(e); setActive(!active); });
      const panel = L.DomUtil.create('div', 'maptools-range-panel', div);
      panel.hidden = true;
      this.status = L.DomUtil.create('div', 'maptools-range-status', panel);
      const out = L.DomUtil.create('div', 'maptools-range-out', panel);
      out.setAttribute('aria-live', 'off');
      this.rangeRow = L.DomUtil.create('div', 'maptools-range-row', out);
      this.bearingRow = L.DomUtil.create('div', 'maptools-range-row', out);
      // rows read in their own text's direction (an English fallback inside a Hebrew page stays LTR)
      for (const el of [this.status, this.rangeRow, this.bearingRow]) el.setAttribute('dir', 'auto');
      const clear = L.DomUtil.create('button', 'maptools-range-clear', panel);
      clear.type = 'button';
      L.DomEvent.on(clear, 'click', (e) => { L.DomEvent.stop(e); clearMeasure(); clear.blur(); btn.focus(); });
      this.live = L.DomUtil.create('div', 'maptools-sr-only', div);
      this.live.setAttribute('aria-live', 'polite');
      Object.assign(this, { btn, panel, out, clear });
      return div;
    },
  });
  const range = new Range({ position: corner('top') });

  function labelRange() {
    const r = range;
    if (!r.btn) return;
    r.btn.setAttribute('aria-label', tr('maptools.rangeTool'));
    r.btn.title = `${tr('maptools.rangeTool')} — ${tr('maptools.rangeHint')}`;
    r.clear.textContent = tr('maptools.clear');
    r.status.textContent = !ptA ? tr('maptools.pickA') : !ptB ? tr('maptools.pickB') : tr('maptools.rangeHint');
    updateReadout(ptB || lastRubber);
  }

  let lastRubber = null;
  function updateReadout(to) {
    const r = range;
    const div = r.getContainer && r.getContainer();
    if (!div) return;
    if (!ptA || !to) {
      r.rangeRow.textContent = `${tr('maptools.range')}: —`;
      r.bearingRow.textContent = `${tr('maptools.bearing')}: —`;
      delete div.dataset.distanceM; delete div.dataset.bearingDeg; delete div.dataset.b;
      return null;
    }
    const g = geodesicInverse(ptA.lat, ptA.lng, to.lat, to.lng);
    const approx = g.approximate ? '≈ ' : '';
    const km = fmtDist(g.distance / 1000), nm = fmtDist(g.distance / NM);
    r.rangeRow.innerHTML = '';
    r.rangeRow.append(`${tr('maptools.range')}: `, ltrSpan(`${approx}${km} ${tr('maptools.unit.km')} · ${nm} ${tr('maptools.unit.nm')}`));
    r.bearingRow.innerHTML = '';
    r.bearingRow.append(`${tr('maptools.bearing')}: `, ltrSpan(`${approx}${bearing3(g.bearing)}`), ` ${tr('maptools.true')}`);
    div.dataset.a = `${ptA.lat},${ptA.lng}`;
    div.dataset.b = `${to.lat},${to.lng}`;
    div.dataset.distanceM = String(g.distance);
    div.dataset.bearingDeg = String(g.bearing);
    div.dataset.fixed = ptB ? 'true' : 'false';
    return { g, km, nm };
  }

  function ltrSpan(text) {
    const s = document.createElement('span');
    s.dir = 'ltr';
    s.className = 'maptools-num';
    s.textContent = text;
    return s;
  }

  function drawMeasure(to) {
    if (!ptA) return;
    if (!markA) {
      markA = L.circleMarker(ptA, { pane: 'maptools-measure', radius: 5, color: '#0a1420', weight: 2, fillColor: '#ffffff', fillOpacity: 1, interactive: false }).addTo(measureLayer);
    } else markA.setLatLng(ptA);
    if (!to) { if (line) { measureLayer.removeLayer(line); line = null; } return; }
    const pts = greatCircle(ptA, to);
    if (!line) {
      line = L.polyline(pts, { pane: 'maptools-measure', color: '#ffffff', weight: 2, dashArray: '6 5', interactive: false }).addTo(measureLayer);
    } else line.setLatLngs(pts);
    if (ptB) {
      if (!markB) markB = L.circleMarker(ptB, { pane: 'maptools-measure', radius: 5, color: '#0a1420', weight: 2, fillColor: '#ffffff', fillOpacity: 1, interactive: false }).addTo(measureLayer);
      else markB.setLatLng(ptB);
    }
    const g = geodesicInverse(ptA.lat, ptA.lng, to.lat, to.lng);
    const text = `${fmtDist(g.distance / 1000)} ${tr('maptools.unit.km')} · ${fmtDist(g.distance / NM)} ${tr('maptools.unit.nm')} · ${bearing3(g.bearing)}`;
    if (!tag) {
      tag = L.marker(to, {
        pane: 'maptools-measure', interactive: false, keyboard: false,
        icon: L.divIcon({ className: 'maptools-range-tag', html: '', iconSize: null }),
      }).addTo(measureLayer);
    } else tag.setLatLng(to);
    const el = tag.getElement();
    if (el) { el.textContent = text; el.setAttribute('dir', 'ltr'); el.setAttribute('aria-hidden', 'true'); }
  }

  function addPoint(ll) {
    if (!ptA || ptB) { clearMeasure(false); ptA = ll; lastRubber = null; }
    else { ptB = ll; }
    drawMeasure(ptB);
    const res = updateReadout(ptB);
    labelRange();
    if (ptB && res) {
      range.live.textContent = tr('maptools.result', { km: res.km, nm: res.nm, bearing: bearing3(res.g.bearing).replace('°', '') });
    }
  }

  function clearMeasure(relabel = true) {
    ptA = ptB = lastRubber = null;
    measureLayer.clearLayers();
    line = markA = markB = tag = null;
    if (range.live) range.live.textContent = '';
    if (relabel) labelRange();
  }

  let dblWasOn = false;
  function setActive(on) {
    if (on === active) return;
    active = on;
    range.btn.setAttribute('aria-pressed', String(on));
    range.btn.classList.toggle('maptools-on', on);
    range.panel.hidden = !on;
    container.classList.toggle('maptools-measuring', on);
    if (on) {
      measureLayer.addTo(map);
      dblWasOn = map.doubleClickZoom && map.doubleClickZoom.enabled();
      if (dblWasOn) map.doubleClickZoom.disable();
    } else {
      clearMeasure(false);
      measureLayer.remove();
      if (dblWasOn) map.doubleClickZoom.enable();
    }
    labelRange();
  }

  // Clicks on the map while measuring are the tool's alone: caught before Leaflet (and the page's
  // own map click handlers) see them; a drag still pans the map.
  let down = null;
  on(container, 'pointerdown', (e) => { down = { x: e.clientX, y: e.clientY }; }, true);
  on(container, 'click', (e) => {
    if (!active || e.target.closest('.leaflet-control, .leaflet-popup')) return;
    const moved = down && Math.hypot(e.clientX - down.x, e.clientY - down.y) > 5;
    e.stopImmediatePropagation();
    e.preventDefault();
    if (moved) return;
    addPoint(map.mouseEventToLatLng(e));
  }, true);
  on(container, 'dblclick', (e) => {
    if (active && !e.target.closest('.leaflet-control, .leaflet-popup')) { e.stopImmediatePropagation(); e.preventDefault(); }
  }, true);
  onMap('mousemove', (e) => {
    if (!active || !ptA || ptB) return;
    lastRubber = e.latlng;
    drawMeasure(e.latlng);
    updateReadout(e.latlng);
  });
  // Keyboard: Enter on the focused map sets a point at the map's centre (marked by a cross).
  on(container, 'keydown', (e) => {
    if (active && e.key === 'Enter' && e.target === container) {
      e.preventDefault();
      e.stopImmediatePropagation();
      addPoint(map.getCenter());
    }
  });
  // Escape closes the tool, and does nothing else (caught first, on window, while the tool is on).
  on(window, 'keydown', (e) => {
    if (active && (e.key === 'Escape' || e.key === 'Esc')) {
      e.preventDefault();
      e.stopImmediatePropagation();
      const hadFocus = range.getContainer().contains(document.activeElement);
      setActive(false);
      if (hadFocus) range.btn.focus();
    }
  }, true);

  /* ---------------- placement and language ---------------- */
  function corner(vertical) { return `${vertical}${rtl() ? 'right' : 'left'}`; }
  function placeControls() {
    const dir = rtl() ? 'rtl' : 'ltr';
    // bottom corners stack upwards: the position readout sits under the scale bar
    for (const c of [coords, scale]) {
      if (c._map) c.remove();
      c.options.position = corner('bottom');
      c.addTo(map);
    }
    if (range._map) range.remove();
    range.options.position = corner('top');
    range.addTo(map);
    for (const c of [coords, scale, range]) c.getContainer().setAttribute('dir', dir);
    range.panel.hidden = !active;
    range.btn.setAttribute('aria-pressed', String(active));
    range.btn.classList.toggle('maptools-on', active);
    coords.getContainer().setAttribute('aria-label', tr('maptools.position'));
  }

  let destroyed = false;
  placeControls();
  labelRange();
  showCentre();

  function setLanguage(next) {
    if (destroyed) return;
    lang = LANGS.has(next) ? next : 'en';
    const focusWasOnButton = document.activeElement === range.btn;
    placeControls();
    labelRange();
    credit();
    if (ptA) { drawMeasure(ptB || lastRubber); updateReadout(ptB || lastRubber); }
    showPosition(pointerOnMap && lastCursor ? lastCursor : map.getCenter(), pointerOnMap);
    widthCache.clear();
    renderLabels();
    if (focusWasOnButton) range.btn.focus();
  }

  function destroy() {
    if (destroyed) return;
    destroyed = true;
    if (active) setActive(false);
    if (raf) cancelAnimationFrame(raf);
    for (const undo of cleanups.splice(0)) undo();
    for (const c of [coords, scale, range]) if (c._map) c.remove();
    measureLayer.remove();
    L.DomUtil.remove(labelsRoot);
    container.classList.remove('maptools-measuring');
  }

  return { destroy, setLanguage, ready };
}

/** Adds maptools.css once; returns the new <link>, or null when the page already has it. */
function addStylesheet() {
  const href = new URL('./maptools.css', import.meta.url).href;
  if ([...document.querySelectorAll('link[rel="stylesheet"]')].some((l) => l.href === href)) return null;
  const link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = href;
  document.head.appendChild(link);
  return link;
}
