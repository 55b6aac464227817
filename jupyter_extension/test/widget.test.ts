/**
 * @jest-environment jsdom
 *
 * The notebook widget's relay mode: what the kernel relays is kept from the model's creation,
 * so a view that renders later (the kernel busy in a blocking cell cannot replay it) shows it.
 */
import { readFileSync } from 'fs';
import { join } from 'path';

import widget, { RELAY_WAIT } from '../src/widget';
import type { Envelope } from '../src/pane/types';

type Callback = (...args: any[]) => void;

/** The part of anywidget's model proxy the widget uses; `sent` is what went to the kernel. */
class FakeModel {
  sent: unknown[] = [];
  private listeners = new Map<string, Set<Callback>>();

  constructor(private readonly state: Record<string, unknown>) {}

  get(name: string): unknown {
    return this.state[name];
  }

  on(event: string, callback: Callback): void {
    if (!this.listeners.has(event)) {
      this.listeners.set(event, new Set());
    }
    this.listeners.get(event)!.add(callback);
  }

  off(event?: string, callback?: Callback): void {
    if (event && callback) {
      this.listeners.get(event)?.delete(callback);
    }
  }

  send(content: unknown): void {
    this.sent.push(content);
  }

  /** A custom message from the kernel. */
  receive(content: unknown): void {
    this.listeners.get('msg:custom')?.forEach(callback => callback(content));
  }
}

const events: Envelope[] = JSON.parse(
  readFileSync(join(__dirname, 'fixtures', 'approve.json'), 'utf8')
);
const upToPrompt = events.slice(0, events.findIndex(e => e.event.type === 'tool_call_confirmation') + 1);

function flushed(el: HTMLElement): HTMLElement {
  jest.runOnlyPendingTimers();
  return el;
}

beforeEach(() => jest.useFakeTimers());
afterEach(() => {
  jest.useRealTimers();
  document.body.replaceChildren();
});

describe('relay mode', () => {
  it('shows events relayed before the view rendered, and asks only for later ones', () => {
    const model = new FakeModel({ session_id: 's', base_url: '', pane_id: 'p-1' });
    const dispose = widget.initialize({ model });
    model.receive({ kind: 'events', events: upToPrompt });
    const el = document.body.appendChild(document.createElement('div'));
    const cleanup = widget.render({ model, el });
    flushed(el);
    expect(el.querySelector('.nbsession-pane-status')!.textContent).toMatch(/^Waiting for approval/);
    const lastSeq = upToPrompt[upToPrompt.length - 1].seq;
    expect(model.sent).toEqual([{ kind: 'ready', mode: 'relay', since: lastSeq }]);

    // Later batches reach the rendered view; the kernel's replay of old ones adds nothing.
    model.receive({ kind: 'events', events });
    model.receive({ kind: 'events', events: upToPrompt });
    flushed(el);
    expect(el.querySelector('.nbsession-pane-status')!.textContent).toMatch(/^Done/);
    expect(el.querySelectorAll('.nbsession-pane-tool')).toHaveLength(1);
    cleanup();
    dispose();
  });

  it('says after a click that the answer may wait for the kernel, until it arrives', () => {
    const model = new FakeModel({ session_id: 's', base_url: '', pane_id: 'p-2' });
    const dispose = widget.initialize({ model });
    model.receive({ kind: 'events', events: upToPrompt });
    const el = document.body.appendChild(document.createElement('div'));
    const cleanup = widget.render({ model, el });
    flushed(el);
    const approve = [...el.querySelectorAll('button')].find(b => b.textContent === 'Approve')!;
    approve.click();
    flushed(el);
    expect(model.sent).toContainEqual({ kind: 'resume', body: { confirmation: 'approve' } });
    const notice = el.querySelector<HTMLElement>('.nbsession-pane-notice')!;
    expect(notice.hidden).toBe(false);
    expect(notice.textContent).toBe(RELAY_WAIT);
    const answered = events.findIndex(e => e.event.type === 'authorization_event');
    model.receive({ kind: 'events', events: events.slice(0, answered + 1) });
    flushed(el);
    expect(notice.hidden).toBe(true);
    cleanup();
    dispose();
  });
});
