/* The map tools' position readout: the cursor's position while the pointer is on the map, else the
 * map centre's, in degrees-minutes-seconds, decimal degrees and MGRS (to 1 m). */
import { dms, mgrsString } from './geodesy.js';

/* positionReadout(ctx) → { control (not yet added), show() (again, e.g. in a new language), destroy() }. */
export function positionReadout(ctx) {
  const { map, tr, onMap } = ctx;
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
  const coords = new Coords({ position: ctx.corner('bottom') });
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
  return {
    control: coords,
    show: () => showPosition(pointerOnMap && lastCursor ? lastCursor : map.getCenter(), pointerOnMap),
    showCentre,
    destroy: () => { if (raf) cancelAnimationFrame(raf); },
  };
}
