/* The notice form's own controls and words: the unit choice and the UTC time pickers it adds once at
 * load, and the texts it words itself (the labels that carry the unit, the pickers' names, the heading
 * and the send button, which say whether a new notice is being sent or an activity amended). */
import { $ } from './dom.js';
import { fmtNum } from './format.js';
import { t } from './i18n.js';
import { buildNumberFields, relabelNumbers } from './notice-fields.js';
import { buildTimePickers, relabelTimes } from './notice-times.js';
import { form } from './notice-state.js';

/* Once, at load; onChange runs when a time part is chosen. */
export function buildForm(onChange) {
  buildNumberFields();
  buildTimePickers(onChange);
  relabel();
}

export function relabel() {
  const { editing } = form;
  relabelTimes();
  $('#notify-h').textContent = editing ? t('amend.heading', { id: editing.id, version: fmtNum(editing.version) }) : t('notify.heading');
  $('#n-send').textContent = editing ? t('amend.send') : t('notify.send');
  relabelNumbers();
}
