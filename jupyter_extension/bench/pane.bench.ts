/**
 * The pane under a 10,000-delta turn, in jsdom (a stand-in for a browser's DOM: absolute
 * times differ in a browser, ratios and counts hold).
 *
 * Prints: reducer cost per delta; a live pane fed at a steady delta rate (renders/s, the
 * longest render, DOM nodes at the end, whether the text matches); bytes of the `/events`
 * stream and of relay batches against the final text; and, as the baseline, a naive pane
 * that re-renders the whole Markdown on every delta (measured on a prefix, extrapolated).
 */
import type { PaneActions } from '../src/pane/actions';
import { renderMarkdown } from '../src/pane/markdown';
import { Pane } from '../src/pane/pane';
import { initialState, reduce } from '../src/pane/reducer';
import type { TextEntry, WireEvent } from '../src/pane/types';

const DELTAS = 10_000;
const RATE = 2_000; // deltas per second fed to the live pane
const STAMP = '2026-11-30T20:14:43.675337Z';
const SESSION = '99a52ec1-e693-4aed-9887-ed26b546f1b0';

const noActions: PaneActions = {
  resume: async () => undefined,
  elicitation: async () => undefined,
  cancel: async () => undefined
};

/** Deltas of a plausible answer: words, paragraphs, now and then a fenced code block. */
function deltas(): string[] {
  const out: string[] = [];
  for (let i = 0; i < DELTAS; i++) {
    let piece = `word${i % 97} `;
    if (i % 60 === 59) {
      piece += '\n\n';
    }
    if (i % 1000 === 500) {
      piece += '\n\n```python\nfor i in range(3):\n    print(i)\n```\n\n';
    }
    out.push(piece);
  }
  return out;
}

function event(content: string): WireEvent {
  return { type: 'agent_choice', agent_name: 'root', timestamp: STAMP, content, session_id: SESSION };
}

function ms(start: number): number {
  return performance.now() - start;
}

async function main(): Promise<void> {
  const pieces = deltas();
  const text = pieces.join('');
  const textBytes = Buffer.byteLength(text);
  const rows: [string, string][] = [];

  // 1. The reducer alone.
  let start = performance.now();
  let state = reduce(initialState('s'), { type: 'stream_started' }, 1);
  pieces.forEach((piece, i) => {
    state = reduce(state, event(piece), i + 2);
  });
  const reduceMs = ms(start);
  rows.push(['reducer, 10,000 deltas', `${reduceMs.toFixed(1)} ms (${((1000 * reduceMs) / DELTAS).toFixed(2)} µs/delta)`]);
  if ((state.entries[0] as TextEntry).text !== text) {
    throw new Error('the reduced text differs from the deltas');
  }

  // 2. A live pane fed at RATE deltas/s with real timers.
  const host = document.createElement('div');
  document.body.appendChild(host);
  const pane = new Pane(host, { sessionId: 's', actions: noActions });
  const renderTimes: number[] = [];
  const render = pane.view.render.bind(pane.view);
  pane.view.render = (s, now) => {
    const t = performance.now();
    render(s, now);
    renderTimes.push(performance.now() - t);
  };
  pane.dispatch({ type: 'stream_started', timestamp: new Date().toISOString() }, 1);
  start = performance.now();
  const perTick = RATE / 100; // every 10 ms
  for (let i = 0; i < DELTAS; i += perTick) {
    for (let j = i; j < Math.min(i + perTick, DELTAS); j++) {
      pane.dispatch(event(pieces[j]), j + 2);
    }
    await new Promise(resolve => setTimeout(resolve, 10));
  }
  await new Promise(resolve => setTimeout(resolve, 120));
  const wall = ms(start) / 1000;
  const shown = host.querySelector('.nbsession-pane-answer')!.textContent!.replace(/\s+/g, '');
  const expected = text.replace(/[`#]|python/g, '').replace(/\s+/g, '');
  rows.push(['live pane: deltas/s fed', `${(DELTAS / wall).toFixed(0)} over ${wall.toFixed(1)} s`]);
  rows.push(['live pane: renders', `${renderTimes.length} (${(renderTimes.length / wall).toFixed(1)}/s)`]);
  rows.push(['live pane: render time', `total ${renderTimes.reduce((a, b) => a + b, 0).toFixed(0)} ms, longest ${Math.max(...renderTimes).toFixed(1)} ms`]);
  rows.push(['live pane: DOM elements at the end', String(host.querySelectorAll('*').length)]);
  rows.push(['live pane: text shown = text streamed', String(shown === expected)]);
  pane.dispose();

  // 3. Bytes on the wire against the text.
  const sseBytes = pieces.reduce(
    (sum, piece, i) => sum + Buffer.byteLength(`id: ${i + 2}\ndata: ${JSON.stringify(event(piece))}\n\n`),
    0
  );
  rows.push(['final text', `${textBytes} bytes`]);
  rows.push(['/events stream (one event per delta)', `${sseBytes} bytes = ${(sseBytes / textBytes).toFixed(1)}x the text`]);
  // Relay mode merges each batch's deltas (EventPane.relay): at 20 batches/s and RATE deltas/s.
  const perBatch = RATE / 20;
  let relayBytes = 0;
  for (let i = 0; i < DELTAS; i += perBatch) {
    const content = pieces.slice(i, i + perBatch).join('');
    relayBytes += Buffer.byteLength(
      JSON.stringify({ kind: 'events', events: [{ seq: i + perBatch, event: { type: 'agent_choice', content, agent_name: 'root' } }] })
    );
  }
  rows.push([`relay batches (20/s at ${RATE} deltas/s)`, `${relayBytes} bytes = ${(relayBytes / textBytes).toFixed(2)}x the text`]);

  // 4. Baseline: a naive pane re-rendering all the Markdown on each delta (first 2,000).
  const naiveHost = document.createElement('div');
  const prefix = 1000;
  start = performance.now();
  let sofar = '';
  for (let i = 0; i < prefix; i++) {
    sofar += pieces[i];
    naiveHost.innerHTML = renderMarkdown(sofar);
  }
  const naiveMs = ms(start);
  // Its cost per delta grows with the text: the full turn costs about (DELTAS/prefix)^2 times.
  const naiveFull = naiveMs * (DELTAS / prefix) ** 2;
  const paneTotal = renderTimes.reduce((a, b) => a + b, 0);
  rows.push([`naive pane, first ${prefix} deltas`, `${naiveMs.toFixed(0)} ms`]);
  rows.push(['naive pane, whole turn (extrapolated)', `~${(naiveFull / 1000).toFixed(0)} s = ${(naiveFull / paneTotal).toFixed(0)}x the pane's render time`]);

  const width = Math.max(...rows.map(r => r[0].length));
  console.log(`event pane, ${DELTAS} deltas (jsdom, node ${process.version})`);
  for (const [name, value] of rows) {
    console.log(`  ${name.padEnd(width)}  ${value}`);
  }
}

await main();
