/**
 * The pane's DOM: it reads a `PaneState` and changes only what changed.
 *
 * Entries keep their nodes across renders (keyed by `entry.key`); a growing answer appends
 * finished Markdown blocks and re-renders only its unfinished tail, reasoning and tool output
 * append to text nodes. The approval prompt and the form are rebuilt only when a new one is
 * pending, so what the user is typing survives the renders around it.
 */
import { ApiError, type PaneActions, type ResumeBody } from './actions';
import { BlockSplitter, renderMarkdown } from './markdown';
import { elapsedMs } from './reducer';
import { formFields, type FormField, type RawValue, validate } from './schemaForm';
import type {
  Entry,
  NoticeEntry,
  PaneState,
  PendingApproval,
  PendingElicitation,
  Plan,
  TextEntry,
  Todo,
  ToolEntry,
  TurnStatus,
  UserEntry
} from './types';

const STATUS_LABELS: Record<TurnStatus, string> = {
  idle: 'Idle',
  running: 'Running',
  waiting_approval: 'Waiting for approval',
  waiting_input: 'Waiting for your answer',
  done: 'Done',
  error: 'Error',
  cancelled: 'Cancelled'
};

const TOOL_STATE_LABELS: Record<ToolEntry['state'], string> = {
  streaming: 'preparing',
  called: 'called',
  pending: 'needs approval',
  running: 'running',
  done: 'done',
  failed: 'error'
};

/** How a todo's status reads, with the mark before it; unknown statuses show as given. */
const TODO_MARKS: Record<string, string> = {
  pending: '○',
  'in-progress': '◐',
  completed: '●'
};

const DECISION_LABELS: Record<string, string> = {
  approve: 'approved',
  'approve-session': 'approved for the session',
  'approve-tool': 'tool always allowed',
  reject: 'rejected'
};

export class PaneView {
  readonly node: HTMLElement;
  private readonly header: HTMLElement;
  private readonly titleNode: HTMLElement;
  private readonly list: HTMLElement;
  private readonly prompts: HTMLElement;
  private readonly statusNode: HTMLElement;
  private readonly footer: HTMLElement;
  private readonly noticeNode: HTMLElement;
  private readonly stopButton: HTMLButtonElement;
  private readonly planView = new PlanView();
  private readonly todoView = new TodoView();
  private entryViews = new Map<number, EntryView>();
  private generation = -1;
  private approval: ApprovalPrompt | null = null;
  private form: ElicitationForm | null = null;

  constructor(private readonly actions: PaneActions) {
    this.node = el('div', 'nbsession-pane');
    this.header = el('div', 'nbsession-pane-header');
    this.titleNode = el('span', 'nbsession-pane-title');
    this.statusNode = el('span', 'nbsession-pane-status');
    this.statusNode.setAttribute('role', 'status');
    this.stopButton = button('Stop', 'nbsession-pane-stop', () => this.stop());
    this.header.append(this.titleNode, this.statusNode, this.stopButton);
    this.list = el('div', 'nbsession-pane-entries');
    this.prompts = el('div', 'nbsession-pane-prompts');
    this.noticeNode = el('div', 'nbsession-pane-notice');
    this.footer = el('div', 'nbsession-pane-footer');
    this.node.append(
      this.header,
      this.planView.node,
      this.todoView.node,
      this.list,
      this.prompts,
      this.noticeNode,
      this.footer
    );
  }

  /** Bring the DOM in line with `state`; `now` (ms since the epoch) drives the elapsed time. */
  render(state: PaneState, now: number): void {
    if (state.generation !== this.generation) {
      this.generation = state.generation;
      this.entryViews.clear();
      this.list.replaceChildren();
    }
    for (const entry of state.entries) {
      let view = this.entryViews.get(entry.key);
      if (!view) {
        view = createEntryView(entry);
        this.entryViews.set(entry.key, view);
        this.list.appendChild(view.node);
      }
      view.update(entry);
    }
    this.planView.update(state.plan);
    this.todoView.update(state.todos);
    this.renderPrompts(state);
    this.titleNode.textContent = state.title || 'Agent session';
    this.statusNode.textContent = statusText(state, now);
    this.statusNode.dataset.status = state.status;
    this.node.dataset.status = state.status;
    this.node.dataset.connection = state.connection;
    const active = ['running', 'waiting_approval', 'waiting_input'].includes(state.status);
    this.stopButton.hidden = !active || state.connection === 'closed';
    this.noticeNode.textContent = state.notice ?? '';
    this.noticeNode.hidden = !state.notice;
    this.footer.textContent = usageText(state);
  }

  private renderPrompts(state: PaneState): void {
    if (!samePrompt(this.approval?.approval ?? null, state.approval)) {
      this.approval?.node.remove();
      this.approval = state.approval ? new ApprovalPrompt(state.approval, this.actions) : null;
      if (this.approval) {
        this.prompts.appendChild(this.approval.node);
      }
    }
    if ((this.form?.elicitation.id ?? null) !== (state.elicitation?.id ?? null)) {
      this.form?.node.remove();
      this.form = state.elicitation ? new ElicitationForm(state.elicitation, this.actions) : null;
      if (this.form) {
        this.prompts.appendChild(this.form.node);
      }
    }
  }

  private async stop(): Promise<void> {
    this.stopButton.disabled = true;
    try {
      await this.actions.cancel();
    } catch (error) {
      this.noticeNode.hidden = false;
      this.noticeNode.textContent = describe(error);
    } finally {
      this.stopButton.disabled = false;
    }
  }
}

interface EntryView {
  readonly node: HTMLElement;
  update(entry: Entry): void;
}

function createEntryView(entry: Entry): EntryView {
  switch (entry.kind) {
    case 'user':
      return new UserView(entry);
    case 'text':
      return new AnswerView();
    case 'reasoning':
      return new ReasoningView();
    case 'tool':
      return new ToolView();
    case 'warning':
    case 'error':
      return new NoticeView(entry);
  }
}

class UserView implements EntryView {
  readonly node: HTMLElement;

  constructor(entry: UserEntry) {
    this.node = el('div', 'nbsession-pane-user');
    this.node.textContent = entry.text;
  }

  update(): void {
    // a user message never changes
  }
}

/** The answer as Markdown: finished blocks rendered once, the tail re-rendered per frame. */
class AnswerView implements EntryView {
  readonly node = el('div', 'nbsession-pane-answer');
  private readonly tail = el('div', 'nbsession-pane-tail');
  private readonly splitter = new BlockSplitter();
  private seen = -1;

  constructor() {
    this.node.appendChild(this.tail);
  }

  update(entry: Entry): void {
    const { text } = entry as TextEntry;
    if (text.length === this.seen) {
      return;
    }
    this.seen = text.length;
    const { blocks, tail } = this.splitter.advance(text);
    for (const block of blocks) {
      const done = el('div', 'nbsession-pane-block');
      done.innerHTML = renderMarkdown(block);
      this.node.insertBefore(done, this.tail);
    }
    this.tail.innerHTML = tail ? renderMarkdown(tail) : '';
  }
}

/** Reasoning, collapsed by default; deltas append to one text node. */
class ReasoningView implements EntryView {
  readonly node = el('details', 'nbsession-pane-reasoning');
  private readonly text = document.createTextNode('');

  constructor() {
    const summary = el('summary');
    summary.textContent = 'Reasoning';
    const body = el('div', 'nbsession-pane-reasoning-text');
    body.appendChild(this.text);
    this.node.append(summary, body);
  }

  update(entry: Entry): void {
    appendTo(this.text, (entry as TextEntry).text);
  }
}

/** A tool call as a collapsible card: name and state, arguments, streamed output, result. */
class ToolView implements EntryView {
  readonly node = el('details', 'nbsession-pane-tool') as HTMLDetailsElement;
  private readonly name = el('span', 'nbsession-pane-tool-name');
  private readonly badge = el('span', 'nbsession-pane-tool-state');
  private readonly args = el('pre', 'nbsession-pane-tool-args');
  private readonly output = document.createTextNode('');
  private readonly outputNode = el('pre', 'nbsession-pane-tool-output');
  private readonly result = el('pre', 'nbsession-pane-tool-result');
  private last: ToolEntry | null = null;

  constructor() {
    const summary = el('summary');
    summary.append(this.name, this.badge);
    this.outputNode.appendChild(this.output);
    this.outputNode.hidden = true;
    this.result.hidden = true;
    this.node.append(summary, this.args, this.outputNode, this.result);
  }

  update(entry: Entry): void {
    const card = entry as ToolEntry;
    if (card === this.last) {
      return;
    }
    const previous = this.last;
    this.last = card;
    this.name.textContent = card.name;
    const decision = card.decision ? DECISION_LABELS[card.decision] ?? card.decision : '';
    this.badge.textContent = decision
      ? `${TOOL_STATE_LABELS[card.state]} · ${decision}`
      : TOOL_STATE_LABELS[card.state];
    this.node.dataset.state = card.state;
    if (card.arguments !== previous?.arguments) {
      this.args.textContent = prettyJson(card.arguments);
    }
    if (card.output) {
      appendTo(this.output, card.output);
    }
    // The output streamed while the call ran, until its result holds it all: then the
    // result alone (a result that differs, cut or failed, shows below the stream).
    this.outputNode.hidden =
      !card.output || (card.result !== null && card.result.includes(card.output.trim()));
    if (card.result !== null && card.result !== previous?.result) {
      this.result.hidden = false;
      this.result.textContent = card.result;
      this.result.classList.toggle('nbsession-pane-error', card.isError);
    }
  }
}

/**
 * The session's latest plan as Markdown, above the entries, open until the user folds it;
 * a newer plan replaces the text in place and keeps that choice.
 */
class PlanView {
  readonly node = el('details', 'nbsession-pane-plan') as HTMLDetailsElement;
  private readonly label = el('span', 'nbsession-pane-plan-label');
  private readonly body = el('div', 'nbsession-pane-plan-body');
  private last: Plan | null = null;

  constructor() {
    const summary = el('summary');
    summary.appendChild(this.label);
    this.node.open = true;
    this.node.hidden = true;
    this.node.setAttribute('aria-label', 'Plan');
    this.node.append(summary, this.body);
  }

  update(plan: Plan | null): void {
    if (plan === this.last) {
      return;
    }
    this.last = plan;
    this.node.hidden = plan === null;
    if (plan) {
      // The file's name; its whole path on the server on hover.
      const name = plan.path.split(/[\\/]/).pop();
      this.label.textContent = name ? `Plan · ${name}` : 'Plan';
      this.label.title = plan.path;
      this.body.innerHTML = renderMarkdown(plan.content);
    }
  }
}

/** The latest todo list as a checklist with each item's status, replaced in place. */
class TodoView {
  readonly node = el('details', 'nbsession-pane-todos') as HTMLDetailsElement;
  private readonly label = el('span', 'nbsession-pane-todos-label');
  private readonly items = el('ul', 'nbsession-pane-todo-list');
  private last: readonly Todo[] | null = null;

  constructor() {
    const summary = el('summary');
    summary.appendChild(this.label);
    this.node.open = true;
    this.node.hidden = true;
    this.node.setAttribute('aria-label', 'Todo list');
    this.node.append(summary, this.items);
  }

  update(todos: readonly Todo[] | null): void {
    if (todos === this.last) {
      return;
    }
    this.last = todos;
    this.node.hidden = todos === null;
    if (!todos) {
      return;
    }
    const done = todos.filter(todo => todo.status === 'completed').length;
    this.label.textContent = `Todos · ${done}/${todos.length} done`;
    this.items.replaceChildren(
      ...todos.map(todo => {
        const item = el('li', 'nbsession-pane-todo');
        item.dataset.status = todo.status;
        const mark = el('span', 'nbsession-pane-todo-mark');
        mark.setAttribute('aria-hidden', 'true');
        mark.textContent = TODO_MARKS[todo.status] ?? '○';
        const text = el('span', 'nbsession-pane-todo-text');
        text.textContent = todo.description;
        const status = el('span', 'nbsession-pane-todo-status');
        status.textContent = todo.status;
        item.append(mark, text, status);
        return item;
      })
    );
  }
}

class NoticeView implements EntryView {
  readonly node: HTMLElement;

  constructor(entry: NoticeEntry) {
    this.node = el('div', `nbsession-pane-${entry.kind}`);
    this.node.setAttribute('role', 'alert');
    this.node.textContent = entry.text;
  }

  update(): void {
    // notices never change
  }
}

/** `Approve`, `Approve for session`, `Always allow this tool`, `Reject` with a reason. */
class ApprovalPrompt {
  readonly node = el('div', 'nbsession-pane-approval');
  private readonly error = el('div', 'nbsession-pane-prompt-error');
  private readonly buttons: HTMLButtonElement[] = [];

  constructor(
    readonly approval: PendingApproval,
    private readonly actions: PaneActions
  ) {
    this.node.setAttribute('role', 'group');
    const question = el('div', 'nbsession-pane-question');
    const details: HTMLElement[] = [];
    if (approval.kind === 'max_iterations') {
      question.textContent =
        `The agent reached its limit of ${approval.maxIterations ?? '?'} model calls. ` +
        'Approve to let it go on.';
      this.node.setAttribute('aria-label', 'Continue after the iteration limit?');
    } else {
      question.textContent = `Run ${approval.toolName}?`;
      this.node.setAttribute('aria-label', `Approve the ${approval.toolName} tool call?`);
      const args = el('pre', 'nbsession-pane-tool-args');
      args.textContent = prettyJson(approval.arguments);
      if (approval.diff) {
        // A file edit: the change is what to judge; the raw arguments stay one click away.
        const folded = el('details', 'nbsession-pane-prompt-args');
        const summary = el('summary');
        summary.textContent = 'Arguments';
        folded.append(summary, args);
        details.push(renderDiff(approval.diff), folded);
      } else if (args.textContent) {
        details.push(args);
      }
    }
    const reason = el('input', 'nbsession-pane-reason') as HTMLInputElement;
    reason.type = 'text';
    reason.placeholder = 'Reason (optional)';
    reason.setAttribute('aria-label', 'Reason for rejecting');
    const row = el('div', 'nbsession-pane-buttons');
    const add = (label: string, body: () => ResumeBody, cls = '') => {
      const b = button(label, cls, () => this.answer(body()));
      this.buttons.push(b);
      row.appendChild(b);
    };
    add('Approve', () => ({ confirmation: 'approve' }), 'nbsession-pane-primary');
    if (approval.kind === 'tool') {
      add('Approve for session', () => ({ confirmation: 'approve-session' }));
      add('Always allow this tool', () => ({
        confirmation: 'approve-tool',
        tool_name: approval.toolName
      }));
    }
    add('Reject', () =>
      reason.value.trim()
        ? { confirmation: 'reject', reason: reason.value.trim() }
        : { confirmation: 'reject' }
    );
    reason.addEventListener('keydown', event => {
      if (event.key === 'Enter') {
        this.buttons[this.buttons.length - 1].click();
      }
    });
    this.node.append(question, ...details, row, reason, this.error);
  }

  private async answer(body: ResumeBody): Promise<void> {
    this.buttons.forEach(b => (b.disabled = true));
    this.error.textContent = '';
    try {
      await this.actions.resume(body);
    } catch (error) {
      this.error.textContent =
        error instanceof ApiError && error.code === 'nothing_pending'
          ? 'Already answered elsewhere; nothing was changed.'
          : describe(error);
    } finally {
      this.buttons.forEach(b => (b.disabled = false));
    }
  }
}

/** A form generated from the elicitation's schema: `Submit`, `Decline`, `Cancel`. */
class ElicitationForm {
  readonly node = el('form', 'nbsession-pane-form') as HTMLFormElement;
  private readonly fields: FormField[];
  private readonly inputs = new Map<string, HTMLInputElement | HTMLSelectElement>();
  private readonly errors = new Map<string, HTMLElement>();
  private readonly error = el('div', 'nbsession-pane-prompt-error');
  private readonly buttons: HTMLButtonElement[] = [];

  constructor(
    readonly elicitation: PendingElicitation,
    private readonly actions: PaneActions
  ) {
    const { fields, problems } = formFields(elicitation.schema);
    this.fields = fields;
    const question = el('div', 'nbsession-pane-question');
    question.textContent = elicitation.message || 'The agent asks for input.';
    this.node.appendChild(question);
    for (const field of fields) {
      this.node.appendChild(this.fieldRow(field));
    }
    if (problems.length) {
      const list = el('div', 'nbsession-pane-prompt-error');
      list.textContent = `This form cannot show every field: ${problems.join('; ')}.`;
      this.node.appendChild(list);
    }
    const row = el('div', 'nbsession-pane-buttons');
    this.buttons.push(
      button('Submit', 'nbsession-pane-primary', () => this.submit()),
      button('Decline', '', () => this.send({ action: 'decline' })),
      button('Cancel', '', () => this.send({ action: 'cancel' }))
    );
    row.append(...this.buttons);
    this.node.append(row, this.error);
    // Enter in a field submits, as in any form; the page never navigates.
    this.node.addEventListener('submit', event => event.preventDefault());
    this.node.addEventListener('keydown', event => {
      if (event.key === 'Enter' && event.target instanceof HTMLInputElement) {
        event.preventDefault();
        this.submit();
      }
    });
  }

  private fieldRow(field: FormField): HTMLElement {
    const id = `nbsession-${this.elicitation.id}-${field.name}`.replace(/[^\w-]/g, '_');
    const row = el('div', 'nbsession-pane-field');
    const label = el('label') as HTMLLabelElement;
    label.htmlFor = id;
    label.textContent = field.required ? `${field.label} *` : field.label;
    let input: HTMLInputElement | HTMLSelectElement;
    if (field.kind === 'enum') {
      const select = el('select') as HTMLSelectElement;
      select.add(new Option(field.required ? 'Choose…' : '—', ''));
      field.optionLabels.forEach((text, i) => select.add(new Option(text, String(i))));
      const index = field.options.indexOf(field.default);
      select.value = index >= 0 ? String(index) : '';
      input = select;
    } else {
      const box = el('input') as HTMLInputElement;
      box.type = field.kind === 'boolean' ? 'checkbox' : field.kind === 'string' ? 'text' : 'number';
      if (field.kind === 'integer') {
        box.step = '1';
      }
      if (field.kind === 'boolean') {
        box.checked = field.default === true;
      } else if (field.default !== undefined && field.default !== null) {
        box.value = String(field.default);
      }
      input = box;
    }
    input.id = id;
    input.name = field.name;
    if (field.required) {
      input.setAttribute('aria-required', 'true');
    }
    const error = el('div', 'nbsession-pane-field-error');
    error.id = `${id}-error`;
    input.setAttribute('aria-describedby', error.id);
    this.inputs.set(field.name, input);
    this.errors.set(field.name, error);
    row.append(label, input);
    if (field.description) {
      const help = el('div', 'nbsession-pane-help');
      help.textContent = field.description;
      row.appendChild(help);
    }
    row.appendChild(error);
    return row;
  }

  private submit(): void {
    const raw: Record<string, RawValue> = {};
    for (const [name, input] of this.inputs) {
      raw[name] =
        input instanceof HTMLInputElement && input.type === 'checkbox' ? input.checked : input.value;
    }
    const { content, errors } = validate(this.fields, raw);
    for (const [name, node] of this.errors) {
      node.textContent = errors[name] ?? '';
      this.inputs.get(name)?.setAttribute('aria-invalid', String(Boolean(errors[name])));
    }
    if (Object.keys(errors).length === 0) {
      void this.send({ action: 'accept', content });
    }
  }

  private async send(body: { action: 'accept' | 'decline' | 'cancel'; content?: object }) {
    this.buttons.forEach(b => (b.disabled = true));
    this.error.textContent = '';
    try {
      await this.actions.elicitation({
        ...body,
        content: body.content as Record<string, unknown> | undefined,
        elicitation_id: this.elicitation.id || undefined
      });
    } catch (error) {
      // A schema error from the server (400) is shown here and the form stays.
      this.error.textContent =
        error instanceof ApiError && error.code === 'nothing_pending'
          ? 'Already answered elsewhere; nothing was changed.'
          : describe(error);
    } finally {
      this.buttons.forEach(b => (b.disabled = false));
    }
  }
}

/**
 * A unified diff as a block whose lines are marked `file` (the `---`/`+++` header), `hunk`
 * (`@@`), `add`, `del` or `context`, so removed and added lines read apart at a glance.
 * Text only: nothing in the diff is interpreted as HTML.
 */
export function renderDiff(diff: string): HTMLElement {
  const block = el('pre', 'nbsession-pane-diff');
  block.setAttribute('aria-label', 'Proposed change');
  let inHunk = false;
  for (const line of diff.replace(/\n$/, '').split('\n')) {
    let kind: string;
    if (line.startsWith('@@')) {
      kind = 'hunk';
      inHunk = true;
    } else if (!inHunk) {
      kind = 'file'; // header lines come before the first hunk
    } else if (line.startsWith('+')) {
      kind = 'add';
    } else if (line.startsWith('-')) {
      kind = 'del';
    } else {
      kind = 'context';
    }
    const node = el('span', `nbsession-pane-diff-${kind}`);
    node.textContent = `${line}\n`;
    block.appendChild(node);
  }
  return block;
}

export function statusText(state: PaneState, now: number): string {
  const parts = [STATUS_LABELS[state.status]];
  const elapsed = elapsedMs(state, now);
  if (elapsed !== null && state.status !== 'idle') {
    parts.push(formatDuration(elapsed));
  }
  if (state.connection === 'reconnecting') {
    parts.push('reconnecting…');
  } else if (state.connection === 'resyncing') {
    parts.push('reloading…');
  } else if (state.exited) {
    parts.push(`session closed (${state.exited})`);
  }
  return parts.join(' · ');
}

export function usageText(state: PaneState): string {
  const usage = state.usage;
  if (!usage) {
    return '';
  }
  const parts = [
    `${usage.inputTokens.toLocaleString('en')} in / ${usage.outputTokens.toLocaleString('en')} out tokens`
  ];
  if (usage.contextLimit > 0) {
    parts.push(`context ${Math.round((100 * usage.contextLength) / usage.contextLimit)}%`);
  }
  parts.push(`$${usage.cost.toFixed(usage.cost > 0 && usage.cost < 0.01 ? 4 : 2)}`);
  return parts.join(' · ');
}

export function formatDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) {
    return `${(ms / 1000).toFixed(1)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  return `${minutes}:${String(seconds % 60).padStart(2, '0')}`;
}

function samePrompt(a: PendingApproval | null, b: PendingApproval | null): boolean {
  return a === b || (a !== null && b !== null && a.kind === b.kind && a.callId === b.callId);
}

/** Append what `text` has beyond the node's current content (streams only grow). */
function appendTo(node: Text, text: string): void {
  if (text.length > node.length) {
    node.appendData(text.slice(node.length));
  } else if (text.length < node.length) {
    node.data = text;
  }
}

function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function el(tag: string, className = ''): HTMLElement {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  return node;
}

function button(label: string, className: string, onClick: () => unknown): HTMLButtonElement {
  const node = el('button', className) as HTMLButtonElement;
  node.type = 'button';
  node.textContent = label;
  node.addEventListener('click', () => void onClick());
  return node;
}
