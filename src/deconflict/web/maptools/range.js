/* The map tools' range and bearing tool: a toggle button; click point A, then point B (or Enter on the
 * focused map: its centre), and the range in km and nautical miles and the initial true bearing are
 * shown, drawn along the great circle and said once to screen readers. While it is on, clicks on the
 * map are the tool's alone; Escape closes it and does nothing else. */
import { NM_M } from '../js/units.js';
import { bearing3, fmtDist, geodesicInverse, greatCircle } from './geodesy.js';

/* rangeTool(ctx) → { control (not yet added), placed(), relabel(), redraw(), hasFocus(), focus(), destroy() }. */
export function rangeTool(ctx) {
  const { map, container, tr, on, onMap } = ctx;
  ctx.pane('maptools-measure', 460); // above the draft layer
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
  const range = new Range({ position: ctx.corner('top') });

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
    const km = fmtDist(g.distance / 1000), nm = fmtDist(g.distance / NM_M);
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
    const text = `${fmtDist(g.distance / 1000)} ${tr('maptools.unit.km')} · ${fmtDist(g.distance / NM_M)} ${tr('maptools.unit.nm')} · ${bearing3(g.bearing)}`;
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

  return {
    control: range,
    /* After the control was (re)added: its panel and button say whether the tool is on. */
    placed() {
      range.panel.hidden = !active;
      range.btn.setAttribute('aria-pressed', String(active));
      range.btn.classList.toggle('maptools-on', active);
    },
    relabel: labelRange,
    /* The line and readout again (a new language). */
    redraw() { if (ptA) { drawMeasure(ptB || lastRubber); updateReadout(ptB || lastRubber); } },
    hasFocus: () => document.activeElement === range.btn,
    focus: () => range.btn.focus(),
    destroy() { if (active) setActive(false); measureLayer.remove(); },
  };
}
