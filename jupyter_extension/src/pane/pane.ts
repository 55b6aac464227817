/**
 * A pane: the reducer's state, its view, and the pacing between them.
 *
 * Events are reduced as they arrive (cheap), the DOM is brought up to date at most once per
 * `frameMs` (default 50 ms: about 20 renders a second whatever the delta rate), and once a
 * second while a turn runs so the elapsed time moves.
 */
import type { PaneActions } from './actions';
import { initialState, reduce } from './reducer';
import type { Envelope, LocalEvent, PaneState, WireEvent } from './types';
import { PaneView } from './view';

export interface PaneOptions {
  sessionId: string;
  actions: PaneActions;
  /** Minimum milliseconds between two renders. */
  frameMs?: number;
  /** The clock (ms since the epoch); tests pass their own. */
  now?: () => number;
}

export class Pane {
  readonly view: PaneView;
  /** How many times the DOM was updated (the flood limit is checked on it). */
  renders = 0;
  private current: PaneState;
  private readonly frameMs: number;
  private readonly now: () => number;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private ticker: ReturnType<typeof setInterval> | null = null;
  private lastRender = -Infinity;
  private readonly listeners = new Set<(state: PaneState) => void>();

  constructor(
    readonly host: HTMLElement,
    options: PaneOptions
  ) {
    this.current = initialState(options.sessionId);
    this.frameMs = options.frameMs ?? 50;
    this.now = options.now ?? Date.now;
    this.view = new PaneView(options.actions);
    host.appendChild(this.view.node);
    this.render();
  }

  get state(): PaneState {
    return this.current;
  }

  /** Apply one event; the DOM follows within a frame. */
  dispatch(event: WireEvent | LocalEvent, seq: number | null = null): void {
    const next = reduce(this.current, event, seq);
    if (next !== this.current) {
      this.current = next;
      this.listeners.forEach(listener => listener(next));
      this.schedule();
    }
  }

  dispatchAll(envelopes: Iterable<Envelope>): void {
    for (const { seq, event } of envelopes) {
      this.dispatch(event, seq);
    }
  }

  /** Be told of every new state (the sidebar's badge listens for pending approvals). */
  subscribe(listener: (state: PaneState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Render now if anything is waiting (tests; a view about to be shown). */
  flush(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
      this.render();
    }
  }

  dispose(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
    }
    if (this.ticker !== null) {
      clearInterval(this.ticker);
    }
    this.timer = this.ticker = null;
    this.listeners.clear();
    this.view.node.remove();
  }

  private schedule(): void {
    if (this.timer !== null) {
      return;
    }
    const wait = Math.max(0, this.lastRender + this.frameMs - this.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.render();
    }, wait);
  }

  private render(): void {
    this.lastRender = this.now();
    this.renders += 1;
    this.view.render(this.current, this.lastRender);
    const active = ['running', 'waiting_approval', 'waiting_input'].includes(this.current.status);
    if (active && this.ticker === null) {
      this.ticker = setInterval(() => this.schedule(), 1000);
    } else if (!active && this.ticker !== null) {
      clearInterval(this.ticker);
      this.ticker = null;
    }
  }
}
