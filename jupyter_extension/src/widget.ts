/**
 * The anywidget entry: `EventPane` (nbsession/widgets/pane.py) renders through this module.
 *
 * Traits: `session_id`, and `base_url`: the hosting Jupyter server's base URL path for direct
 * mode, `"auto"` to use the page's own Jupyter server when there is one, or empty for relay
 * mode. Custom messages, kernel -> view: `{kind: "events", events: [{seq, event} | event]}`;
 * view -> kernel: `{kind: "ready", mode: "direct" | "relay"}` once rendered (the kernel replays
 * what it relayed before), and in relay mode the answers `{kind: "resume" | "elicitation" |
 * "cancel", body}` where `body` is the REST body of that route.
 */
import { mountDirect, Pane, pageBaseUrl } from './pane/index';
import type { PaneActions } from './pane/actions';
import type { Envelope, WireEvent } from './pane/types';

interface WidgetModel {
  get(name: string): unknown;
  on(event: string, callback: (...args: any[]) => void): void;
  off(event?: string, callback?: (...args: any[]) => void): void;
  send(content: unknown): void;
}

interface RelayMessage {
  kind?: string;
  events?: (Envelope | WireEvent)[];
}

function baseUrlOf(model: WidgetModel): string {
  const value = String(model.get('base_url') ?? '');
  return value === 'auto' ? pageBaseUrl() ?? '' : value;
}

function render({ model, el }: { model: WidgetModel; el: HTMLElement }): () => void {
  const sessionId = String(model.get('session_id') ?? '');
  const baseUrl = baseUrlOf(model);
  if (baseUrl) {
    const mounted = mountDirect(el, { baseUrl, sessionId });
    model.send({ kind: 'ready', mode: 'direct' });
    return () => mounted.dispose();
  }
  const send = (kind: string, body: object): Promise<void> => {
    model.send({ kind, body });
    return Promise.resolve();
  };
  const actions: PaneActions = {
    resume: body => send('resume', body),
    elicitation: body => send('elicitation', body),
    cancel: () => send('cancel', {})
  };
  const pane = new Pane(el, { sessionId, actions });
  pane.dispatch({ type: 'pane.connection', status: 'live' });
  const onMessage = (message: RelayMessage) => {
    if (message?.kind !== 'events' || !Array.isArray(message.events)) {
      return;
    }
    for (const item of message.events) {
      if ('event' in item && typeof item.event === 'object') {
        const { seq, event } = item as Envelope;
        pane.dispatch(event, typeof seq === 'number' ? seq : null);
      } else {
        pane.dispatch(item as WireEvent);
      }
    }
  };
  model.on('msg:custom', onMessage);
  model.send({ kind: 'ready', mode: 'relay' });
  return () => {
    model.off('msg:custom', onMessage);
    pane.dispose();
  };
}

export default { render };
