/**
 * The Tokenhot JupyterLab extension: a status bar item, the "Tokenhot" sidebar panel, key
 * commands and task notifications, all over the server extension's `tokenhot/api/`.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Clipboard, ICommandPalette, Notification } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { Token } from '@lumino/coreutils';

import type { ITask } from './api';
import { insertBelow, useModel } from './cells';
import { forgetKey, setKey, testKey } from './keys';
import { TokenhotModel } from './model';
import { announce } from './notify';
import { IPanelActions, TokenhotPanel } from './panel';
import { TokenhotStatus } from './status';

const PLUGIN_ID = 'tokenhot-jupyter:plugin';
const DEFAULT_INTERVAL = 10; // seconds; the settings schema says the same

/** The commands, as the palette lists them. */
const COMMANDS = {
  setKey: { id: 'tokenhot:set-key', label: 'Tokenhot: Set API key…' },
  forgetKey: { id: 'tokenhot:forget-key', label: 'Tokenhot: Forget stored API key' },
  testKey: { id: 'tokenhot:test-key', label: 'Tokenhot: Test API key' },
  showPanel: { id: 'tokenhot:show-panel', label: 'Tokenhot: Show panel' }
} as const;

/** The polled status and tasks, shared by the panel and the status bar item. */
export const ITokenhotModel = new Token<TokenhotModel>(
  'tokenhot-jupyter:ITokenhotModel',
  'Status and tasks polled from the Tokenhot server extension.'
);

const plugin: JupyterFrontEndPlugin<TokenhotModel> = {
  id: PLUGIN_ID,
  description: 'The Tokenhot panel, key commands and task notifications.',
  autoStart: true,
  provides: ITokenhotModel,
  optional: [INotebookTracker, ICommandPalette, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker | null,
    palette: ICommandPalette | null,
    settings: ISettingRegistry | null
  ): TokenhotModel => {
    const model = new TokenhotModel(DEFAULT_INTERVAL);
    const panel = new TokenhotPanel(model, panelActions(app, tracker, model));
    app.shell.add(panel, 'left', { rank: 600 });
    addCommands(app, model, panel.id);
    for (const { id } of Object.values(COMMANDS)) {
      palette?.addItem({ command: id, category: 'Tokenhot' });
    }
    model.taskFinished.connect((_, task) => notifyFinished(app, tracker, task));
    void settings?.load(PLUGIN_ID).then(loaded => {
      const apply = (): void => {
        model.interval = loaded.get('pollInterval').composite as number;
      };
      loaded.changed.connect(apply);
      apply();
    });
    return model;
  }
};

const statusPlugin: JupyterFrontEndPlugin<void> = {
  id: 'tokenhot-jupyter:status-bar',
  description: 'Tokenhot in the status bar: simulator or live, and spend today.',
  autoStart: true,
  requires: [ITokenhotModel],
  optional: [IStatusBar], // Notebook 7 has no status bar
  activate: (app: JupyterFrontEnd, model: TokenhotModel, statusBar: IStatusBar | null) => {
    const item = new TokenhotStatus(model, () => {
      void app.commands.execute(COMMANDS.showPanel.id);
    });
    statusBar?.registerStatusItem('tokenhot-jupyter:status', { item, align: 'left', rank: 100 });
  }
};

function addCommands(app: JupyterFrontEnd, model: TokenhotModel, panelId: string): void {
  const run = {
    setKey: () => setKey(model),
    forgetKey: () => forgetKey(model),
    testKey: () => testKey(),
    showPanel: () => app.shell.activateById(panelId)
  };
  for (const [name, { id, label }] of Object.entries(COMMANDS)) {
    app.commands.addCommand(id, { label, execute: run[name as keyof typeof COMMANDS] });
  }
}

function panelActions(
  app: JupyterFrontEnd,
  tracker: INotebookTracker | null,
  model: TokenhotModel
): IPanelActions {
  const execute = (id: string, args?: { path: string }): void => {
    void app.commands.execute(id, args);
  };
  return {
    setKey: () => execute(COMMANDS.setKey.id),
    testKey: () => execute(COMMANDS.testKey.id),
    forgetKey: () => execute(COMMANDS.forgetKey.id),
    openVideo: task => task.video_path && execute('docmanager:open', { path: task.video_path }),
    attach: task => announce(insertBelow(app, tracker, attachCell(task))),
    copyId: task => {
      Clipboard.copyToSystem(task.id);
      announce({ ok: true, message: `Copied ${task.id}.` });
    },
    useModel: info => announce(useModel(app, tracker, info))
  };
}

function attachCell(task: ITask): string {
  return `%tokenhot attach ${task.id}`;
}

function notifyFinished(app: JupyterFrontEnd, tracker: INotebookTracker | null, task: ITask): void {
  const where = task.notebook ? ` (${task.notebook})` : '';
  const actions: Notification.IAction[] = [
    {
      label: 'Attach',
      caption: `Insert ${attachCell(task)} below the active cell`,
      callback: () => announce(insertBelow(app, tracker, attachCell(task)))
    }
  ];
  if (task.video_path) {
    const path = task.video_path;
    actions.unshift({
      label: 'Open video',
      callback: () => void app.commands.execute('docmanager:open', { path })
    });
  }
  if (task.status === 'succeeded') {
    Notification.success(`Video ready: ${task.model}${where}`, { actions, autoClose: 10000 });
  } else {
    const reason = task.error ? `: ${task.error}` : '';
    Notification.error(`Video failed: ${task.model}${where}${reason}`, {
      actions,
      autoClose: false
    });
  }
}

export default [plugin, statusPlugin];
