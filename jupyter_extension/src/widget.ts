/**
 * The anywidget entry: `EventPane` in nbsession/widgets/pane.py renders through this module.
 */
import { initialState, reduce } from './pane/reducer';
import type { WireEvent } from './pane/types';

interface WidgetModel {
  get(name: string): unknown;
  on(event: string, callback: (...args: any[]) => void): void;
  off(event?: string, callback?: (...args: any[]) => void): void;
  send(content: unknown): void;
}

function render({ model, el }: { model: WidgetModel; el: HTMLElement }): () => void {
  let state = initialState(String(model.get('session_id') ?? ''));
  const out = document.createElement('pre');
  el.appendChild(out);
  const onMessage = (msg: { kind?: string; events?: { seq: number | null; event: WireEvent }[] }) => {
    for (const { seq, event } of msg.events ?? []) {
      state = reduce(state, event, seq);
    }
    out.textContent = `${state.status}`;
  };
  model.on('msg:custom', onMessage);
  model.send({ kind: 'ready' });
  return () => model.off('msg:custom', onMessage);
}

export default { render };
