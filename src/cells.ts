/**
 * The panel's notebook actions: each leaves a text record (a cell) in the active notebook.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

import type { IModelInfo } from './api';
import { addModel, magicFor, readyCell, startsWithMagic } from './magic';
import type { IOutcome } from './notify';

const NO_NOTEBOOK: IOutcome = { ok: false, message: 'Open a notebook first.' };

/**
 * Insert a code cell holding `source` below the active cell of the current notebook.
 *
 * Returns what to tell the user, or null when the new cell says it all.
 */
export function insertBelow(
  app: JupyterFrontEnd,
  tracker: INotebookTracker | null,
  source: string
): IOutcome | null {
  const panel = tracker?.currentWidget;
  const model = panel?.content.model;
  if (!panel || !model) {
    return NO_NOTEBOOK;
  }
  const index = panel.content.activeCellIndex + 1;
  model.sharedModel.insertCell(index, { cell_type: 'code', source });
  focusCell(app, panel, index);
  return null;
}

/**
 * Add `model` to the active cell when it already is that model's magic; otherwise insert a
 * ready cell below it.  Returns what to tell the user, if anything.
 */
export function useModel(
  app: JupyterFrontEnd,
  tracker: INotebookTracker | null,
  model: IModelInfo
): IOutcome | null {
  const magic = magicFor(model);
  const cell = tracker?.activeCell;
  const source = cell?.model.sharedModel.getSource() ?? '';
  if (!cell || cell.model.type !== 'code' || !startsWithMagic(source, magic.magic)) {
    return insertBelow(app, tracker, readyCell(model));
  }
  const updated = addModel(source, magic, model.id);
  if (updated === null) {
    return { ok: true, message: `${model.id} is already in the active cell.` };
  }
  cell.model.sharedModel.setSource(updated);
  return null;
}

function focusCell(app: JupyterFrontEnd, panel: NotebookPanel, index: number): void {
  app.shell.activateById(panel.id);
  panel.content.activeCellIndex = index;
  const cell = panel.content.widgets[index];
  if (cell) {
    void panel.content.scrollToCell(cell);
  }
}
