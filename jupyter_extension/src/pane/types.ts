/**
 * The shapes the pane works with: the server's events (SPEC 4, docker-agent's JSON names),
 * the snapshot it resyncs from, and the pane's own state.
 *
 * Wire types are loose on purpose (`[key: string]: unknown`): the server may add fields and
 * event types, and the pane must read what it knows and ignore the rest.
 */

/** One event as `/events` carries it in an SSE `data:` line. */
export interface WireEvent {
  type: string;
  agent_name?: string;
  timestamp?: string;
  [key: string]: unknown;
}

/** An event with its SSE `id` (null for events sent without one, such as `gap`). */
export interface Envelope {
  seq: number | null;
  event: WireEvent;
}

export interface WireToolCall {
  id: string;
  type?: string;
  function: { name: string; arguments?: string };
}

/** A stored message as `/snapshot` lists it. */
export interface WireMessage {
  id?: string;
  agentName?: string;
  message: {
    role: string;
    content?: string;
    reasoning_content?: string | null;
    tool_calls?: WireToolCall[] | null;
    tool_call_id?: string | null;
    is_error?: boolean | null;
  };
  implicit?: boolean | null;
}

/** `GET .../snapshot`: stored and live state, and the point to tail `/events` from. */
export interface Snapshot {
  id: string;
  title?: string;
  messages?: WireMessage[] | null;
  input_tokens?: number;
  output_tokens?: number;
  cost?: number;
  streaming?: boolean;
  agent?: string;
  last_event_seq: number;
  /** The prompt the running turn waits on (approval or form), as `/events` sent it. */
  pending?: WireEvent | null;
  /**
   * Tool calls whose arguments are streaming and not stored yet, each as one
   * `partial_tool_call` holding the arguments up to `last_event_seq` (later events append).
   */
  partial_tool_calls?: WireEvent[] | null;
  kernel_id?: string;
  notebook_path?: string;
  [key: string]: unknown;
}

/** Events the pane makes for itself; their dotted names never clash with the server's. */
export type LocalEvent =
  | { type: 'pane.snapshot'; snapshot: Snapshot }
  | { type: 'pane.connection'; status: ConnectionStatus; message?: string }
  | { type: 'pane.notice'; message: string };

export type TurnStatus =
  | 'idle'
  | 'running'
  | 'waiting_approval'
  | 'waiting_input'
  | 'done'
  | 'error'
  | 'cancelled';

/**
 * `connecting` before the first byte, `live` while the stream is open, `reconnecting` after a
 * drop, `resyncing` between a `gap` and the snapshot that follows it, `closed` after
 * `session_exited` (nothing more will come).
 */
export type ConnectionStatus = 'connecting' | 'live' | 'reconnecting' | 'resyncing' | 'closed';

export type ToolState =
  | 'streaming' // partial_tool_call: the model is still writing the arguments
  | 'called' // tool_call: about to run, or waiting for a decision
  | 'pending' // tool_call_confirmation: waiting for approval
  | 'running'
  | 'done'
  | 'failed';

export interface UserEntry {
  kind: 'user';
  key: number;
  text: string;
}

/** The answer, or the model's reasoning (shown collapsed). Deltas append to `text`. */
export interface TextEntry {
  kind: 'text' | 'reasoning';
  key: number;
  agent: string;
  text: string;
}

export interface ToolEntry {
  kind: 'tool';
  key: number;
  callId: string;
  name: string;
  arguments: string;
  state: ToolState;
  /** Output streamed while the tool runs (`tool_call_output`). */
  output: string;
  /** The final result (`tool_call_response`), null until it arrives. */
  result: string | null;
  isError: boolean;
  /** How the call was answered, when it asked (`approve`, `reject`, ...). */
  decision: string | null;
}

export interface UnsavedText {
  kind: TextEntry['kind'];
  agent: string;
  text: string;
}

/**
 * A tool call streamed before the snapshot's point and not stored yet: its arguments so far.
 * `seeded` when they came from the snapshot's `partial_tool_calls` (then they already hold
 * every piece the replay up to the snapshot's point would add).
 */
export interface UnsavedCall {
  kind: 'tool';
  agent: string;
  call: WireToolCall;
  seeded: boolean;
}

export interface NoticeEntry {
  kind: 'warning' | 'error';
  key: number;
  text: string;
}

export type Entry = UserEntry | TextEntry | ToolEntry | NoticeEntry;

/** A decision the turn waits for: a tool call, or more iterations after the limit. */
export interface PendingApproval {
  kind: 'tool' | 'max_iterations';
  callId: string;
  toolName: string;
  arguments: string;
  /** The unified diff a file edit would make, when the server previews it. */
  diff: string;
  maxIterations: number | null;
}

export interface PendingElicitation {
  id: string;
  message: string;
  mode: string;
  schema: Record<string, unknown>;
}

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  contextLength: number;
  contextLimit: number;
  cost: number;
}

/** The session's plan, as the last `plan_updated` (or stored `write_plan` call) gave it. */
export interface Plan {
  /** Markdown. */
  content: string;
  /** The plan's file on the server, '' when it is kept in memory. */
  path: string;
  agent: string;
}

/** One item of the todo list a todo tool's result carries as its `meta`. */
export interface Todo {
  id: string;
  description: string;
  /** `pending`, `in-progress` or `completed` (docker-agent's names); shown as given. */
  status: string;
}

export interface PaneState {
  sessionId: string;
  title: string;
  agent: string;
  model: string;
  status: TurnStatus;
  /** `stream_stopped`'s reason of the last turn (`normal`, `error`, `canceled`). */
  stopReason: string;
  /** Milliseconds since the epoch from the events' timestamps (elapsed time = now - start). */
  startedAt: number | null;
  endedAt: number | null;
  entries: readonly Entry[];
  /** The next `key` for a new entry: keys never repeat, so views can keep their nodes. */
  nextKey: number;
  approval: PendingApproval | null;
  elicitation: PendingElicitation | null;
  usage: Usage | null;
  /** The latest plan, shown above the entries and replaced in place by a newer one. */
  plan: Plan | null;
  /** The latest todo list (null before any todo tool answered), replaced in place. */
  todos: readonly Todo[] | null;
  /** The last sequence number applied: replays at or below it are ignored. */
  lastSeq: number;
  /**
   * The snapshot's `last_event_seq`: events up to it are already in `entries`, so replaying
   * them only restores what a snapshot lacks (a pending approval, the turn's status).
   */
  snapshotSeq: number;
  /** True from a snapshot until the next sequenced event: a `gap` then needs no new one. */
  freshSnapshot: boolean;
  /**
   * Text and tool calls streamed before the snapshot's `last_event_seq` whose message the
   * snapshot may not hold yet (a model call's answer is stored when the call ends, at its
   * `token_usage`). Shown once the replay reaches the snapshot's point, unless the snapshot
   * had them after all.
   */
  unsaved: readonly (UnsavedText | UnsavedCall)[];
  /** The snapshot's last message when it is the model's: what `unsaved` may repeat. */
  snapshotTail: { text: string; reasoning: string } | null;
  connection: ConnectionStatus;
  /** A `gap` was seen: the state is stale until a snapshot arrives. */
  needsSnapshot: boolean;
  /** `session_exited`'s reason, once the session is gone or the server stopped. */
  exited: string | null;
  /** A one-line message for the user about their own action (e.g. answered elsewhere). */
  notice: string | null;
  /** Resets on each new snapshot: views rebuild when it changes. */
  generation: number;
}
