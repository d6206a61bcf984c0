/* The notice panel over the map: opens the form for a new notice (openNotify, Alt+N) or, through
 * notice-amend.js, for an amendment; closes it (Close, Escape); routes Enter and Escape while a polygon
 * is drawn; wires the form and the map.
 *
 * The form's parts, one job each:
 *   notice-state.js     what the form is doing (the footprint drawn, the activity amended, a send under way)
 *   notice-form.js      the controls it adds at load and the texts it words itself
 *   notice-fields.js    numbers typed by the page's locale; altitudes in m, ft or FL (sent in metres)
 *   notice-times.js     start and end picked as a UTC date, hour and minute
 *   notice-draw.js      the footprint drawn and edited on the map
 *   notice-build.js     the notice as it will be sent, with every problem found
 *   notice-errors.js    errors in words beside their field
 *   notice-preview.js   the conflicts it would raise (POST …/activities/preview)
 *   notice-send.js      red-line confirmation, then sent new or as an amendment
 *   notice-amend.js     amend or cancel from a conflict card or the map's popup
 * Nothing typed is lost on an error. */
import { $ } from './dom.js';
import { S } from './state.js';
import { NUMBERS, onUnitChange, readField, setAltitudes, showUnderstood } from './notice-fields.js';
import { defaultWindow, timeValue } from './notice-times.js';
import { buildForm, relabel } from './notice-form.js';
import { clearErrors } from './notice-errors.js';
import { autoPreview, preview } from './notice-preview.js';
import { bindDrawToMap, circleFromFields, finishPolygon, polygonUnderWay, setDrawMode } from './notice-draw.js';
import { sendNotice } from './notice-send.js';
import { draw, form } from './notice-state.js';
import i18next from '../vendor/i18next/i18next.js';

/* The panel shown, for a new notice ('notify') or an amendment ('amend'); returns it. */
export function showPanel(mode) {
  const panel = $('#notify');
  panel.hidden = false;
  panel.dataset.mode = mode;
  $('#n-send').disabled = false; // (an amendment of an activity cancelled elsewhere left it off: notice-amend.js)
  delete panel.dataset.gone;
  return panel;
}

export function openNotify() {
  if (form.editing) { form.editing = null; resetForm(); }
  showPanel('notify');
  if (!timeValue('start')) defaultWindow();
  if (!draw.mode) setDrawMode('circle');
  relabel();
  $('#n-kind').focus();
}

/* After an amendment, the form as a new notice starts. */
function resetForm() {
  $('#n-title').value = '';
  setAltitudes(1000, 4000);
  defaultWindow();
  $('#preview').replaceChildren();
  clearErrors();
  setDrawMode('circle');
}

export function closeNotify() {
  $('#notify').hidden = true;
  if (form.editing) { form.editing = null; resetForm(); }
  setDrawMode(null);
  $('#open-notify').focus();
}

/* Escape: abandon a polygon being drawn, else close the form; true if it did something. */
export function escapeNotify() {
  if (polygonUnderWay()) { setDrawMode('polygon'); return true; }
  if (!$('#notify').hidden) { closeNotify(); return true; }
  return false;
}

/* Enter on the map (or nowhere) finishes a polygon being drawn; true if it did. */
export function enterNotify() {
  if (polygonUnderWay() && (document.activeElement === $('#map') || document.activeElement === document.body)) {
    finishPolygon();
    return true;
  }
  return false;
}

export const canNotify = () => !!S.me && !$('#open-notify').hidden;

/* A numeric field being corrected: its error goes as soon as every field of that error reads (its range is
 * judged again when the field is left); an error that still holds would otherwise stay until then. */
function clearIfMended(e) {
  if (e.target.getAttribute('aria-invalid') !== 'true') return;
  const field = Object.values(NUMBERS).find((spec) => spec.input === `#${e.target.id}`)?.field;
  const keys = Object.keys(NUMBERS).filter((k) => NUMBERS[k].field === field);
  if (!keys.length || keys.some((k) => readField(k).value === undefined)) return;
  keys.forEach((k) => $(NUMBERS[k].input).removeAttribute('aria-invalid'));
  $(`#notify-form [data-error-for="${field}"]`)?.replaceChildren();
}

/* DOM wiring (at load). */
export function initNotify() {
  buildForm(autoPreview);
  $('#open-notify').addEventListener('click', openNotify);
  $('#n-close').addEventListener('click', closeNotify);
  $('#n-check').addEventListener('click', () => preview());
  $('#notify-form').addEventListener('submit', sendNotice);
  $('#draw-circle').addEventListener('click', () => setDrawMode('circle'));
  $('#draw-polygon').addEventListener('click', () => setDrawMode('polygon'));
  ['#n-lat', '#n-lon', '#n-radius'].forEach((s) => $(s).addEventListener('input', circleFromFields));
  ['#n-floor', '#n-ceiling'].forEach((s) => $(s).addEventListener('input', showUnderstood));
  Object.values(NUMBERS).forEach((spec) => $(spec.input).addEventListener('input', clearIfMended));
  $('#n-alt-unit').addEventListener('change', () => { onUnitChange(); relabel(); autoPreview(); });
  ['#n-kind', '#n-floor', '#n-ceiling', '#n-lat', '#n-lon', '#n-radius'].forEach((s) => $(s).addEventListener('change', autoPreview));
  i18next.on('languageChanged', () => { if ($('#n-alt-unit')) relabel(); });
}

/* Map wiring (once the map exists, after sign-in). */
export function bindNotifyToMap(map) { bindDrawToMap(map); }
