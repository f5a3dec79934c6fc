/**
 * One way to tell the user what an action did: a JupyterLab notification (plain text).
 */
import { Notification } from '@jupyterlab/apputils';

/** What an action did, as a sentence. */
export interface IOutcome {
  ok: boolean;
  message: string;
}

/** Show `outcome` as a success or a warning (nothing for null: the action spoke for itself). */
export function announce(outcome: IOutcome | null): void {
  if (outcome) {
    const show = outcome.ok ? Notification.success : Notification.warning;
    show(outcome.message, { autoClose: outcome.ok ? 5000 : 8000 });
  }
}

/** Run `action` and announce its outcome; a failed request becomes an error notification. */
export async function attempt(action: () => Promise<IOutcome>): Promise<void> {
  try {
    announce(await action());
  } catch (error) {
    Notification.error(`Tokenhot: ${(error as Error).message}`, { autoClose: 8000 });
  }
}
