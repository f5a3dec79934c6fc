/**
 * The API key actions.  The key goes from the password dialog straight into `PUT key`; it is
 * never kept in state, settings or browser storage, and no response carries it.
 */
import { Dialog, InputDialog, showDialog } from '@jupyterlab/apputils';

import { IKeyState, IKeyTest, jsonInit, requestAPI } from './api';
import type { TokenhotModel } from './model';
import { attempt } from './notify';

/** Ask for a key in a password dialog and store it on the server. */
export async function setKey(model: TokenhotModel): Promise<void> {
  const result = await InputDialog.getPassword({
    title: 'Tokenhot API key',
    label:
      'Stored by the Jupyter server in a private file outside your notebooks; ' +
      'running kernels use it at their next request.',
    okLabel: 'Store key'
  });
  const key = (result.value ?? '').trim();
  if (!result.button.accept || !key) {
    return;
  }
  await attempt(async () => {
    const state = await requestAPI<IKeyState>('key', jsonInit('PUT', { key }));
    // TOKENHOT_API_KEY in the server's environment comes before a stored key.
    const message =
      state.source === 'stored'
        ? `Tokenhot key stored (${state.masked}); kernels use it at their next request.`
        : `Key stored, but the ${state.source} key (${state.masked}) comes first.`;
    return { ok: true, message };
  });
  void model.refresh();
}

/** Check the key in force against the gateway's model list, from the server. */
export function testKey(): Promise<void> {
  return attempt(async () => {
    const test = await requestAPI<IKeyTest>('key/test', jsonInit('POST'));
    return { ok: test.ok, message: `Tokenhot key test: ${test.message}` };
  });
}

/** Remove the stored key, after asking. */
export async function forgetKey(model: TokenhotModel): Promise<void> {
  const answer = await showDialog({
    title: 'Forget the stored Tokenhot key?',
    body: 'Kernels then fall back to TOKENHOT_API_KEY or %tokenhot login.',
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Forget' })]
  });
  if (!answer.button.accept) {
    return;
  }
  await attempt(async () => {
    const state = await requestAPI<IKeyState>('key', jsonInit('DELETE'));
    const message = state.set
      ? `Tokenhot key forgotten; the ${state.source} key (${state.masked}) is still in force.`
      : 'Tokenhot key forgotten; no key is set.';
    return { ok: true, message };
  });
  void model.refresh();
}
