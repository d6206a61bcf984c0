/* The map tools' place names: offline labels (data/places.geojson, Natural Earth) in the reader's
 * language, each beside its dot on the reading side, else the other side, above or below, else not
 * drawn (airfields and capitals first, never hidden by another label); and their credit line. */

/* placeNames(ctx, url) draws them on ctx.map; returns { ready, render, remeasure, credit }:
 * ready settles once they are loaded and drawn; remeasure() after a font or language change. */
export function placeNames(ctx, url) {
  const { map, tr, rtl, onMap, cleanups } = ctx;
  const placesPane = ctx.pane('maptools-places', 350); // above the area, under zones and activities
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

  const nameOf = (p) => p.names[ctx.lang()] || p.names.en;
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

  const ready = fetch(url)
    .then((r) => { if (!r.ok) throw new Error(`places: HTTP ${r.status}`); return r.json(); })
    .then((fc) => {
      const order = { airfield: 0, capital: 1, city: 2 };
      places = fc.features.map((f) => {
        const pr = f.properties || {};
        const names = {};
        for (const l of ctx.langs) if (pr[`name_${l}`]) names[l] = pr[`name_${l}`];
        if (!names.en) names.en = pr.name || '';
        return {
          kind: order[pr.kind] !== undefined ? pr.kind : 'city',
          minzoom: Number.isFinite(pr.minzoom) ? pr.minzoom : 7,
          pop: pr.pop || 0,
          names,
          latlng: L.latLng(f.geometry.coordinates[1], f.geometry.coordinates[0]),
        };
      }).sort((a, b) => order[a.kind] - order[b.kind] || a.minzoom - b.minzoom || b.pop - a.pop);
      if (!ctx.destroyed()) renderLabels();
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
  cleanups.push(() => L.DomUtil.remove(labelsRoot));

  const remeasure = () => { widthCache.clear(); renderLabels(); };
  return { ready, render: renderLabels, remeasure, credit };
}
