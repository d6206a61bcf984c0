/* The map tools' scale bar: one line in metres or kilometres, one in nautical miles (Leaflet's own
 * measure across the bar: spherical, within 0.5 %, as a scale bar may be). */
import { NM_M } from '../js/units.js';

/* The scale bar as a Leaflet control, not yet added (ctx: the tools' context, for the unit names). */
export function scaleBar(ctx) {
  const { tr } = ctx;
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
      const maxNm = maxMeters / NM_M;
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
  return new ScaleNM({ position: ctx.corner('bottom') });
}
