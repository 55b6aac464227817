/**
 * The anywidget entry: `EventPane` (nbsession/widgets/pane.py) renders through this module.
 *
 * Traits: `session_id`, `pane_id` (unique per widget), and `base_url`: the hosting Jupyter
 * server's base URL path for direct mode, `"auto"` to use the page's own Jupyter server when
 * there is one, or empty for relay mode. Custom messages, kernel -> model: `{kind: "events",
 * events: [{seq, event} | event]}`; view -> kernel: `{kind: "ready", mode: "direct" | "relay",
 * since?: seq}` once rendered (the kernel replays what it relayed after `since`), and in relay
 * mode the answers `{kind: "resume" | "elicitation" | "cancel", body}` where `body` is the
 * REST body of that route.
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

type Relayed = Envelope | WireEvent;

/**
 * Shown in a relay-mode pane from an answer until the kernel has passed it on. A kernel
 * running a blocking cell reads widget messages only on a subshell: with JupyterLab's
 * `commsOverSubshells` turned off (or a front end without subshells) the answer waits for
 * the cell to end, which waits for the answer. The user is told what else works.
 */
export const RELAY_WAIT =
  'Sent to the kernel. If this cell is still running, the kernel may only read it when the ' +
  'cell ends: JupyterLab delivers it during a running cell when "Kernel Comms over ' +
  'subshells" is on (Settings › Settings Editor › Kernels). Otherwise interrupt the kernel ' +
  'to stop the turn, or answer with session.approve() / .reject() from another thread.';

/**
 * What the kernel relayed to one widget model, kept from the model's creation on.
 *
 * Custom messages reach only listeners that exist when they arrive, and a view renders some
 * time after its model is created. A view could ask the kernel to replay what it missed, but
 * a kernel busy in a blocking cell reads no message until the cell ends: so the model keeps
 * every relayed batch itself, and a view that renders late starts from them.
 */
interface RelayStore {
  items: Relayed[];
  views: Set<(items: Relayed[]) => void>;
}

const stores = new Map<string, RelayStore>();

function storeOf(model: WidgetModel): RelayStore | undefined {
  return stores.get(String(model.get('pane_id') ?? ''));
}

function initialize({ model }: { model: WidgetModel }): () => void {
  const key = String(model.get('pane_id') ?? '');
  const store: RelayStore = { items: [], views: new Set() };
  stores.set(key, store);
  const onMessage = (message: RelayMessage) => {
    if (message?.kind !== 'events' || !Array.isArray(message.events)) {
      return;
    }
    store.items.push(...message.events);
    store.views.forEach(view => view(message.events!));
  };
  model.on('msg:custom', onMessage);
  return () => {
    model.off('msg:custom', onMessage);
    stores.delete(key);
  };
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
  let pane: Pane | null = null;
  const send = (kind: string, body: object): Promise<void> => {
    model.send({ kind, body });
    // Cleared by the event that shows the answer arrived; it stays while the kernel cannot
    // read it (see RELAY_WAIT).
    if (kind !== 'cancel') {
      pane?.dispatch({ type: 'pane.notice', message: RELAY_WAIT });
    }
    return Promise.resolve();
  };
  const actions: PaneActions = {
    resume: body => send('resume', body),
    elicitation: body => send('elicitation', body),
    cancel: () => send('cancel', {})
  };
  const shown = new Pane(el, { sessionId, actions });
  pane = shown;
  shown.dispatch({ type: 'pane.connection', status: 'live' });
  const show = (items: Relayed[]) => {
    for (const item of items) {
      if ('event' in item && typeof item.event === 'object') {
        const { seq, event } = item as Envelope;
        shown.dispatch(event, typeof seq === 'number' ? seq : null);
      } else {
        shown.dispatch(item as WireEvent);
      }
    }
  };
  const store = storeOf(model);
  if (store) {
    show(store.items);
    store.views.add(show);
  }
  // A model made before this module loaded (a reloaded page) has no store: the kernel
  // replays what it relayed when it reads this (sequence numbers drop what is shown already).
  const onMessage = (message: RelayMessage) => {
    if (message?.kind === 'events' && Array.isArray(message.events)) {
      show(message.events);
    }
  };
  if (!store) {
    model.on('msg:custom', onMessage);
  }
  model.send({ kind: 'ready', mode: 'relay', since: shown.state.lastSeq });
  return () => {
    store?.views.delete(show);
    model.off('msg:custom', onMessage);
    shown.dispose();
  };
}

export default { initialize, render };
