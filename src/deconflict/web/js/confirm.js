/* A confirmation step in the member's language: a modal <dialog> (focus stays inside it; Escape or
 * the safe button answers "no"). Used before sending a notice that breaks a red line and before
 * cancelling an activity.
 *
 *   const yes = await confirmStep({ title, text, items: [...], yes: 'Send anyway', no: 'Go back', danger: true });
 */
import { el } from './dom.js';

export function confirmStep({ title, text, items = [], yes, no, danger = false, name = 'confirm' }) {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const dialog = el('dialog', { class: 'confirm-step', 'data-confirm': name, 'aria-labelledby': 'confirm-h', 'aria-describedby': 'confirm-text' });
    const finish = (answer) => {
      if (!dialog.open && !dialog.isConnected) return;
      dialog.close();
      dialog.remove();
      if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
      resolve(answer);
    };
    const noButton = el('button', { type: 'button', 'data-answer': 'no', onclick: () => finish(false) }, no);
    const yesButton = el('button', { type: 'button', 'data-answer': 'yes', class: danger ? 'danger' : 'primary', onclick: () => finish(true) }, yes);
    dialog.append(
      el('h2', { id: 'confirm-h', text: title }),
      el('p', { id: 'confirm-text', text }),
      ...(items.length ? [el('ul', {}, items.map((i) => el('li', { text: i })))] : []), // append(null) would write "null"
      el('div', { class: 'actions' }, yesButton, noButton),
    );
    // Escape answers "no" here and goes no further: it must not also close the form behind or the alarm.
    dialog.addEventListener('keydown', (e) => { if (e.key === 'Escape') e.stopPropagation(); });
    dialog.addEventListener('cancel', (e) => { e.preventDefault(); finish(false); });
    document.body.append(dialog);
    dialog.showModal();
    noButton.focus(); // the safe answer has the focus: Enter alone never sends a breach or cancels
  });
}
