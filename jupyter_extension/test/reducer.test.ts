/**
 * The reducer on event streams recorded from a real server (see record_fixtures.py): each
 * fixture is what `/events` delivered for one turn of the offline demo agent.
 */
import { readFileSync } from 'fs';
import { join } from 'path';

import { elapsedMs, initialState, reduce, reduceAll } from '../src/pane/reducer';
import type { Envelope, PaneState, Snapshot, TextEntry, ToolEntry } from '../src/pane/types';

function fixture(name: string): Envelope[] {
  return JSON.parse(readFileSync(join(__dirname, 'fixtures', `${name}.json`), 'utf8'));
}

function snapshot(name: string): Snapshot {
  return JSON.parse(readFileSync(join(__dirname, 'fixtures', `snapshot-${name}.json`), 'utf8'));
}

/** Freeze a state deeply, so any mutation by the reducer throws in strict mode. */
function frozen<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) {
      frozen(inner);
    }
  }
  return value;
}

/** Replay envelopes one at a time, freezing every intermediate state. */
function replay(envelopes: Envelope[], state: PaneState = initialState()): PaneState {
  return envelopes.reduce((s, { seq, event }) => reduce(frozen(s), event, seq), state);
}

function until(envelopes: Envelope[], type: string): Envelope[] {
  const index = envelopes.findIndex(e => e.event.type === type);
  if (index < 0) {
    throw new Error(`no ${type} in the fixture`);
  }
  return envelopes.slice(0, index + 1);
}

function deltas(envelopes: Envelope[], type = 'agent_choice'): string {
  return envelopes
    .filter(e => e.event.type === type)
    .map(e => e.event.content as string)
    .join('');
}

function texts(state: PaneState, kind: TextEntry['kind'] = 'text'): string[] {
  return state.entries.filter((e): e is TextEntry => e.kind === kind).map(e => e.text);
}

function tools(state: PaneState): ToolEntry[] {
  return state.entries.filter((e): e is ToolEntry => e.kind === 'tool');
}

describe('a turn that asks for approval and is approved', () => {
  const events = fixture('approve');

  it('waits with the tool call pending once the confirmation arrives', () => {
    const state = replay(until(events, 'tool_call_confirmation'));
    expect(state.status).toBe('waiting_approval');
    expect(state.approval).toEqual({
      kind: 'tool',
      callId: 'call_1',
      toolName: 'shell',
      arguments: '{"cmd": "ls -la"}',
      diff: '',
      maxIterations: null
    });
    expect(tools(state)).toHaveLength(1);
    expect(tools(state)[0]).toMatchObject({ name: 'shell', state: 'pending', result: null });
    const started = events.find(e => e.event.type === 'stream_started')!;
    expect(state.startedAt).toBe(Date.parse(started.event.timestamp as string));
  });

  it('closes the prompt on the authorization event, whoever answered', () => {
    const state = replay(until(events, 'authorization_event'));
    expect(state.approval).toBeNull();
    expect(state.status).toBe('running');
    expect(tools(state)[0]).toMatchObject({ decision: 'approve', state: 'running' });
  });

  it('ends with the answer, the tool result and the usage', () => {
    const state = replay(events);
    expect(state.entries.map(e => e.kind)).toEqual(['user', 'reasoning', 'text', 'tool', 'text']);
    expect(state.entries[0]).toMatchObject({ kind: 'user', text: 'list the files' });
    const [beforeTool, afterTool] = texts(state);
    const toolAt = events.findIndex(e => e.event.type === 'tool_call');
    expect(beforeTool).toBe(deltas(events.slice(0, toolAt)));
    expect(afterTool).toBe(deltas(events.slice(toolAt)));
    expect(texts(state, 'reasoning')).toEqual([deltas(events, 'agent_choice_reasoning')]);
    const card = tools(state)[0];
    expect(card).toMatchObject({ state: 'done', isError: false, decision: 'approve' });
    expect(card.result).toContain('notes.txt');
    expect(state.status).toBe('done');
    expect(state.title).toBe('List the files');
    expect(state.model).toBe('demo/offline');
    const usage = events.filter(e => e.event.type === 'token_usage').pop()!.event.usage as {
      input_tokens: number;
      output_tokens: number;
    };
    expect(state.usage).toMatchObject({
      inputTokens: usage.input_tokens,
      outputTokens: usage.output_tokens
    });
    expect(usage.output_tokens).toBeGreaterThan(0);
    expect(state.exited).toBe('session deleted');
    expect(state.connection).toBe('closed');
    expect(state.lastSeq).toBe(events[events.length - 1].seq);
    expect(elapsedMs(state, Date.now())).toBe(state.endedAt! - state.startedAt!);
  });

  it('ignores a replay of events it has already applied', () => {
    const once = replay(events);
    const twice = replay(events, once);
    expect(twice).toBe(once);
    const overlapping = replay(events.slice(10), replay(events.slice(0, 30)));
    expect(overlapping.entries).toEqual(once.entries);
  });
});

describe('other recorded turns', () => {
  it('a rejected call keeps its decision and the model goes on', () => {
    const state = replay(fixture('reject'));
    const card = tools(state)[0];
    expect(card.decision).toBe('reject');
    expect(card.result).not.toBeNull();
    expect(state.status).toBe('done');
    expect(texts(state).length).toBe(2);
  });

  it('a read-only tool runs without asking', () => {
    const events = fixture('think');
    const states = events.map((_, i) => replay(events.slice(0, i + 1)));
    expect(states.every(s => s.approval === null)).toBe(true);
    const state = states[states.length - 1];
    expect(tools(state)[0]).toMatchObject({ name: 'think', state: 'done' });
    expect(texts(state).join('')).toContain('391');
  });

  it('a cancel while waiting ends the turn as cancelled with the call marked failed', () => {
    const state = replay(fixture('cancel'));
    expect(state.status).toBe('cancelled');
    expect(state.stopReason).toBe('canceled');
    expect(state.approval).toBeNull();
    // The recorded result says `is_error`; docker-agent's clients read `isError`.
    expect(tools(state)[0]).toMatchObject({ state: 'failed', isError: true });
  });

  it('reads isError as docker-agent spells it', () => {
    const [call] = fixture('approve').filter(e => e.event.type === 'tool_call');
    const state = replay([
      call,
      {
        seq: 999,
        event: {
          type: 'tool_call_response',
          tool_call: call.event.tool_call,
          response: 'boom',
          result: { output: 'boom', isError: true }
        }
      }
    ]);
    expect(tools(state)[0]).toMatchObject({ result: 'boom', isError: true, state: 'failed' });
  });
});

describe('reconnecting', () => {
  const events = fixture('approve');
  const waiting = snapshot('waiting');

  it('rebuilds from a snapshot with its pending approval; the replay adds nothing twice', () => {
    let state = reduce(initialState(), { type: 'pane.snapshot', snapshot: waiting });
    expect(state.entries.map(e => e.kind)).toEqual(['user', 'reasoning', 'text', 'tool']);
    // The snapshot says what the turn waits on: the prompt shows without any replay.
    expect(state.status).toBe('waiting_approval');
    expect(state.approval).toMatchObject({ kind: 'tool', toolName: 'shell', callId: 'call_1' });
    expect(tools(state)[0].state).toBe('pending');
    // The pane then follows /events from 0: a replay up to the snapshot adds no text twice.
    state = replay(until(events, 'tool_call_confirmation'), state);
    expect(state.entries.map(e => e.kind)).toEqual(['user', 'reasoning', 'text', 'tool']);
    expect(state.approval?.toolName).toBe('shell');
    expect(state.status).toBe('waiting_approval');
    // Live events after the snapshot apply in full.
    const rest = replay(events, state);
    expect(rest.entries).toEqual(
      replay(events).entries.map((e, i) => ({ ...e, key: rest.entries[i].key }))
    );
    expect(rest.status).toBe('done');
  });

  it('a gap while live waits for a snapshot and drops events until it comes', () => {
    const live = replay(events.slice(0, 25));
    const gapped = reduce(live, { type: 'gap' });
    expect(gapped.needsSnapshot).toBe(true);
    expect(gapped.connection).toBe('resyncing');
    expect(replay(events.slice(40), gapped)).toBe(gapped);
    const rebased = reduce(gapped, { type: 'pane.snapshot', snapshot: waiting });
    expect(rebased.needsSnapshot).toBe(false);
    expect(rebased.generation).toBe(gapped.generation + 1);
  });

  it('shows the pending prompt from the snapshot alone, when /events no longer has it', () => {
    const state = reduce(initialState(), { type: 'pane.snapshot', snapshot: waiting });
    // Only events after the snapshot follow (the ones before were evicted): none here.
    expect(state.approval?.toolName).toBe('shell');
    const answered = replay(events.filter(e => (e.seq ?? 0) > waiting.last_event_seq), state);
    expect(answered.approval).toBeNull();
    expect(answered.status).toBe('done');
    expect(tools(answered)[0]).toMatchObject({ state: 'done', decision: 'approve' });
  });

  it('shows text streamed before the snapshot whose message was not stored yet', () => {
    // A pane that opens while the model streams: the snapshot's seq covers some deltas,
    // but the answer is stored only when the model call ends (at its token_usage).
    const usageAt = events.findIndex(e => e.event.type === 'token_usage');
    const midway = events.slice(0, usageAt - 3);
    const before: Snapshot = {
      ...waiting,
      messages: (waiting.messages ?? []).slice(0, 1), // the user's message only
      pending: null,
      last_event_seq: midway[midway.length - 1].seq!
    };
    let state = reduce(initialState(), { type: 'pane.snapshot', snapshot: before });
    state = replay(events, state);
    expect(state.entries).toEqual(
      replay(events).entries.map((e, i) => ({ ...e, key: state.entries[i].key }))
    );
  });

  it('does not repeat streamed text the snapshot already stored', () => {
    // The same moment a little later: the answer is stored, its token_usage not yet sent.
    const usageAt = events.findIndex(e => e.event.type === 'token_usage');
    const stored: Snapshot = {
      ...waiting,
      messages: (waiting.messages ?? []).slice(0, 2), // the user's message and the answer
      pending: null,
      last_event_seq: events[usageAt - 1].seq!
    };
    let state = reduce(initialState(), { type: 'pane.snapshot', snapshot: stored });
    state = replay(events, state);
    expect(texts(state)).toEqual(texts(replay(events)));
    expect(texts(state, 'reasoning')).toEqual(texts(replay(events), 'reasoning'));
  });

  it('a gap right after a snapshot needs no second one', () => {
    const state = reduce(initialState(), { type: 'pane.snapshot', snapshot: waiting });
    expect(reduce(state, { type: 'gap' })).toBe(state);
  });

  it('connection changes are state too', () => {
    const state = reduce(initialState(), { type: 'pane.connection', status: 'reconnecting' });
    expect(state.connection).toBe('reconnecting');
  });
});

describe('events the offline agent does not send', () => {
  const schema = {
    type: 'object',
    properties: { name: { type: 'string' }, age: { type: 'integer' } },
    required: ['name']
  };

  it('an elicitation request is pending until answered', () => {
    const asked = reduceAll(initialState(), [
      { seq: 1, event: { type: 'stream_started' } },
      {
        seq: 2,
        event: {
          type: 'elicitation_request',
          message: 'Who are you?',
          mode: 'form',
          schema,
          elicitation_id: 'el_1'
        }
      }
    ]);
    expect(asked.status).toBe('waiting_input');
    expect(asked.elicitation).toEqual({ id: 'el_1', message: 'Who are you?', mode: 'form', schema });
    const done = reduce(asked, { type: 'authorization_event', confirmation: 'accept' }, 3);
    expect(done.elicitation).toBeNull();
    expect(done.status).toBe('running');
  });

  it('reaching max_iterations asks whether to go on', () => {
    const state = reduce(initialState(), { type: 'max_iterations_reached', max_iterations: 5 }, 1);
    expect(state.approval).toMatchObject({ kind: 'max_iterations', maxIterations: 5 });
    expect(state.status).toBe('waiting_approval');
  });

  it('streamed tool output appends to the card', () => {
    const call = { id: 'c1', type: 'function', function: { name: 'shell', arguments: '{}' } };
    const state = reduceAll(initialState(), [
      { seq: 1, event: { type: 'tool_call', tool_call: call } },
      { seq: 2, event: { type: 'tool_call_output', tool_call_id: 'c1', output: 'line 1\n' } },
      { seq: 3, event: { type: 'tool_call_output', tool_call: call, output: 'line 2\n' } }
    ]);
    expect(tools(state)[0]).toMatchObject({ output: 'line 1\nline 2\n', state: 'running' });
  });

  it('warnings and errors become entries; an error stop is an error status', () => {
    const state = reduceAll(initialState(), [
      { seq: 1, event: { type: 'stream_started' } },
      { seq: 2, event: { type: 'warning', message: 'careful' } },
      { seq: 3, event: { type: 'error', error: 'model unreachable' } },
      { seq: 4, event: { type: 'stream_stopped', reason: 'error' } }
    ]);
    expect(state.entries).toMatchObject([
      { kind: 'warning', text: 'careful' },
      { kind: 'error', text: 'model unreachable' }
    ]);
    expect(state.status).toBe('error');
  });

  it('unknown event types change nothing', () => {
    const state = initialState();
    expect(reduce(state, { type: 'mcp_init_started' }, null)).toBe(state);
    expect(reduce(state, { type: 'something_new', x: 1 }, null)).toBe(state);
  });

  it('10,000 deltas make one entry holding the whole text', () => {
    let state = reduce(initialState(), { type: 'stream_started' }, 1);
    for (let i = 0; i < 10000; i++) {
      state = reduce(state, { type: 'agent_choice', content: `${i} ` }, i + 2);
    }
    expect(state.entries).toHaveLength(1);
    expect((state.entries[0] as TextEntry).text).toBe(
      Array.from({ length: 10000 }, (_, i) => `${i} `).join('')
    );
  });
});

describe('the plan and the todo list', () => {
  const written = fixture('write-plan');
  const todoTurn = fixture('plan');
  const planEvent = written.find(e => e.event.type === 'plan_updated')!.event;

  /** A later event of the same stream: the next seq after `events`. */
  function next(events: Envelope[], event: Envelope['event']): Envelope {
    return { seq: Math.max(...events.map(e => e.seq ?? 0)) + 1, event };
  }

  it('shows the plan plan_updated carries, and a newer plan replaces it', () => {
    const state = replay(written);
    expect(state.plan).toEqual({
      content: planEvent.content,
      path: (planEvent.path as string | undefined) ?? '',
      agent: 'root'
    });
    expect(state.plan!.content).toContain('1. Read');
    const newer = replay([next(written, { ...planEvent, content: '# Plan\n\n1. Done\n' })], state);
    expect(newer.plan!.content).toBe('# Plan\n\n1. Done\n');
    expect(newer.entries).toBe(state.entries); // in place: no new entry
  });

  it('shows the todo list a todo tool returns as meta, and each new list replaces it', () => {
    const state = replay(todoTurn);
    expect(state.todos).toEqual([
      { id: 'todo_1', description: 'Understand the request', status: 'pending' },
      { id: 'todo_2', description: 'Do the work', status: 'pending' },
      { id: 'todo_3', description: 'Report the result', status: 'pending' }
    ]);
    const response = todoTurn.find(e => e.event.type === 'tool_call_response')!.event;
    const result = response.result as Record<string, unknown>;
    const meta = (result.meta as Record<string, unknown>[]).map((todo, i) => ({
      ...todo,
      status: i === 0 ? 'completed' : i === 1 ? 'in-progress' : 'pending'
    }));
    const updated = replay(
      [next(todoTurn, { ...response, tool_call_id: 'call_9', result: { ...result, meta } })],
      state
    );
    expect(updated.todos!.map(t => t.status)).toEqual(['completed', 'in-progress', 'pending']);
    // A result without a todo list (any other tool) leaves the list alone.
    const other = replay(
      [next(todoTurn, { ...response, tool_call_id: 'call_9', result: { output: 'x' } })],
      state
    );
    expect(other.todos).toBe(state.todos);
  });

  it('a replay before the snapshot point restores both, which stored messages lack', () => {
    const rebuilt = reduce(initialState(), {
      type: 'pane.snapshot',
      snapshot: { id: 's1', last_event_seq: 1000, messages: [] }
    });
    const state = replay([...written, ...todoTurn.map(e => ({ ...e, seq: e.seq! + 100 }))], rebuilt);
    expect(state.entries).toEqual([]); // quiet: the snapshot holds the entries
    expect(state.plan?.content).toBe(planEvent.content);
    expect(state.todos).toHaveLength(3);
  });

  it('a snapshot restores the plan from the stored write_plan call and keeps the todos', () => {
    const live = replay(todoTurn, initialState('s1'));
    const call = {
      id: 'call_1',
      type: 'function',
      function: { name: 'write_plan', arguments: JSON.stringify({ content: '# Stored plan' }) }
    };
    const snap: Snapshot = {
      id: 's1',
      last_event_seq: 99,
      messages: [
        { message: { role: 'user', content: 'plan it' } },
        { agentName: 'root', message: { role: 'assistant', content: '', tool_calls: [call] } },
        { agentName: 'root', message: { role: 'tool', tool_call_id: 'call_1', content: 'ok' } }
      ]
    };
    const rebuilt = reduce(live, { type: 'pane.snapshot', snapshot: snap });
    expect(rebuilt.plan).toEqual({ content: '# Stored plan', path: '', agent: 'root' });
    expect(rebuilt.todos).toBe(live.todos); // the same session: stored messages lack them
    const refused = reduce(live, {
      type: 'pane.snapshot',
      snapshot: {
        ...snap,
        id: 'another-session',
        messages: [
          snap.messages![1],
          { message: { role: 'tool', tool_call_id: 'call_1', content: 'no', is_error: true } }
        ]
      }
    });
    expect(refused.plan).toBeNull(); // a failed write_plan wrote no plan
    expect(refused.todos).toBeNull(); // another session's list is not this one's
  });
});
