/**
 * The REST routes the sidebar calls, through JupyterLab's own server connection: its base URL,
 * login cookie and XSRF header (ServerConnection.makeRequest adds them), so the sidebar works
 * wherever JupyterLab does, with no token of its own and no kernel.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { apiError, type FetchLike } from '../pane';
import type { ListPage, ListQuery, SessionSummary } from './model';

/** `GET /api/agents` rows. */
export interface AgentInfo {
  name: string;
  description?: string;
}

/** One choice of `GET /api/sessions/{id}/models`. */
export interface ModelChoice {
  ref: string;
  name?: string;
  provider?: string;
  model?: string;
  is_default?: boolean;
  is_current?: boolean;
}

/** `GET /api/sessions/{id}/models`: the current agent's models, the current one marked. */
export interface SessionModels {
  agent: string;
  current_model_ref: string;
  models: ModelChoice[];
}

/** The server could not be reached (as opposed to a refusal, which is an `ApiError`). */
export class Unreachable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Unreachable';
  }
}

export class SessionsApi {
  readonly settings: ServerConnection.ISettings;

  constructor(settings?: ServerConnection.ISettings) {
    this.settings = settings ?? ServerConnection.makeSettings();
  }

  /** The server's base URL (absolute: the server connection only serves URLs under it). */
  get baseUrl(): string {
    return this.settings.baseUrl;
  }

  /** A `fetch` that goes through the server connection (the pane's connection uses it). */
  readonly fetch: FetchLike = (url, init) =>
    ServerConnection.makeRequest(url, init, this.settings);

  /** One page of the list; the next page's cursor comes in the `X-Next-Cursor` header. */
  async list(query: ListQuery): Promise<ListPage> {
    const params = new URLSearchParams({ limit: String(query.limit) });
    if (query.before !== undefined) {
      params.set('before', query.before);
    }
    const response = await this.send('GET', `sessions?${params}`);
    const rows = (await response.json()) as SessionSummary[];
    return { rows, next: response.headers.get('X-Next-Cursor') };
  }

  agents(): Promise<AgentInfo[]> {
    return this.call('GET', 'agents');
  }

  create(): Promise<SessionSummary> {
    return this.call('POST', 'sessions', {});
  }

  rename(id: string, title: string): Promise<unknown> {
    return this.call('PATCH', `sessions/${encodeURIComponent(id)}/title`, { title });
  }

  star(id: string, starred: boolean): Promise<unknown> {
    return this.call('PATCH', `sessions/${encodeURIComponent(id)}/starred`, { starred });
  }

  remove(id: string): Promise<unknown> {
    return this.call('DELETE', `sessions/${encodeURIComponent(id)}`);
  }

  notebook(id: string): Promise<Record<string, unknown>> {
    return this.call('GET', `sessions/${encodeURIComponent(id)}/notebook`);
  }

  importNotebook(notebook: unknown): Promise<SessionSummary> {
    return this.call('POST', 'sessions/import', notebook);
  }

  models(id: string): Promise<SessionModels> {
    return this.call('GET', `sessions/${encodeURIComponent(id)}/models`);
  }

  /**
   * Start a turn that goes on after this request ends; the open pane follows `/events`.
   * `model` (a ref of `models()`) is used from this turn on: the server validates and keeps it.
   */
  async run(id: string, agent: string, prompt: string, model?: string): Promise<void> {
    const path = `sessions/${encodeURIComponent(id)}/agent/${encodeURIComponent(agent)}`;
    const body: Record<string, unknown> = { messages: [{ role: 'user', content: prompt }] };
    if (model) {
      body.model = model;
    }
    const response = await this.send('POST', `${path}?detach=true`, body);
    // The run stream's first bytes mean the turn is committed; the pane shows the rest.
    await response.body?.cancel();
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.send(method, path, body);
    return (await response.json()) as T;
  }

  private async send(method: string, path: string, body?: unknown): Promise<Response> {
    const url = URLExt.join(this.settings.baseUrl, 'nbsession/api', path);
    const init: RequestInit = { method, cache: 'no-store' };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'Content-Type': 'application/json' };
    }
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this.settings);
    } catch (error) {
      throw new Unreachable(`The Jupyter server cannot be reached (${String(error)}).`);
    }
    if (!response.ok) {
      throw await apiError(response);
    }
    return response;
  }
}

/** A sentence for the user from whatever a request threw. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
