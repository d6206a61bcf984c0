/* The hotline's line states in the header: one chip per party (up, pending, late, down), its meaning
 * in words in the chip's title and for screen readers. */
import { $, el } from './dom.js';
import { S } from './state.js';
import { lineStateName, t } from './i18n.js';
import { partyName } from './live.js';

const LINE_HELP = {
  up: () => t('lines.help.up'),
  pending: () => t('lines.help.pending'),
  awaiting: () => t('lines.help.pending'),
  late: () => t('lines.help.late'),
  down: () => t('lines.help.down'),
};

export function renderLines() {
  const box = $('#lines');
  box.replaceChildren(...Object.entries(S.lines).map(([p, s]) => {
    const help = (LINE_HELP[s] || (() => ''))();
    return el('span', { class: `line ${s}`, role: 'listitem', 'data-line': p, 'data-state': s,
      title: t('lines.title', { party: partyName(p), state: lineStateName(s), help }) },
    t('lines.chip', { party: p, state: lineStateName(s) }), el('span', { class: 'sr-only' }, ` ${help}`));
  }));
}
