/**
 * The sidebar panel: the session list (kept live by a one-second poll), `New session` with an
 * agent picker, and one open session shown as the shared event pane with a message box.
 *
 * State lives in `ListState` (model.ts); this file renders it and turns clicks into REST
 * calls. What needs JupyterLab itself (dialogs, saving and opening a notebook) comes in
 * through `SidebarHost`, so the panel knows nothing of the application around it.
 */
import { Widget } from '@lumino/widgets';

import { mountDirect, type PaneState } from '../pane';
import { type AgentInfo, messageOf, type SessionModels, type SessionsApi } from './api';
import {
  displayTitle,
  initialList,
  isWaiting,
  listAppended,
  listFailed,
  listReplaced,
  type ListState,
  nextPageQuery,
  pollQuery,
  sessionAdded,
  sessionChanged,
  sessionRemoved,
  type SessionSummary,
  waitingSessions
} from './model';
import { ModelPicker } from './models';
import { FollowBottom } from './scroll';

export interface SidebarHost {
  /** Ask before something that cannot be undone; true when the user confirmed. */
  confirm(title: string, body: string, action: string): Promise<boolean>;
  /** Ask for one line of text; null when cancelled. */
  askText(title: string, label: string, value: string): Promise<string | null>;
  /** Save a session's exported notebook next to the user's files and open it. */
  openExport(row: SessionSummary, notebook: Record<string, unknown>): Promise<string>;
}

export interface SidebarOptions {
  api: SessionsApi;
  host: SidebarHost;
  /** Milliseconds between two reads of the list. */
  pollMs?: number;
}

const AGENT_KEY = 'nbsession:agent:';
const ACTIVE = new Set(['running', 'waiting_approval', 'waiting_input']);
const BADGE_KEY = 'nbsession-waiting';

export class SidebarPanel extends Widget {
  private state: ListState = initialList();
  private readonly api: SessionsApi;
  private readonly host: SidebarHost;
  private readonly pollMs: number;
  private readonly statusNode = el('div', 'nbsession-sidebar-status');
  private readonly agentPicker = document.createElement('select');
  private readonly newButton: HTMLButtonElement;
  private readonly newError = errorLine();
  private readonly listView = el('div', 'nbsession-sidebar-listview');
  private readonly list = el('ul', 'nbsession-sidebar-list');
  private readonly loadMore: HTMLButtonElement;
  private readonly empty = el('p', 'nbsession-sidebar-empty');
  private readonly rows = new Map<string, RowView>();
  private session: OpenSession | null = null;
  private readonly paneWaiting = new Set<string>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private polling: Promise<void> | null = null;

  constructor(options: SidebarOptions) {
    super();
    this.api = options.api;
    this.host = options.host;
    this.pollMs = options.pollMs ?? 1000;
    this.id = 'nbsession-sidebar';
    this.addClass('nbsession-sidebar');
    this.title.caption = 'Agent sessions';

    const heading = el('h2', 'nbsession-sidebar-heading', 'Agent sessions');
    this.statusNode.setAttribute('role', 'status');
    const bar = el('div', 'nbsession-sidebar-new');
    const pickerLabel = el('label', 'nbsession-sidebar-agent', 'Agent ');
    this.agentPicker.setAttribute('aria-label', 'Agent');
    pickerLabel.appendChild(this.agentPicker);
    this.newButton = button('New session', 'nbsession-sidebar-new-button', () => {
      void this.newSession();
    });
    bar.append(pickerLabel, this.newButton);
    this.list.setAttribute('aria-label', 'Sessions');
    this.empty.textContent = 'No sessions yet.';
    this.loadMore = button('Load more', 'nbsession-sidebar-more', () => {
      void this.loadNextPage();
    });
    this.listView.append(this.list, this.empty, this.loadMore);
    this.node.append(heading, this.statusNode, bar, this.newError, this.listView);
    this.render();
  }

  /** Start reading the list and the agents; the poll keeps going until disposal. */
  start(): void {
    void this.loadAgents();
    this.polling ??= this.poll();
  }

  /** Create a session with the picked agent and open it. */
  async newSession(): Promise<void> {
    this.newError.textContent = '';
    this.newButton.disabled = true;
    try {
      const created = await this.api.create();
      const agent = this.agentPicker.value || 'default';
      localStorage.setItem(AGENT_KEY + created.id, agent);
      this.setList(sessionAdded(this.state, created));
      this.open(created.id);
    } catch (error) {
      this.newError.textContent = `New session failed: ${messageOf(error)}`;
    } finally {
      this.newButton.disabled = false;
    }
  }

  /** Show one session as a live pane (the list's rows stay a click away). */
  open(id: string): void {
    this.closeSession();
    const row = this.state.sessions.find(candidate => candidate.id === id);
    this.session = new OpenSession(this, id, row);
    this.listView.hidden = true;
    this.node.classList.add('nbsession-sidebar-has-session');
    this.node.appendChild(this.session.node);
    this.session.focus();
  }

  /** Back to the list. */
  closeSession(): void {
    if (this.session !== null) {
      this.paneWaiting.delete(this.session.id);
      this.session.dispose();
      this.session = null;
    }
    this.node.classList.remove('nbsession-sidebar-has-session');
    this.listView.hidden = false;
    this.renderBadge();
  }

  /** Read the list now (after an import elsewhere, say) rather than at the next tick. */
  async refresh(): Promise<void> {
    const query = pollQuery(this.state);
    try {
      // The answer is applied to the state of when it came, not of when it was asked for.
      const page = await this.api.list(query);
      this.setList(listReplaced(this.state, page, query));
    } catch (error) {
      this.setList(listFailed(this.state, messageOf(error)));
    }
  }

  /** A session imported elsewhere (the file browser's command): list it and open it. */
  showImported(row: SessionSummary): void {
    this.setList(sessionAdded(this.state, row));
    this.open(row.id);
  }

  // Called by the open session's controls -------------------------------------------------

  agentOf(id: string): string {
    return localStorage.getItem(AGENT_KEY + id) || this.agentPicker.value || 'default';
  }

  rowOf(id: string): SessionSummary | undefined {
    return this.state.sessions.find(row => row.id === id);
  }

  paneChanged(id: string, pane: PaneState): void {
    const waiting = pane.approval !== null || pane.elicitation !== null;
    if (waiting !== this.paneWaiting.has(id)) {
      if (waiting) {
        this.paneWaiting.add(id);
      } else {
        this.paneWaiting.delete(id);
      }
      this.renderBadge();
    }
  }

  async toggleStar(id: string): Promise<void> {
    const row = this.rowOf(id);
    const starred = !(row?.starred ?? false);
    await this.api.star(id, starred);
    this.setList(sessionChanged(this.state, id, { starred }));
  }

  async rename(id: string): Promise<void> {
    const row = this.rowOf(id);
    const title = await this.host.askText('Rename session', 'Title', row?.title ?? '');
    if (title === null || title.trim() === '' || title === row?.title) {
      return;
    }
    await this.api.rename(id, title.trim());
    this.setList(sessionChanged(this.state, id, { title: title.trim() }));
  }

  async remove(id: string): Promise<void> {
    const row = this.rowOf(id);
    const name = row ? displayTitle(row) : id;
    const confirmed = await this.host.confirm(
      'Delete session',
      `Delete “${name}”? Its messages are removed for good; a running turn is stopped.`,
      'Delete'
    );
    if (!confirmed) {
      return;
    }
    await this.api.remove(id);
    if (this.session?.id === id) {
      this.closeSession();
    }
    this.setList(sessionRemoved(this.state, id));
  }

  async exportNotebook(id: string): Promise<void> {
    const row = this.rowOf(id) ?? { id, title: '', created_at: '', num_messages: 0, starred: false };
    await this.host.openExport(row, await this.api.notebook(id));
  }

  run(id: string, prompt: string, model?: string): Promise<void> {
    return this.api.run(id, this.agentOf(id), prompt, model);
  }

  models(id: string): Promise<SessionModels> {
    return this.api.models(id);
  }

  mount(host: HTMLElement, id: string): ReturnType<typeof mountDirect> {
    return mountDirect(host, { baseUrl: this.api.baseUrl, sessionId: id, fetch: this.api.fetch });
  }

  // ---------------------------------------------------------------------------------------

  protected onActivateRequest(): void {
    (this.session?.node ?? this.newButton).querySelector<HTMLElement>('button')?.focus();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    if (this.timer !== null) {
      clearTimeout(this.timer);
    }
    this.polling = null;
    this.closeSession();
    super.dispose();
  }

  private async poll(): Promise<void> {
    while (!this.isDisposed) {
      await this.refresh();
      await new Promise<void>(resolve => {
        this.timer = setTimeout(resolve, this.pollMs);
      });
    }
  }

  private async loadNextPage(): Promise<void> {
    const query = nextPageQuery(this.state);
    this.loadMore.disabled = true;
    try {
      const page = await this.api.list(query);
      this.setList(listAppended(this.state, page));
    } catch (error) {
      this.setList(listFailed(this.state, messageOf(error)));
    } finally {
      this.loadMore.disabled = false;
    }
  }

  private async loadAgents(): Promise<void> {
    let agents: AgentInfo[];
    try {
      agents = await this.api.agents();
    } catch (error) {
      this.newError.textContent = `Agents could not be read: ${messageOf(error)}`;
      return;
    }
    this.agentPicker.replaceChildren(
      ...agents.map(agent => {
        const option = document.createElement('option');
        option.value = agent.name;
        option.textContent = agent.name;
        option.title = agent.description ?? '';
        return option;
      })
    );
  }

  private setList(next: ListState): void {
    if (next !== this.state) {
      this.state = next;
      this.render();
    }
  }

  private render(): void {
    const { status, error, sessions, hasMore } = this.state;
    this.statusNode.textContent =
      status === 'reconnecting' ? `Reconnecting… ${error ?? ''}`.trim() : status === 'loading' ? 'Loading…' : '';
    this.node.classList.toggle('nbsession-sidebar-reconnecting', status === 'reconnecting');
    const seen = new Set<string>();
    let previous: HTMLElement | null = null;
    for (const row of sessions) {
      seen.add(row.id);
      let view = this.rows.get(row.id);
      if (view === undefined) {
        view = new RowView(this, row.id);
        this.rows.set(row.id, view);
      }
      view.render(row);
      // Move a row only when it is out of place, so a focused row keeps its focus.
      const expected: Element | null = previous ? previous.nextElementSibling : this.list.firstElementChild;
      if (expected !== view.node) {
        this.list.insertBefore(view.node, expected);
      }
      previous = view.node;
    }
    for (const [id, view] of this.rows) {
      if (!seen.has(id)) {
        view.node.remove();
        this.rows.delete(id);
      }
    }
    this.empty.hidden = sessions.length > 0 || status === 'loading';
    this.loadMore.hidden = !hasMore;
    this.session?.renderRow(this.rowOf(this.session.id));
    this.renderBadge();
  }

  /** The tab's badge: how many sessions wait for an answer. */
  private renderBadge(): void {
    const waiting = waitingSessions(this.state, this.paneWaiting).size;
    for (const [id, view] of this.rows) {
      view.setWaiting(this.paneWaiting.has(id) || isWaiting(view.row));
    }
    this.title.className = waiting > 0 ? 'nbsession-waiting' : '';
    // Lumino writes each key as a `data-<key>` attribute. The shell keeps its own entries in
    // the dataset (the tab's `data-id`): keep them.
    const { [BADGE_KEY]: _, ...dataset } = this.title.dataset;
    this.title.dataset = waiting > 0 ? { ...dataset, [BADGE_KEY]: String(waiting) } : dataset;
    this.title.caption =
      waiting > 0
        ? `Agent sessions: ${waiting} waiting for your answer`
        : 'Agent sessions';
  }
}

/** One row of the list: open it, see whether it waits, star it. */
class RowView {
  readonly node = el('li', 'nbsession-sidebar-row');
  row: SessionSummary = { id: '', title: '', created_at: '', num_messages: 0, starred: false };
  private readonly openButton: HTMLButtonElement;
  private readonly titleNode = el('span', 'nbsession-sidebar-row-title');
  private readonly meta = el('span', 'nbsession-sidebar-row-meta');
  private readonly waitingNode = el('span', 'nbsession-sidebar-row-waiting', 'waiting');
  private readonly starButton: HTMLButtonElement;

  constructor(panel: SidebarPanel, id: string) {
    this.node.dataset.sessionId = id;
    this.openButton = button('', 'nbsession-sidebar-row-open', () => panel.open(id));
    this.openButton.append(this.titleNode, this.meta);
    this.starButton = button('☆', 'nbsession-sidebar-row-star', () => {
      panel.toggleStar(id).catch(error => {
        this.meta.textContent = `Star failed: ${messageOf(error)}`;
      });
    });
    this.waitingNode.hidden = true;
    this.node.append(this.openButton, this.waitingNode, this.starButton);
  }

  render(row: SessionSummary): void {
    if (JSON.stringify(row) === JSON.stringify(this.row)) {
      return;
    }
    this.row = row;
    const title = displayTitle(row);
    this.titleNode.textContent = title;
    this.openButton.title = `Open ${title}`;
    const when = new Date(row.created_at);
    const date = Number.isNaN(when.getTime()) ? '' : when.toLocaleString();
    this.meta.textContent = `${date} · ${row.num_messages} message${row.num_messages === 1 ? '' : 's'}`;
    this.starButton.textContent = row.starred ? '★' : '☆';
    this.starButton.setAttribute('aria-pressed', String(row.starred));
    this.starButton.setAttribute('aria-label', row.starred ? `Unstar ${title}` : `Star ${title}`);
    this.starButton.title = row.starred ? 'Unstar' : 'Star';
  }

  setWaiting(waiting: boolean): void {
    this.waitingNode.hidden = !waiting;
    this.node.classList.toggle('nbsession-sidebar-row-is-waiting', waiting);
  }
}

/** The open session: its actions, the live pane, and a box to send the next message. */
class OpenSession {
  readonly node = el('section', 'nbsession-sidebar-session');
  private readonly titleNode = el('h3', 'nbsession-sidebar-session-title');
  private readonly starButton: HTMLButtonElement;
  private readonly actionError = errorLine();
  private readonly input = document.createElement('textarea');
  private readonly sendButton: HTMLButtonElement;
  private readonly sendError = errorLine();
  private readonly picker: ModelPicker;
  private readonly backButton: HTMLButtonElement;
  private readonly mounted: ReturnType<typeof mountDirect>;
  private readonly follow: FollowBottom;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly panel: SidebarPanel,
    readonly id: string,
    row: SessionSummary | undefined
  ) {
    const bar = el('div', 'nbsession-sidebar-session-bar');
    this.backButton = button('‹ Sessions', 'nbsession-sidebar-back', () => panel.closeSession());
    this.backButton.setAttribute('aria-label', 'Back to the session list');
    this.starButton = button('☆', 'nbsession-sidebar-star', () => this.act(() => panel.toggleStar(id)));
    const actions = el('div', 'nbsession-sidebar-actions');
    actions.append(
      this.starButton,
      button('Rename', 'nbsession-sidebar-rename', () => this.act(() => panel.rename(id))),
      button('Export', 'nbsession-sidebar-export', () => this.act(() => panel.exportNotebook(id))),
      button('Delete', 'nbsession-sidebar-delete', () => this.act(() => panel.remove(id)))
    );
    bar.append(this.backButton, actions);

    const paneHost = el('div', 'nbsession-sidebar-pane');
    this.mounted = panel.mount(paneHost, id);
    // The entries scroll inside the panel, below the actions and above the message box.
    this.follow = new FollowBottom(
      paneHost.querySelector<HTMLElement>('.nbsession-pane-entries') ?? paneHost
    );
    this.picker = new ModelPicker(() => panel.models(id));
    let active = false;
    this.unsubscribe = this.mounted.pane.subscribe(state => {
      panel.paneChanged(id, state);
      // A turn that ended may have set the model, or given the session its runtime.
      const now = ACTIVE.has(state.status);
      if (active && !now) {
        void this.picker.refresh();
      }
      active = now;
    });
    void this.picker.refresh();

    const composer = el('form', 'nbsession-sidebar-composer');
    this.input.rows = 3;
    this.input.placeholder = 'Message the agent (Ctrl+Enter sends)';
    this.input.setAttribute('aria-label', 'Message');
    this.input.addEventListener('keydown', event => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        void this.send();
      }
    });
    this.sendButton = button('Send', 'nbsession-sidebar-send', () => void this.send());
    composer.addEventListener('submit', event => event.preventDefault());
    const sendRow = el('div', 'nbsession-sidebar-send-row');
    sendRow.append(this.picker.node, this.sendButton);
    composer.append(this.input, sendRow);

    this.node.append(bar, this.titleNode, this.actionError, paneHost, composer, this.sendError);
    this.renderRow(row);
  }

  focus(): void {
    this.backButton.focus();
  }

  renderRow(row: SessionSummary | undefined): void {
    const paneTitle = this.mounted.pane.state.title;
    this.titleNode.textContent = row ? displayTitle(row) : paneTitle || this.id;
    const starred = row?.starred ?? false;
    this.starButton.textContent = starred ? '★ Starred' : '☆ Star';
    this.starButton.setAttribute('aria-pressed', String(starred));
  }

  dispose(): void {
    this.unsubscribe();
    this.follow.dispose();
    this.mounted.dispose();
    this.node.remove();
  }

  /** Run one of the session's actions; its failure is shown under the action bar. */
  private act(action: () => Promise<void>): void {
    this.actionError.textContent = '';
    action().catch(error => {
      this.actionError.textContent = messageOf(error);
    });
  }

  private async send(): Promise<void> {
    const prompt = this.input.value.trim();
    if (!prompt) {
      return;
    }
    this.sendError.textContent = '';
    this.sendButton.disabled = true;
    try {
      await this.panel.run(this.id, prompt, this.picker.next);
      this.input.value = '';
    } catch (error) {
      this.sendError.textContent = messageOf(error);
    } finally {
      this.sendButton.disabled = false;
    }
  }
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

function button(label: string, className: string, onClick: () => void): HTMLButtonElement {
  const node = el('button', `jp-Button nbsession-sidebar-button ${className}`, label);
  node.type = 'button';
  node.addEventListener('click', onClick);
  return node;
}

function errorLine(): HTMLElement {
  const node = el('div', 'nbsession-sidebar-error');
  node.setAttribute('role', 'alert');
  return node;
}
