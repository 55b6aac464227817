/**
 * The pane module's public interface, shared by the notebook widget (src/widget.ts) and the
 * JupyterLab sidebar.
 *
 *     const pane = new Pane(host, { sessionId, actions });     // a view of one session
 *     const connection = followDirect(pane, { baseUrl, sessionId });  // direct mode
 *
 * or feed it yourself: `pane.dispatch(event, seq)` (relay mode), with `actions` sending the
 * answers wherever they must go.
 */
import { DirectConnection, type DirectOptions } from './connection';
import { Pane } from './pane';

export { ApiError } from './actions';
export type { ElicitationBody, PaneActions, ResumeBody } from './actions';
export { apiError, DirectConnection, xsrfCookie } from './connection';
export type { DirectOptions, FetchLike } from './connection';
export { BlockSplitter, renderMarkdown } from './markdown';
export { Pane } from './pane';
export type { PaneOptions } from './pane';
export { elapsedMs, fromSnapshot, initialState, reduce, reduceAll } from './reducer';
export { formFields, validate } from './schemaForm';
export { SSEParser } from './sse';
export * from './types';
export { PaneView, renderDiff, statusText, usageText } from './view';

/**
 * Mount a pane on `host` that follows the session over the hosting server's REST API.
 * Returns the pane and its connection; `dispose()` stops both.
 */
export function mountDirect(
  host: HTMLElement,
  options: Omit<DirectOptions, 'dispatch' | 'state'>
): { pane: Pane; connection: DirectConnection; dispose(): void } {
  let pane: Pane | null = null;
  const connection = new DirectConnection({
    ...options,
    dispatch: (event, seq) => pane?.dispatch(event, seq),
    state: () => pane!.state
  });
  pane = new Pane(host, { sessionId: options.sessionId, actions: connection });
  void connection.start();
  const mounted = pane;
  return {
    pane: mounted,
    connection,
    dispose() {
      connection.stop();
      mounted.dispose();
    }
  };
}

/**
 * The Jupyter server's base URL as the page states it (JupyterLab and Notebook 7 pages carry
 * it in `#jupyter-config-data`), or null on a page no Jupyter server served.
 */
export function pageBaseUrl(): string | null {
  const node = typeof document === 'undefined' ? null : document.getElementById('jupyter-config-data');
  if (!node?.textContent) {
    return null;
  }
  try {
    const config = JSON.parse(node.textContent);
    return typeof config.baseUrl === 'string' ? config.baseUrl : null;
  } catch {
    return null;
  }
}
