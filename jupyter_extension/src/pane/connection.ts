/**
 * Direct mode: the browser follows the session's `/events` and answers over REST itself.
 *
 * Used where the page was served by the Jupyter server hosting nbsession (same origin): the
 * login cookie authenticates, writes carry the `_xsrf` cookie in `X-XSRFToken`, and no token
 * is ever needed. The stream is read with `fetch` so a reconnect can send `Last-Event-ID`.
 *
 * Order of work: read `/snapshot` (the stored history), then follow `/events` from 0 so the
 * buffered events restore what a snapshot lacks; on a drop, resume after the last seq; on a
 * `gap`, read the snapshot again.
 */
import { ApiError, type ElicitationBody, type PaneActions, type ResumeBody } from './actions';
import { SSEParser } from './sse';
import type { LocalEvent, PaneState, Snapshot, WireEvent } from './types';

export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

export interface DirectOptions {
  /** The Jupyter server's base URL path, e.g. `/` or `/user/ada/`. */
  baseUrl: string;
  sessionId: string;
  dispatch(event: WireEvent | LocalEvent, seq: number | null): void;
  state(): PaneState;
  /** Defaults to the page's `fetch`; the sidebar passes JupyterLab's server connection. */
  fetch?: FetchLike;
  /** Waits before reconnect attempts; the last one repeats. */
  retryDelaysMs?: number[];
  /** Read the XSRF token (defaults to the `_xsrf` cookie). */
  xsrfToken?: () => string | undefined;
}

export class DirectConnection implements PaneActions {
  private readonly root: string;
  private readonly fetch: FetchLike;
  private readonly delays: number[];
  private abort: AbortController | null = null;
  private stopped = false;
  private running: Promise<void> | null = null;

  constructor(private readonly options: DirectOptions) {
    const base = options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`;
    this.root = `${base}nbsession/api/sessions/${encodeURIComponent(options.sessionId)}`;
    this.fetch = options.fetch ?? ((url, init) => fetch(url, init));
    this.delays = options.retryDelaysMs ?? [500, 1000, 2000, 5000];
  }

  /** Start following the session; resolves when it is over (`stop()` or `session_exited`). */
  start(): Promise<void> {
    this.running ??= this.follow();
    return this.running;
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }

  resume(body: ResumeBody): Promise<void> {
    return this.post('resume', body);
  }

  elicitation(body: ElicitationBody): Promise<void> {
    return this.post('elicitation', body);
  }

  cancel(): Promise<void> {
    return this.post('cancel', {});
  }

  private async follow(): Promise<void> {
    let failures = 0;
    let needSnapshot = true;
    while (!this.stopped) {
      this.abort = new AbortController();
      try {
        if (needSnapshot) {
          const snapshot = (await this.json('snapshot', this.abort.signal)) as Snapshot;
          this.options.dispatch({ type: 'pane.snapshot', snapshot }, null);
          needSnapshot = false;
        }
        const outcome = await this.stream(this.abort.signal);
        failures = 0;
        if (outcome === 'exited') {
          return;
        }
        needSnapshot = outcome === 'gap';
      } catch (error) {
        if (this.stopped) {
          return;
        }
        if (error instanceof ApiError && [401, 403, 404].includes(error.status)) {
          this.options.dispatch({ type: 'pane.notice', message: error.message }, null);
          this.options.dispatch({ type: 'pane.connection', status: 'closed' }, null);
          return;
        }
        failures += 1;
      }
      if (!this.stopped) {
        this.options.dispatch({ type: 'pane.connection', status: 'reconnecting' }, null);
        await this.sleep(this.delays[Math.min(failures, this.delays.length - 1)] ?? 1000);
      }
    }
  }

  /** Read `/events` until it ends: `exited`, `gap` (a snapshot is due) or `dropped`. */
  private async stream(signal: AbortSignal): Promise<'exited' | 'gap' | 'dropped'> {
    const since = this.options.state().lastSeq;
    const response = await this.fetch(`${this.root}/events?since=${since}`, {
      method: 'GET',
      credentials: 'same-origin',
      headers: { Accept: 'text/event-stream', 'Last-Event-ID': String(since) },
      cache: 'no-store',
      signal
    });
    if (!response.ok || !response.body) {
      throw await apiError(response);
    }
    this.options.dispatch({ type: 'pane.connection', status: 'live' }, null);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const parser = new SSEParser();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          return 'dropped';
        }
        for (const message of parser.feed(decoder.decode(value, { stream: true }))) {
          const event = JSON.parse(message.data) as WireEvent;
          const seq = message.id === null ? null : Number(message.id);
          this.options.dispatch(event, Number.isFinite(seq) ? seq : null);
          if (event.type === 'session_exited') {
            return 'exited';
          }
        }
        if (this.options.state().needsSnapshot) {
          return 'gap';
        }
      }
    } finally {
      reader.cancel().catch(() => undefined);
    }
  }

  private async json(path: string, signal: AbortSignal): Promise<unknown> {
    const response = await this.fetch(`${this.root}/${path}`, {
      method: 'GET',
      credentials: 'same-origin',
      cache: 'no-store',
      signal
    });
    if (!response.ok) {
      throw await apiError(response);
    }
    return response.json();
  }

  private async post(path: string, body: object): Promise<void> {
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    const xsrf = (this.options.xsrfToken ?? xsrfCookie)();
    if (xsrf) {
      headers['X-XSRFToken'] = xsrf;
    }
    const response = await this.fetch(`${this.root}/${path}`, {
      method: 'POST',
      credentials: 'same-origin',
      headers,
      body: JSON.stringify(body)
    });
    if (!response.ok) {
      throw await apiError(response);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise(resolve => {
      const timer = setTimeout(resolve, ms);
      this.abort?.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/** The `_xsrf` cookie jupyter-server sets on the pages it serves (read as JupyterLab does). */
export function xsrfCookie(): string | undefined {
  if (typeof document === 'undefined') {
    return undefined;
  }
  return document.cookie.match(/\b_xsrf=([^;]*)\b/)?.[1];
}

/** The server's error body (`{code, message}`) as an `ApiError` (the sidebar's calls use it too). */
export async function apiError(response: Response): Promise<ApiError> {
  let code = 'internal';
  let message = `${response.status} ${response.statusText}`.trim();
  try {
    const body = await response.json();
    code = typeof body.code === 'string' ? body.code : code;
    message = typeof body.message === 'string' ? body.message : message;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, code, message);
}
