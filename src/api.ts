/**
 * The server extension's REST API (`{baseUrl}tokenhot/api/`): its types and one request helper.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export type KeySource = 'argument' | 'environment' | 'stored' | 'none';
export type TaskStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'unknown';
export type ModelKind = 'chat' | 'image' | 'video' | 'audio';

/** `GET status`. */
export interface IStatus {
  mode: 'simulator' | 'live';
  base_url: string;
  key_source: KeySource;
  reachable: boolean | null;
  spend_today: number;
  spend_currency: string;
  budget_left: number | null;
  running_tasks: number;
  version: string;
}

/** One row of `GET tasks`. */
export interface ITask {
  id: string;
  model: string;
  prompt: string;
  status: TaskStatus;
  progress: number | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
  notebook: string | null;
  video_path: string | null;
  error: string | null;
  poller: 'kernel' | 'server' | 'waiting-for-kernel' | null;
}

/** `GET tasks[?since=]`. */
export interface ITasks {
  now: number;
  tasks: ITask[];
}

/** One row of `GET models`. */
export interface IModelInfo {
  id: string;
  kind: ModelKind;
  family: string;
  badges: string[];
  price: string | null;
  live: boolean;
  description: string | null;
}

/** `GET models`. */
export interface IModels {
  models: IModelInfo[];
  live_loaded: boolean;
}

/** `PUT key` and `DELETE key`. */
export interface IKeyState {
  set: boolean;
  source: KeySource;
  masked: string | null;
}

/** `POST key/test`. */
export interface IKeyTest {
  ok: boolean;
  message: string;
  models: number | null;
}

/** Statuses after which a task never changes again. */
export const FINISHED: ReadonlySet<TaskStatus> = new Set(['succeeded', 'failed', 'cancelled']);

/**
 * Call `{baseUrl}tokenhot/api/{path}` with Jupyter's token and XSRF header.
 *
 * Rejects with a `ResponseError` whose message is the server's `{"message"}`.
 */
export async function requestAPI<T>(
  path: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, 'tokenhot', 'api', path);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  const data = text ? parseJSON(text) : {};
  if (!response.ok) {
    const message =
      (data as { message?: string }).message ??
      `The Tokenhot server extension answered ${response.status}.`;
    throw new ServerConnection.ResponseError(response, message);
  }
  return data as T;
}

/** Send a JSON body with `method`. */
export function jsonInit(method: string, body?: unknown): RequestInit {
  return body === undefined ? { method } : { method, body: JSON.stringify(body) };
}

function parseJSON(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return {}; // an HTML error page, e.g. when the server extension is not loaded
  }
}
