/**
 * What the status bar and the panel show: status and tasks polled from the server extension.
 */
import { IDisposable } from '@lumino/disposable';
import { IPoll, Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { FINISHED, IModels, IStatus, ITask, ITasks, requestAPI } from './api';

/** Statuses that earn a notification when a task reaches them. */
const NOTIFY: ReadonlySet<string> = new Set(['succeeded', 'failed']);

// `since` reaches back this far (seconds), so a journal row written just after the server
// read its clock is still picked up by the next poll.
const SINCE_OVERLAP = 5;

/** Polls `GET status` and `GET tasks?since=`; pauses while the page is hidden. */
export class TokenhotModel implements IDisposable {
  constructor(intervalSeconds: number) {
    this._poll = new Poll({
      factory: () => this._tick(),
      frequency: TokenhotModel.frequency(intervalSeconds),
      name: 'tokenhot-jupyter:status',
      standby: 'when-hidden'
    });
  }

  /** The poll's timing for an interval in seconds (backs off on errors). */
  static frequency(intervalSeconds: number): IPoll.Frequency {
    const interval = Math.max(2, intervalSeconds) * 1000;
    return { interval, backoff: true, max: Math.max(interval, 300_000) };
  }

  /** Emitted after every poll, successful or not. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Emitted once per task when it succeeds or fails while this page is open. */
  get taskFinished(): ISignal<this, ITask> {
    return this._taskFinished;
  }

  /** The last status, or null before the first answer. */
  get status(): IStatus | null {
    return this._status;
  }

  /** Why the last poll failed, or null. */
  get error(): string | null {
    return this._error;
  }

  /** Every known task, newest first. */
  get tasks(): ITask[] {
    return [...this._tasks.values()].sort((a, b) => b.created_at - a.created_at);
  }

  /** The server's clock now (epoch seconds), for elapsed times. */
  get serverNow(): number {
    return this._serverNow + (Date.now() - this._fetchedAt) / 1000;
  }

  /** Change the poll interval (seconds). */
  set interval(seconds: number) {
    this._poll.frequency = TokenhotModel.frequency(seconds);
  }

  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  /** Poll now (after a key change, or when the panel opens). */
  refresh(): Promise<void> {
    return this._poll.refresh();
  }

  /** The model list (the catalog merged with the gateway's live list). */
  models(): Promise<IModels> {
    return requestAPI<IModels>('models');
  }

  dispose(): void {
    this._poll.dispose();
    Signal.clearData(this);
  }

  private async _tick(): Promise<void> {
    const since = this._since === null ? '' : `?since=${this._since - SINCE_OVERLAP}`;
    try {
      const [status, tasks] = await Promise.all([
        requestAPI<IStatus>('status'),
        requestAPI<ITasks>(`tasks${since}`)
      ]);
      this._status = status;
      this._error = null;
      this._merge(tasks);
    } catch (error) {
      this._error = (error as Error).message;
      throw error; // the poll backs off
    } finally {
      this._changed.emit();
    }
  }

  private _merge({ now, tasks }: ITasks): void {
    const baseline = this._since ?? now; // tasks finished before the page opened stay quiet
    for (const task of tasks) {
      const before = this._tasks.get(task.id);
      this._tasks.set(task.id, task);
      const finishedAt = task.finished_at ?? task.updated_at;
      const sawItRun = before !== undefined && !FINISHED.has(before.status);
      if (NOTIFY.has(task.status) && (sawItRun || finishedAt > baseline)) {
        this._notifyOnce(task);
      }
    }
    this._since = this._since === null ? now : Math.max(this._since, now);
    this._serverNow = now;
    this._fetchedAt = Date.now();
  }

  private _notifyOnce(task: ITask): void {
    if (!this._notified.has(task.id)) {
      this._notified.add(task.id);
      this._taskFinished.emit(task);
    }
  }

  private _poll: Poll;
  private _status: IStatus | null = null;
  private _error: string | null = null;
  private _tasks = new Map<string, ITask>();
  private _notified = new Set<string>();
  private _since: number | null = null;
  private _serverNow = Date.now() / 1000;
  private _fetchedAt = Date.now();
  private _changed = new Signal<this, void>(this);
  private _taskFinished = new Signal<this, ITask>(this);
}
