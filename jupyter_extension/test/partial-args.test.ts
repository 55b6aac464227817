/**
 * Tool-call arguments streamed as deltas (docker-agent's wire): each `partial_tool_call`
 * carries only the new bytes; the pane appends them per call, the full `tool_call` replaces
 * them, and a pane that joins mid-call starts from the snapshot's `partial_tool_calls`.
 */
import { initialState, reduce } from '../src/pane/reducer';
import type {
  Envelope,
  PaneState,
  Snapshot,
  ToolEntry,
  WireEvent,
  WireToolCall
} from '../src/pane/types';

const ARGS = '{"path": "notes.txt", "content": "hello world"}';
const PIECES = ['{"path": "no', 'tes.txt", "con', 'tent": "hello', ' world"}'];

function call(args: string): WireToolCall {
  return { id: 'call_1', type: 'function', function: { name: 'write_file', arguments: args } };
}

function partial(piece: string, first = false): WireEvent {
  const event: WireEvent = {
    type: 'partial_tool_call',
    agent_name: 'root',
    tool_call: call(piece)
  };
  return first ? { ...event, tool_definition: { name: 'write_file' } } : event;
}

/** A turn: text, the call's pieces, the full call, its result. Seqs from 1. */
function turn(): Envelope[] {
  const events: WireEvent[] = [
    { type: 'user_message', message: 'write it' },
    { type: 'stream_started' },
    { type: 'agent_choice', agent_name: 'root', content: "I'll write it." },
    ...PIECES.map((piece, i) => partial(piece, i === 0)),
    { type: 'token_usage', usage: { input_tokens: 1, output_tokens: 2 } },
    {
      type: 'tool_call',
      agent_name: 'root',
      tool_call: call(ARGS)
    },
    {
      type: 'tool_call_response',
      tool_call_id: 'call_1',
      result: { output: 'ok', isError: false }
    },
    { type: 'stream_stopped', reason: 'normal' }
  ];
  return events.map((event, i) => ({ seq: i + 1, event }));
}

function replay(envelopes: Envelope[], state: PaneState = initialState()): PaneState {
  return envelopes.reduce((s, { seq, event }) => reduce(s, event, seq), state);
}

function card(state: PaneState): ToolEntry {
  const tools = state.entries.filter((e): e is ToolEntry => e.kind === 'tool');
  expect(tools).toHaveLength(1);
  return tools[0];
}

/** The snapshot a pane reads after seq `at`: the call streaming, its message not stored. */
function midCall(at: number, seeded: boolean): Snapshot {
  const sent = turn()
    .slice(0, at)
    .filter(e => e.event.type === 'partial_tool_call')
    .map(e => (e.event.tool_call as { function: { arguments: string } }).function.arguments);
  return {
    id: 's',
    messages: [{ message: { role: 'user', content: 'write it' } }],
    streaming: true,
    last_event_seq: at,
    partial_tool_calls: seeded ? [{ ...partial(sent.join(''), true) }] : []
  };
}

describe('streamed tool-call arguments', () => {
  const events = turn();
  const firstPiece = events.findIndex(e => e.event.type === 'partial_tool_call');
  const usageAt = events.findIndex(e => e.event.type === 'token_usage');

  it('pieces append to a streaming card, and the full call replaces them', () => {
    let state = replay(events.slice(0, firstPiece + 2));
    expect(card(state)).toMatchObject({ state: 'streaming', arguments: PIECES[0] + PIECES[1] });
    state = replay(events.slice(firstPiece + 2, usageAt), state);
    expect(card(state)).toMatchObject({ state: 'streaming', arguments: ARGS, name: 'write_file' });
    state = replay(events.slice(usageAt), state);
    expect(card(state)).toMatchObject({ state: 'done', arguments: ARGS, result: 'ok' });
  });

  it('a replay of pieces already applied adds nothing', () => {
    const state = replay(events.slice(0, usageAt));
    expect(replay(events.slice(firstPiece, usageAt), state)).toBe(state);
  });

  for (const seeded of [true, false]) {
    const how = seeded ? "from the snapshot's partial_tool_calls" : 'from the replayed pieces';
    it(`a pane that joins mid-call gets the whole arguments ${how}`, () => {
      const at = firstPiece + 2; // two pieces sent before the snapshot
      let state = reduce(initialState(), { type: 'pane.snapshot', snapshot: midCall(at, seeded) });
      // Then /events from 0: the replay up to the snapshot's seq, then live pieces.
      state = replay(events.slice(0, usageAt), state);
      expect(state.entries.map(e => e.kind)).toEqual(['user', 'text', 'tool']);
      expect(card(state)).toMatchObject({ state: 'streaming', arguments: ARGS });
      state = replay(events.slice(usageAt), state);
      expect(card(state)).toMatchObject({ state: 'done', arguments: ARGS });
    });
  }

  it('a pane that joins after a gap appends the live pieces to the seeded arguments', () => {
    const at = firstPiece + 3;
    let state = reduce(initialState(), { type: 'pane.snapshot', snapshot: midCall(at, true) });
    state = replay(events.slice(at, usageAt), state); // the events before were evicted
    expect(card(state)).toMatchObject({ state: 'streaming', arguments: ARGS });
  });

  it('a piece never changes a call the snapshot holds whole', () => {
    const stored: Snapshot = {
      ...midCall(usageAt + 1, false),
      messages: [
        { message: { role: 'user', content: 'write it' } },
        {
          message: {
            role: 'assistant',
            content: "I'll write it.",
            tool_calls: [call(ARGS)]
          }
        }
      ]
    };
    let state = reduce(initialState(), { type: 'pane.snapshot', snapshot: stored });
    state = replay(events.slice(0, usageAt), state);
    state = reduce(state, partial(' late'), 99);
    expect(card(state).arguments).toBe(ARGS);
  });
});
