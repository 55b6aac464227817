/**
 * The pane's heart: a pure reducer from the session's events to what the pane shows.
 *
 * `reduce(state, event, seq)` never mutates `state`. Text deltas append to the last entry's
 * string (engines keep string concatenation linear), and only the short `entries` list is
 * copied per event, so a 10,000-delta turn costs time proportional to its text.
 *
 * Sequence numbers make delivery idempotent: an event at or below `lastSeq` is ignored, so a
 * reconnect that overlaps, or a pane fed by two transports, never duplicates text. Events at
 * or below `snapshotSeq` are already part of the snapshot's messages; replaying them only
 * restores what a snapshot lacks (a pending approval or form, the turn's status and timing).
 *
 * `partial_tool_call` carries only the new bytes of a call's arguments (docker-agent's wire):
 * a streaming card appends them; the full `tool_call` (or confirmation) then replaces them.
 * A pane that joins mid-call starts from the snapshot's `partial_tool_calls`.
 */
import type {
  Entry,
  LocalEvent,
  PaneState,
  PendingApproval,
  Plan,
  Snapshot,
  TextEntry,
  Todo,
  ToolEntry,
  UnsavedCall,
  UnsavedText,
  TurnStatus,
  Usage,
  WireEvent,
  WireMessage,
  WireToolCall
} from './types';

export function initialState(sessionId = ''): PaneState {
  return {
    sessionId,
    title: '',
    agent: '',
    model: '',
    status: 'idle',
    stopReason: '',
    startedAt: null,
    endedAt: null,
    entries: [],
    nextKey: 1,
    approval: null,
    elicitation: null,
    usage: null,
    plan: null,
    todos: null,
    lastSeq: 0,
    snapshotSeq: 0,
    freshSnapshot: false,
    unsaved: [],
    snapshotTail: null,
    connection: 'connecting',
    needsSnapshot: false,
    exited: null,
    notice: null,
    generation: 0
  };
}

/** Apply one event (a server event with its SSE id, or one of the pane's local events). */
export function reduce(
  state: PaneState,
  event: WireEvent | LocalEvent,
  seq: number | null = null
): PaneState {
  switch (event.type) {
    case 'pane.snapshot':
      return fromSnapshot(state, (event as LocalEvent & { type: 'pane.snapshot' }).snapshot);
    case 'pane.connection': {
      const { status } = event as LocalEvent & { type: 'pane.connection' };
      return state.connection === status ? state : { ...state, connection: status };
    }
    case 'pane.notice':
      return { ...state, notice: (event as LocalEvent & { type: 'pane.notice' }).message };
    case 'gap':
      // Right after a snapshot the events before the resume point are in it already.
      return state.freshSnapshot
        ? state
        : { ...state, needsSnapshot: true, connection: 'resyncing' };
  }
  if (seq !== null && seq <= state.lastSeq) {
    return state;
  }
  if (state.needsSnapshot && seq !== null) {
    return state; // events after a gap wait for the snapshot that re-bases them
  }
  const quiet = seq !== null && seq <= state.snapshotSeq;
  let next = apply(quiet ? state : showUnsaved(state), event as WireEvent, quiet);
  if (seq === null) {
    return next;
  }
  if (seq === state.snapshotSeq) {
    next = showUnsaved(next); // the replay reached the snapshot's point
  }
  return { ...next, lastSeq: seq, freshSnapshot: false };
}

/** Apply a whole recorded stream (`{seq, event}` pairs) to a state. */
export function reduceAll(
  state: PaneState,
  envelopes: Iterable<{ seq: number | null; event: WireEvent | LocalEvent }>
): PaneState {
  let current = state;
  for (const { seq, event } of envelopes) {
    current = reduce(current, event, seq);
  }
  return current;
}

/** Elapsed milliseconds of the current or last turn, as the status line shows it. */
export function elapsedMs(state: PaneState, now: number): number | null {
  if (state.startedAt === null) {
    return null;
  }
  return Math.max(0, (state.endedAt ?? now) - state.startedAt);
}

function apply(state: PaneState, event: WireEvent, quiet: boolean): PaneState {
  switch (event.type) {
    case 'user_message':
      return quiet ? state : push(state, { kind: 'user', key: 0, text: str(event.message) });
    case 'stream_started':
      return {
        ...state,
        status: 'running',
        stopReason: '',
        startedAt: time(event),
        endedAt: null,
        notice: null,
        exited: null
      };
    case 'agent_choice':
    case 'agent_choice_reasoning':
      if (quiet) {
        return keepUnsaved(
          state,
          event.type === 'agent_choice' ? 'text' : 'reasoning',
          str(event.agent_name),
          str(event.content)
        );
      }
      return appendText(
        state,
        event.type === 'agent_choice' ? 'text' : 'reasoning',
        str(event.agent_name),
        str(event.content)
      );
    case 'partial_tool_call':
      return quiet ? keepUnsavedCall(state, event) : partialToolCall(state, event);
    case 'tool_call':
      return quiet ? state : toolEvent(state, event, 'called');
    case 'tool_call_confirmation': {
      const call = toolCall(event);
      if (!call) {
        return state;
      }
      const approval: PendingApproval = {
        kind: 'tool',
        callId: call.id,
        toolName: call.function.name,
        arguments: call.function.arguments ?? '',
        diff: str(event.diff),
        maxIterations: null
      };
      const next = toolEvent(state, event, 'pending', quiet);
      return { ...next, approval, status: 'waiting_approval', notice: null };
    }
    case 'max_iterations_reached': {
      const max = typeof event.max_iterations === 'number' ? event.max_iterations : null;
      const approval: PendingApproval = {
        kind: 'max_iterations',
        callId: '',
        toolName: '',
        arguments: '',
        diff: '',
        maxIterations: max
      };
      return { ...state, approval, status: 'waiting_approval', notice: null };
    }
    case 'authorization_event':
      return answered(state, str(event.confirmation));
    case 'tool_call_output':
      return quiet ? state : toolOutput(state, event);
    case 'tool_call_response':
      return toolResponse(state, event, quiet);
    case 'elicitation_request':
      return {
        ...state,
        elicitation: {
          id: str(event.elicitation_id),
          message: str(event.message),
          mode: str(event.mode) || 'form',
          schema: isObject(event.schema) ? event.schema : {}
        },
        status: 'waiting_input',
        notice: null
      };
    case 'token_usage': {
      // Announces the stored answer of a model call: text streamed before it is saved.
      const saved = quiet ? { ...state, unsaved: [] } : state;
      return isObject(event.usage) ? { ...saved, usage: usage(event.usage) } : saved;
    }
    case 'plan_updated':
      // Applied in a replay too: a snapshot holds the plan only through its write_plan call.
      return {
        ...state,
        plan: { content: str(event.content), path: str(event.path), agent: str(event.agent_name) }
      };
    case 'session_title':
      return { ...state, title: str(event.title) };
    case 'agent_info':
      return { ...state, agent: str(event.agent_name) || state.agent, model: str(event.model) };
    case 'warning':
      return quiet ? state : push(state, { kind: 'warning', key: 0, text: str(event.message) });
    case 'error':
      return quiet
        ? state
        : push(state, { kind: 'error', key: 0, text: str(event.error) || str(event.message) });
    case 'stream_stopped':
      return {
        ...state,
        unsaved: [], // a cancelled turn stores what it streamed; a failed one never will
        status: stopStatus(str(event.reason), state),
        stopReason: str(event.reason),
        endedAt: time(event),
        approval: null,
        elicitation: null,
        entries: settleTools(state.entries)
      };
    case 'session_exited':
      return {
        ...state,
        exited: str(event.reason) || 'session ended',
        connection: 'closed',
        approval: null,
        elicitation: null
      };
    default:
      return state; // unknown types are ignorable (SPEC 4)
  }
}

/**
 * Rebuild the pane from `/snapshot`: stored messages become entries; live state is kept.
 * The plan comes from the last stored `write_plan` call that succeeded, or stays as it was;
 * the todo list, which stored messages do not carry, stays as it was for the same session.
 */
export function fromSnapshot(state: PaneState, snapshot: Snapshot): PaneState {
  const sameSession = !snapshot.id || snapshot.id === state.sessionId;
  let next: PaneState = {
    ...initialState(snapshot.id || state.sessionId),
    connection: state.connection === 'resyncing' ? 'reconnecting' : state.connection,
    title: snapshot.title ?? state.title,
    agent: snapshot.agent ?? state.agent,
    model: state.model,
    status: snapshot.streaming ? 'running' : 'idle',
    startedAt: snapshot.streaming ? state.startedAt : null,
    usage: {
      ...(state.usage ?? { contextLength: 0, contextLimit: 0 }),
      inputTokens: snapshot.input_tokens ?? 0,
      outputTokens: snapshot.output_tokens ?? 0,
      cost: snapshot.cost ?? 0
    },
    plan: sameSession ? state.plan : null,
    todos: sameSession ? state.todos : null,
    snapshotSeq: snapshot.last_event_seq,
    freshSnapshot: true,
    generation: state.generation + 1
  };
  const messages = snapshot.messages ?? [];
  for (const message of messages) {
    next = addMessage(next, message);
  }
  const last = messages[messages.length - 1]?.message;
  if (last?.role === 'assistant') {
    next = {
      ...next,
      snapshotTail: { text: last.content ?? '', reasoning: last.reasoning_content ?? '' }
    };
  }
  // Calls streaming at the snapshot's point: shown with the replay's unsaved text.
  for (const partial of snapshot.partial_tool_calls ?? []) {
    const call = toolCall(partial);
    if (call && findTool(next.entries, call.id) < 0) {
      const agent = str(partial.agent_name);
      const seed: UnsavedCall = { kind: 'tool', agent, call, seeded: true };
      next = { ...next, unsaved: [...next.unsaved, seed] };
    }
  }
  // A turn waiting for a person: its prompt, even when /events no longer replays it.
  if (isObject(snapshot.pending) && typeof snapshot.pending.type === 'string') {
    next = apply(next, snapshot.pending as WireEvent, true);
  }
  return next;
}

/** Hold a delta replayed from before the snapshot: its message may not be stored yet. */
function keepUnsaved(
  state: PaneState,
  kind: TextEntry['kind'],
  agent: string,
  content: string
): PaneState {
  const unsaved = state.unsaved.slice();
  const last = unsaved[unsaved.length - 1];
  if (last && last.kind === kind && last.agent === agent) {
    unsaved[unsaved.length - 1] = { ...last, text: last.text + content };
  } else {
    unsaved.push({ kind, agent, text: content });
  }
  return { ...state, unsaved };
}

/** Hold an arguments piece replayed from before the snapshot (a seeded call has it). */
function keepUnsavedCall(state: PaneState, event: WireEvent): PaneState {
  const call = toolCall(event);
  if (!call) {
    return state;
  }
  const piece = call.function.arguments ?? '';
  const index = state.unsaved.findIndex(part => part.kind === 'tool' && part.call.id === call.id);
  const unsaved = state.unsaved.slice();
  if (index < 0) {
    unsaved.push({ kind: 'tool', agent: str(event.agent_name), call, seeded: false });
    return { ...state, unsaved };
  }
  const held = unsaved[index] as UnsavedCall;
  if (held.seeded) {
    return state;
  }
  const args = (held.call.function.arguments ?? '') + piece;
  const fn = { ...held.call.function, arguments: args };
  unsaved[index] = { ...held, call: { ...held.call, function: fn } };
  return { ...state, unsaved };
}

/**
 * Show the held deltas, except what the snapshot's last message already holds; then the held
 * calls the snapshot does not list (a model streams its text before its tool calls).
 */
function showUnsaved(state: PaneState): PaneState {
  if (!state.unsaved.length) {
    return state;
  }
  let next: PaneState = { ...state, unsaved: [] };
  const tail = state.snapshotTail;
  const calls: UnsavedCall[] = [];
  for (const part of state.unsaved) {
    if (part.kind === 'tool') {
      calls.push(part);
      continue;
    }
    const text: UnsavedText = part;
    const stored = text.kind === 'text' ? tail?.text : tail?.reasoning;
    if (stored !== text.text) {
      next = appendText(next, text.kind, text.agent, text.text);
    }
  }
  for (const { call } of calls) {
    if (findTool(next.entries, call.id) < 0) {
      next = push(next, newTool(call, 'streaming'));
    }
  }
  return next;
}

/** A piece of a call's arguments: a streaming card appends it (a new call opens a card). */
function partialToolCall(state: PaneState, event: WireEvent): PaneState {
  const call = toolCall(event);
  if (!call) {
    return state;
  }
  const index = findTool(state.entries, call.id);
  if (index < 0) {
    return push(state, newTool(call, 'streaming'));
  }
  const card = state.entries[index] as ToolEntry;
  if (card.state !== 'streaming' || card.result !== null) {
    return state; // the call is complete already: its arguments are whole
  }
  return replaceAt(state, index, {
    ...card,
    name: call.function.name || card.name,
    arguments: card.arguments + (call.function.arguments ?? '')
  });
}

function addMessage(state: PaneState, wire: WireMessage): PaneState {
  const { message } = wire;
  const agent = wire.agentName ?? '';
  if (wire.implicit) {
    return state;
  }
  switch (message.role) {
    case 'user':
      return push(state, { kind: 'user', key: 0, text: message.content ?? '' });
    case 'assistant': {
      let next = state;
      if (message.reasoning_content) {
        next = push(next, { kind: 'reasoning', key: 0, agent, text: message.reasoning_content });
      }
      if (message.content) {
        next = push(next, { kind: 'text', key: 0, agent, text: message.content });
      }
      for (const call of message.tool_calls ?? []) {
        next = push(next, newTool(call, 'called'));
      }
      return next;
    }
    case 'tool': {
      const index = findTool(state.entries, message.tool_call_id ?? '');
      if (index < 0) {
        return state;
      }
      const card = state.entries[index] as ToolEntry;
      const isError = Boolean(message.is_error);
      const plan = isError ? null : storedPlan(card, agent);
      return replaceAt(plan ? { ...state, plan } : state, index, {
        ...card,
        result: message.content ?? '',
        isError,
        state: isError ? 'failed' : 'done'
      });
    }
    default:
      return state;
  }
}

function appendText(
  state: PaneState,
  kind: TextEntry['kind'],
  agent: string,
  content: string
): PaneState {
  const last = state.entries[state.entries.length - 1];
  if (last && last.kind === kind && last.agent === agent) {
    return replaceAt(state, state.entries.length - 1, { ...last, text: last.text + content });
  }
  return push(state, { kind, key: 0, agent, text: content });
}

function toolEvent(
  state: PaneState,
  event: WireEvent,
  toolState: ToolEntry['state'],
  quiet = false
): PaneState {
  const call = toolCall(event);
  if (!call) {
    return state;
  }
  const index = findTool(state.entries, call.id);
  if (index < 0) {
    return quiet ? state : push(state, newTool(call, toolState));
  }
  const card = state.entries[index] as ToolEntry;
  if (card.result !== null) {
    return state; // a finished card stays finished
  }
  return replaceAt(state, index, {
    ...card,
    name: call.function.name || card.name,
    arguments: call.function.arguments ?? card.arguments,
    state: toolState
  });
}

function toolOutput(state: PaneState, event: WireEvent): PaneState {
  const id = str(event.tool_call_id) || toolCall(event)?.id || '';
  const index = findTool(state.entries, id);
  const chunk = str(event.output) || str(event.content);
  if (index < 0 || !chunk) {
    return state;
  }
  const card = state.entries[index] as ToolEntry;
  return replaceAt(state, index, { ...card, output: card.output + chunk, state: 'running' });
}

function toolResponse(state: PaneState, event: WireEvent, quiet: boolean): PaneState {
  const call = toolCall(event);
  const id = str(event.tool_call_id) || call?.id || '';
  const result = isObject(event.result) ? event.result : {};
  const isError = Boolean(result.isError ?? result.is_error);
  const output = typeof result.output === 'string' ? result.output : str(event.response);
  const todos = todoList(result.meta);
  let next = todos ? { ...state, todos } : state; // restored by a replay too (not stored)
  if (next.approval?.callId === id) {
    next = { ...next, approval: null, status: 'running' };
  }
  let index = findTool(next.entries, id);
  if (index < 0) {
    if (quiet || !call) {
      return next;
    }
    next = push(next, newTool(call, 'called'));
    index = next.entries.length - 1;
  }
  const card = next.entries[index] as ToolEntry;
  return replaceAt(next, index, {
    ...card,
    result: output,
    isError,
    state: isError ? 'failed' : 'done'
  });
}

/** An answer given anywhere (this pane, another, REST) closes the prompt here. */
function answered(state: PaneState, confirmation: string): PaneState {
  let next: PaneState = { ...state, notice: null };
  const callId = state.approval?.callId;
  if (['accept', 'decline', 'cancel'].includes(confirmation) && state.elicitation) {
    next = { ...next, elicitation: null };
  } else if (state.approval) {
    next = { ...next, approval: null };
    const index = callId ? findTool(next.entries, callId) : -1;
    if (index >= 0) {
      const card = next.entries[index] as ToolEntry;
      const runs = confirmation.startsWith('approve');
      next = replaceAt(next, index, {
        ...card,
        decision: confirmation,
        state: runs && card.result === null ? 'running' : card.state
      });
    }
  }
  if (next.status === 'waiting_approval' || next.status === 'waiting_input') {
    next = { ...next, status: 'running' };
  }
  return next;
}

function stopStatus(reason: string, state: PaneState): TurnStatus {
  if (reason === 'canceled' || reason === 'cancelled') {
    return 'cancelled';
  }
  if (reason === 'error') {
    return 'error';
  }
  if (!reason) {
    const last = state.entries[state.entries.length - 1];
    return last?.kind === 'error' ? 'error' : 'done';
  }
  return 'done';
}

/** A turn that ended leaves no card spinning: unanswered calls read as not finished. */
function settleTools(entries: readonly Entry[]): readonly Entry[] {
  if (!entries.some(e => e.kind === 'tool' && e.result === null && e.state !== 'called')) {
    return entries;
  }
  return entries.map(e =>
    e.kind === 'tool' && e.result === null && e.state !== 'called' ? { ...e, state: 'called' } : e
  );
}

function newTool(call: WireToolCall, state: ToolEntry['state']): ToolEntry {
  return {
    kind: 'tool',
    key: 0,
    callId: call.id,
    name: call.function.name,
    arguments: call.function.arguments ?? '',
    state,
    output: '',
    result: null,
    isError: false,
    decision: null
  };
}

function push(state: PaneState, entry: Entry): PaneState {
  return {
    ...state,
    entries: [...state.entries, { ...entry, key: state.nextKey }],
    nextKey: state.nextKey + 1
  };
}

function replaceAt(state: PaneState, index: number, entry: Entry): PaneState {
  const entries = state.entries.slice();
  entries[index] = entry;
  return { ...state, entries };
}

function findTool(entries: readonly Entry[], callId: string): number {
  if (!callId) {
    return -1;
  }
  for (let i = entries.length - 1; i >= 0; i--) {
    const entry = entries[i];
    if (entry.kind === 'tool' && entry.callId === callId) {
      return i;
    }
  }
  return -1;
}

/** The plan a stored, answered `write_plan` call wrote, if its arguments say. */
function storedPlan(card: ToolEntry, agent: string): Plan | null {
  if (card.name !== 'write_plan') {
    return null;
  }
  try {
    const args: unknown = JSON.parse(card.arguments);
    return isObject(args) && typeof args.content === 'string'
      ? { content: args.content, path: '', agent }
      : null;
  } catch {
    return null;
  }
}

/** A todo tool's `meta` (`[{id, description, status}]`) as a list; null for any other meta. */
function todoList(meta: unknown): Todo[] | null {
  if (!Array.isArray(meta)) {
    return null;
  }
  const todos: Todo[] = [];
  for (const item of meta) {
    if (!isObject(item) || typeof item.description !== 'string') {
      return null;
    }
    todos.push({ id: str(item.id), description: item.description, status: str(item.status) });
  }
  return todos;
}

function toolCall(event: WireEvent): WireToolCall | null {
  const call = event.tool_call;
  if (!isObject(call) || typeof call.id !== 'string' || !isObject(call.function)) {
    return null;
  }
  return call as unknown as WireToolCall;
}

function usage(raw: Record<string, unknown>): Usage {
  const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  return {
    inputTokens: num(raw.input_tokens),
    outputTokens: num(raw.output_tokens),
    contextLength: num(raw.context_length),
    contextLimit: num(raw.context_limit),
    cost: num(raw.cost)
  };
}

function time(event: WireEvent): number | null {
  const parsed = typeof event.timestamp === 'string' ? Date.parse(event.timestamp) : NaN;
  return Number.isNaN(parsed) ? null : parsed;
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
