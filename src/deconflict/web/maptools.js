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
 * Leaflet's own measure across the bar (spherical, within 0.5 %: it is a scale bar).
 *
 * Its parts, one job each (in maptools/): geodesy.js (pure: range, bearing, great circle, DMS, MGRS),
 * places.js (place names and their credit), scale.js, position.js (the position readout), range.js
 * (the range and bearing tool). This module installs them, places the controls on the reading side,
 * follows the language and takes everything away again. */

import { bearing3, dms, geodesicInverse, mgrsString } from './maptools/geodesy.js';
import { placeNames } from './maptools/places.js';
import { scaleBar } from './maptools/scale.js';
import { positionReadout } from './maptools/position.js';
import { rangeTool } from './maptools/range.js';

export { bearing3, dms, geodesicInverse, mgrsString }; // the pure part, for tests and other pages

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

/* ---------------------------------------------------------------- install */

export function installMapTools(map, options = {}) {
  const opts = { lang: 'en', t: null, placesUrl: null, css: true, ...options };
  let lang = LANGS.has(opts.lang) ? opts.lang : 'en';
  let destroyed = false;
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
  const corner = (vertical) => `${vertical}${rtl() ? 'right' : 'left'}`;
  const pane = (name, z) => {
    const p = map.getPane(name) || map.createPane(name);
    p.style.zIndex = z;
    p.style.pointerEvents = 'none';
    p.setAttribute('aria-hidden', 'true');
    return p;
  };
  /* What every part is given: the map, the words, the reading side, listeners taken away by destroy(). */
  const ctx = {
    map, container, tr, rtl, corner, pane, on, onMap, cleanups,
    lang: () => lang, langs: LANGS, destroyed: () => destroyed,
  };

  const link = opts.css !== false ? addStylesheet() : null;
  const places = placeNames(ctx, opts.placesUrl || new URL('./data/places.geojson', import.meta.url).href);
  // label widths are measured in the stylesheet's fonts: measure again once it is in
  if (link) link.addEventListener('load', () => places.remeasure(), { once: true });
  const scale = scaleBar(ctx);
  const position = positionReadout(ctx);
  const coords = position.control;
  const range = rangeTool(ctx);

  /* ---------------- placement and language ---------------- */
  function placeControls() {
    const dir = rtl() ? 'rtl' : 'ltr';
    // bottom corners stack upwards: the position readout sits under the scale bar
    for (const c of [coords, scale]) {
      if (c._map) c.remove();
      c.options.position = corner('bottom');
      c.addTo(map);
    }
    if (range.control._map) range.control.remove();
    range.control.options.position = corner('top');
    range.control.addTo(map);
    for (const c of [coords, scale, range.control]) c.getContainer().setAttribute('dir', dir);
    range.placed();
    coords.getContainer().setAttribute('aria-label', tr('maptools.position'));
  }

  placeControls();
  range.relabel();
  position.showCentre();

  function setLanguage(next) {
    if (destroyed) return;
    lang = LANGS.has(next) ? next : 'en';
    const focusWasOnButton = range.hasFocus();
    placeControls();
    range.relabel();
    places.credit();
    range.redraw();
    position.show();
    places.remeasure();
    if (focusWasOnButton) range.focus();
  }

  function destroy() {
    if (destroyed) return;
    destroyed = true;
    range.destroy();
    position.destroy();
    for (const undo of cleanups.splice(0)) undo();
    for (const c of [coords, scale, range.control]) if (c._map) c.remove();
    container.classList.remove('maptools-measuring');
  }

  return { destroy, setLanguage, ready: places.ready };
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
