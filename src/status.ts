/**
 * The status bar item: `Tokenhot · simulator` (in the warning colour) or
 * `Tokenhot · live · $0.42 today`, with what is left of the day budget when one is set
 * (`· $4.58 left`, from `%tokenhot budget`) and the details in its tooltip (never the key).
 */
import { Widget } from '@lumino/widgets';

import type { IStatus } from './api';
import { KEY_SOURCE, money } from './format';
import type { TokenhotModel } from './model';

const REACHABLE = new Map<boolean | null, string>([
  [true, 'answers'],
  [false, 'does not answer'],
  [null, 'not checked yet']
]);

/** A status bar item fed by `model`; a click runs `onClick`. */
export class TokenhotStatus extends Widget {
  constructor(
    private readonly model: TokenhotModel,
    onClick: () => void
  ) {
    super();
    this.addClass('jp-TokenhotStatus');
    this.addClass('jp-mod-highlighted');
    this.node.addEventListener('click', onClick);
    model.changed.connect(this.update, this);
    this.update();
  }

  protected onUpdateRequest(): void {
    const { status, error } = this.model;
    this.node.textContent = label(status, error);
    this.node.title = tooltip(status, error);
    this.toggleClass('jp-mod-simulator', status?.mode === 'simulator');
    this.toggleClass('jp-mod-unavailable', status === null && error !== null);
  }
}

function label(status: IStatus | null, error: string | null): string {
  if (!status) {
    return error ? 'Tokenhot · unavailable' : 'Tokenhot · …';
  }
  const left =
    status.budget_left === null
      ? ''
      : ` · ${money(status.budget_left, status.spend_currency)} left`;
  if (status.mode === 'simulator') {
    return `Tokenhot · simulator${left}`;
  }
  return `Tokenhot · live · ${money(status.spend_today, status.spend_currency)} today${left}`;
}

function tooltip(status: IStatus | null, error: string | null): string {
  if (!status) {
    return error ? `Tokenhot server extension: ${error}` : 'Tokenhot: loading…';
  }
  const lines = [
    status.mode === 'simulator'
      ? 'SIMULATOR: answers are made up locally, nothing is paid'
      : 'Live gateway',
    `Base URL: ${status.base_url}`,
    `Key: ${KEY_SOURCE[status.key_source]}`,
    `Gateway: ${REACHABLE.get(status.reachable)}`,
    `Running tasks: ${status.running_tasks}`,
    `Spent today: ${money(status.spend_today, status.spend_currency)}`
  ];
  if (status.budget_left !== null) {
    lines.push(
      `Day budget left (every kernel): ${money(status.budget_left, status.spend_currency)}`
    );
  }
  if (error) {
    lines.push(`Last update failed: ${error}`);
  }
  return [...lines, 'Click to open the Tokenhot panel.'].join('\n');
}
