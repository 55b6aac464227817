/**
 * Direct mode's protocol (snapshot, `/events` with Last-Event-ID, gap, XSRF) against a
 * scripted server speaking real HTTP objects (WHATWG Request/Response/ReadableStream); the
 * browser test runs the same code against the real server.
 */
import { readFileSync } from 'fs';
import { join } from 'path';

import { ApiError } from '../src/pane/actions';
import { DirectConnection } from '../src/pane/connection';
import { BlockSplitter } from '../src/pane/markdown';
import { initialState, reduce } from '../src/pane/reducer';
import { SSEParser } from '../src/pane/sse';
import type { Envelope, LocalEvent, PaneState, WireEvent } from '../src/pane/types';

const events: Envelope[] = JSON.parse(
  readFileSync(join(__dirname, 'fixtures', 'approve.json'), 'utf8')
);
const snapshot = JSON.parse(
  readFileSync(join(__dirname, 'fixtures', 'snapshot-waiting.json'), 'utf8')
);

function frames(envelopes: Envelope[]): string {
  return envelopes
    .map(({ seq, event }) => `${seq === null ? '' : `id: ${seq}\n`}data: ${JSON.stringify(event)}\n\n`)
    .join('');
}

/** A body that sends `text` in small pieces, then ends (a drop unless it held session_exited). */
function streamOf(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(at, at + 97));
      at += 97;
    }
  });
}

interface Call {
  url: string;
  init: RequestInit;
}

function harness(routes: (call: Call, n: number) => Response) {
  const calls: Call[] = [];
  let state: PaneState = initialState('s1');
  const connection = new DirectConnection({
    baseUrl: '/base',
    sessionId: 's1',
    dispatch: (event: WireEvent | LocalEvent, seq: number | null) => {
      state = reduce(state, event, seq);
    },
    state: () => state,
    retryDelaysMs: [0],
    xsrfToken: () => 'xsrf-value',
    fetch: async (url, init) => {
      calls.push({ url, init });
      return routes({ url, init }, calls.length);
    }
  });
  return { connection, calls, state: () => state };
}

const ok = (body: unknown) =>
  new Response(JSON.stringify(body), { headers: { 'Content-Type': 'application/json' } });
const sse = (text: string) =>
  new Response(streamOf(text), { headers: { 'Content-Type': 'text/event-stream' } });

describe('following /events', () => {
  it('reads the snapshot, follows from 0, resumes after a drop with Last-Event-ID', async () => {
    const cut = Math.floor(events.length / 2);
    const { connection, calls, state } = harness(({ url }, n) => {
      if (url.endsWith('/snapshot')) {
        return ok(snapshot);
      }
      // First stream: drops after `cut` events; the second carries the rest.
      return n === 2 ? sse(frames(events.slice(0, cut))) : sse(frames(events.slice(cut)));
    });
    await connection.start();
    expect(calls.map(c => c.url)).toEqual([
      '/base/nbsession/api/sessions/s1/snapshot',
      '/base/nbsession/api/sessions/s1/events?since=0',
      `/base/nbsession/api/sessions/s1/events?since=${events[cut - 1].seq}`
    ]);
    const headers = calls[2].init.headers as Record<string, string>;
    expect(headers['Last-Event-ID']).toBe(String(events[cut - 1].seq));
    expect(calls.every(c => c.init.credentials === 'same-origin')).toBe(true);
    expect(JSON.stringify(calls)).not.toMatch(/token|authorization/i);
    const final = state();
    expect(final.status).toBe('done');
    expect(final.exited).toBe('session deleted');
    expect(final.entries.map(e => e.kind)).toEqual(['user', 'reasoning', 'text', 'tool', 'text']);
  });

  it('re-reads the snapshot after a gap and tails from it', async () => {
    const { connection, calls, state } = harness(({ url }, n) => {
      if (url.endsWith('/snapshot')) {
        return ok(n === 1 ? { ...snapshot, messages: [], last_event_seq: 0 } : snapshot);
      }
      if (n === 2) {
        // live for a while, then the server says our resume point is gone
        const rest = frames(events.slice(-5));
        return sse(frames(events.slice(0, 5)) + 'data: {"type":"gap"}\n\n' + rest);
      }
      return sse(frames(events.filter(e => e.seq! > snapshot.last_event_seq)));
    });
    await connection.start();
    expect(calls.map(c => c.url.replace('/base/nbsession/api/sessions/s1', ''))).toEqual([
      '/snapshot',
      '/events?since=0',
      '/snapshot',
      '/events?since=0'
    ]);
    expect(state().status).toBe('done');
    expect(state().entries.map(e => e.kind)).toEqual(['user', 'reasoning', 'text', 'tool', 'text']);
  });

  it('stops with a notice when the session does not exist', async () => {
    const { connection, state } = harness(() =>
      new Response(JSON.stringify({ code: 'unknown_session', message: "No session with id 's1'." }), {
        status: 404
      })
    );
    await connection.start();
    expect(state().connection).toBe('closed');
    expect(state().notice).toBe("No session with id 's1'.");
  });
});

describe('answers', () => {
  it('post JSON with the XSRF header and the login cookie', async () => {
    const { connection, calls } = harness(() => ok({ message: 'session resumed' }));
    await connection.resume({ confirmation: 'reject', reason: 'no' });
    await connection.elicitation({ action: 'decline', elicitation_id: 'e1' });
    await connection.cancel();
    expect(calls.map(c => [c.url, c.init.method, c.init.body])).toEqual([
      ['/base/nbsession/api/sessions/s1/resume', 'POST', '{"confirmation":"reject","reason":"no"}'],
      ['/base/nbsession/api/sessions/s1/elicitation', 'POST', '{"action":"decline","elicitation_id":"e1"}'],
      ['/base/nbsession/api/sessions/s1/cancel', 'POST', '{}']
    ]);
    for (const call of calls) {
      expect(call.init.credentials).toBe('same-origin');
      expect((call.init.headers as Record<string, string>)['X-XSRFToken']).toBe('xsrf-value');
    }
  });

  it('turn an error body into an ApiError with its code', async () => {
    const { connection } = harness(
      () =>
        new Response(JSON.stringify({ code: 'nothing_pending', message: 'Nothing waits.' }), {
          status: 409
        })
    );
    await expect(connection.resume({ confirmation: 'approve' })).rejects.toEqual(
      new ApiError(409, 'nothing_pending', 'Nothing waits.')
    );
  });
});

describe('SSEParser', () => {
  it('handles ids, comments, multi-line data and any split of the input', () => {
    const text = ': ping\n\nid: 7\ndata: {"a":\ndata: 1}\n\r\ndata: {"type":"gap"}\r\n\r\n';
    for (let size = 1; size <= text.length; size++) {
      const parser = new SSEParser();
      const out = [];
      for (let i = 0; i < text.length; i += size) {
        out.push(...parser.feed(text.slice(i, i + size)));
      }
      expect(out).toEqual([
        { id: '7', data: '{"a":\n1}' },
        { id: null, data: '{"type":"gap"}' }
      ]);
    }
  });
});

describe('BlockSplitter', () => {
  it('finishes blocks at blank lines outside fences, whatever the delta size', () => {
    const text = 'Intro line\n\n```py\nx = 1\n\ny = 2\n```\n\n- a\n- b\n\ntail';
    for (const size of [1, 3, 7, text.length]) {
      const splitter = new BlockSplitter();
      const blocks: string[] = [];
      let tail = '';
      for (let i = size; i < text.length + size; i += size) {
        const step = splitter.advance(text.slice(0, i));
        blocks.push(...step.blocks);
        tail = step.tail;
      }
      expect(blocks).toEqual(['Intro line\n\n', '```py\nx = 1\n\ny = 2\n```\n\n', '- a\n- b\n\n']);
      expect(tail).toBe('tail');
    }
  });
});
