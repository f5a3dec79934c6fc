/**
 * The left sidebar panel "Tokenhot": the key, every video task on this server, the models.
 *
 * Everything a model or a user wrote (prompts, errors, descriptions) is rendered by React as
 * text nodes; nothing is ever set as HTML.
 */
import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { FINISHED, IModelInfo, IModels, IStatus, ITask, ModelKind } from './api';
import { basename, duration, KEY_SOURCE, money } from './format';
import { tokenhotIcon } from './icon';
import type { TokenhotModel } from './model';

/** What the panel's buttons do (carried out by the plugin, which has the app). */
export interface IPanelActions {
  setKey(): void;
  testKey(): void;
  forgetKey(): void;
  openVideo(task: ITask): void;
  attach(task: ITask): void;
  copyId(task: ITask): void;
  useModel(model: IModelInfo): void;
}

const KINDS: ReadonlyArray<ModelKind> = ['chat', 'image', 'video', 'audio'];

// What a task's poller (or, for `unknown`, its status) means for the user.
const NOTES: Readonly<Record<string, string>> = {
  server: 'polled by the Jupyter server (its kernel is gone)',
  'waiting-for-kernel': 'waits for a kernel: the server has no key to poll it with',
  unknown: 'nobody polls it now: Attach resumes it'
};

/** The sidebar widget. */
export class TokenhotPanel extends ReactWidget {
  constructor(
    private readonly model: TokenhotModel,
    private readonly actions: IPanelActions
  ) {
    super();
    this.id = 'tokenhot-jupyter-panel';
    this.addClass('jp-TokenhotPanel');
    this.title.icon = tokenhotIcon;
    this.title.caption = 'Tokenhot';
  }

  protected render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed} initialSender={this.model}>
        {() => (
          <>
            <h2 className="jp-TokenhotPanel-title">Tokenhot</h2>
            <KeySection
              status={this.model.status}
              error={this.model.error}
              actions={this.actions}
            />
            <TasksSection
              tasks={this.model.tasks}
              now={this.model.serverNow}
              actions={this.actions}
            />
            <ModelsSection
              model={this.model}
              keyState={keyState(this.model.status)}
              actions={this.actions}
            />
          </>
        )}
      </UseSignal>
    );
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.model.refresh();
  }
}

function KeySection(props: {
  status: IStatus | null;
  error: string | null;
  actions: IPanelActions;
}): JSX.Element {
  const { status, error, actions } = props;
  return (
    <section className="jp-TokenhotPanel-section">
      <h3>Gateway and key</h3>
      {status && (
        <p className={`jp-TokenhotPanel-mode jp-mod-${status.mode}`}>
          {status.mode === 'simulator'
            ? 'Simulator: answers are made up locally, nothing is paid.'
            : `Live gateway: ${status.base_url}`}
        </p>
      )}
      {status && <p>Key: {KEY_SOURCE[status.key_source]}</p>}
      {status && <p>{spend(status)}</p>}
      {error && <p className="jp-TokenhotPanel-error">{error}</p>}
      <div className="jp-TokenhotPanel-buttons">
        <button className="jp-mod-styled jp-mod-accept" onClick={actions.setKey}>
          Set key…
        </button>
        <button className="jp-mod-styled" onClick={actions.testKey}>
          Test
        </button>
        <button
          className="jp-mod-styled jp-mod-warn"
          onClick={actions.forgetKey}
          disabled={status?.key_source !== 'stored'}
          title={
            status?.key_source === 'stored'
              ? 'Delete the key stored on this server'
              : 'No key is stored on this server'
          }
        >
          Forget
        </button>
      </div>
    </section>
  );
}

function spend(status: IStatus): string {
  const today = `Spent today: ${money(status.spend_today, status.spend_currency)}`;
  return status.budget_left === null
    ? today
    : `${today}, ${money(status.budget_left, status.spend_currency)} left`;
}

function TasksSection(props: { tasks: ITask[]; now: number; actions: IPanelActions }): JSX.Element {
  return (
    <section className="jp-TokenhotPanel-section">
      <h3>Video tasks</h3>
      {props.tasks.length === 0 ? (
        <p className="jp-TokenhotPanel-empty">No video tasks yet: start one with %%video.</p>
      ) : (
        <ul className="jp-TokenhotPanel-list">
          {props.tasks.map(task => (
            <TaskRow key={task.id} task={task} now={props.now} actions={props.actions} />
          ))}
        </ul>
      )}
    </section>
  );
}

function TaskRow(props: { task: ITask; now: number; actions: IPanelActions }): JSX.Element {
  const { task, now, actions } = props;
  const elapsed = duration((task.finished_at ?? now) - task.created_at);
  const note = NOTES[task.status] ?? (task.poller ? NOTES[task.poller] : undefined);
  return (
    <li className="jp-TokenhotTask" data-task-id={task.id}>
      <div className="jp-TokenhotTask-head">
        <span className="jp-TokenhotTask-model" title={task.model}>
          {task.model}
        </span>
        <span className={`jp-TokenhotTask-status jp-mod-${task.status}`}>{task.status}</span>
        <span className="jp-TokenhotTask-elapsed">{elapsed}</span>
      </div>
      {task.progress !== null && !FINISHED.has(task.status) && (
        <progress max={100} value={task.progress} title={`${task.progress}%`} />
      )}
      <div className="jp-TokenhotTask-prompt">{task.prompt}</div>
      {task.notebook && (
        <div className="jp-TokenhotTask-notebook" title={task.notebook}>
          {basename(task.notebook)}
        </div>
      )}
      {note && <div className="jp-TokenhotTask-note">{note}</div>}
      {task.error && <div className="jp-TokenhotPanel-error">{task.error}</div>}
      <div className="jp-TokenhotTask-actions">
        <button disabled={!task.video_path} onClick={() => actions.openVideo(task)}>
          Open video
        </button>
        <button
          title={`Insert %tokenhot attach ${task.id} below the active cell`}
          onClick={() => actions.attach(task)}
        >
          Attach
        </button>
        <button title={task.id} onClick={() => actions.copyId(task)}>
          Copy id
        </button>
      </div>
    </li>
  );
}

/** What the live model list depends on: the mode and the key in force. */
function keyState(status: IStatus | null): string {
  return status ? `${status.mode}/${status.key_source}` : '';
}

function ModelsSection(props: {
  model: TokenhotModel;
  keyState: string;
  actions: IPanelActions;
}): JSX.Element {
  const [models, setModels] = React.useState<IModels | null>(null);
  const [failure, setFailure] = React.useState<string | null>(null);
  const [query, setQuery] = React.useState('');
  const [kind, setKind] = React.useState<ModelKind | ''>('');
  const load = (): void => {
    props.model.models().then(
      found => (setModels(found), setFailure(null)),
      (error: Error) => setFailure(error.message)
    );
  };
  // Load once the status is known, and again when a key is set or forgotten.
  React.useEffect(() => {
    if (props.keyState) {
      load();
    }
  }, [props.keyState]);
  const shown = (models?.models ?? []).filter(m => matches(m, query, kind));
  return (
    <section className="jp-TokenhotPanel-section">
      <h3>Models</h3>
      <div className="jp-TokenhotPanel-filters">
        <input
          type="search"
          placeholder="Search models"
          aria-label="Search models"
          value={query}
          onChange={event => setQuery(event.target.value)}
        />
        <select
          aria-label="Kind"
          value={kind}
          onChange={event => setKind(event.target.value as ModelKind | '')}
        >
          <option value="">all kinds</option>
          {KINDS.map(k => (
            <option key={k} value={k}>
              {k}
            </option>
          ))}
        </select>
        <button title="Reload the model list" onClick={load}>
          ↻
        </button>
      </div>
      {failure && <p className="jp-TokenhotPanel-error">{failure}</p>}
      {models && !models.live_loaded && (
        <p className="jp-TokenhotPanel-empty">
          Catalog only: the gateway's live list is not loaded (it needs a key).
        </p>
      )}
      <ul className="jp-TokenhotPanel-list">
        {shown.map(m => (
          <ModelRow key={m.id} model={m} actions={props.actions} />
        ))}
      </ul>
    </section>
  );
}

function ModelRow(props: { model: IModelInfo; actions: IPanelActions }): JSX.Element {
  const { model, actions } = props;
  return (
    <li>
      <button
        className="jp-TokenhotModel"
        data-model-id={model.id}
        title={model.description ?? `Insert a cell for ${model.id}`}
        onClick={() => actions.useModel(model)}
      >
        <span className="jp-TokenhotModel-id">{model.id}</span>
        <span className="jp-TokenhotModel-badge jp-mod-kind">{model.kind}</span>
        {model.badges.map(badge => (
          <span key={badge} className="jp-TokenhotModel-badge">
            {badge}
          </span>
        ))}
        {model.price && <span className="jp-TokenhotModel-price">{model.price}</span>}
      </button>
    </li>
  );
}

function matches(model: IModelInfo, query: string, kind: ModelKind | ''): boolean {
  if (kind && model.kind !== kind) {
    return false;
  }
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  const text = [model.id, model.family, ...model.badges, model.description ?? '']
    .join(' ')
    .toLowerCase();
  return words.every(word => text.includes(word));
}
