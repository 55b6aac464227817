/**
 * The sidebar's session list as pure state: what the last poll returned, what the user has
 * paged in, and whether the server is reachable. Functions map (state, input) -> state, so
 * the panel only renders and the behaviour is unit-tested without a browser.
 *
 * Live updates: the panel re-reads the first `shown` sessions every second (`pollQuery`) and
 * replaces what it shows with the answer, so sessions created, renamed, starred or deleted by
 * anyone appear within a second (a new one adds a row: the rows paged in stay). `Load more` asks for the page after the last one read, with
 * the cursor the server sent (`X-Next-Cursor`); no cursor means nothing more to load (also
 * from a server that ignores `limit` and sends the whole list).
 */

/** One row of `GET /api/sessions` (SPEC 2), plus the live fields a server may add. */
export interface SessionSummary {
  id: string;
  title: string;
  created_at: string;
  num_messages: number;
  input_tokens?: number;
  output_tokens?: number;
  working_dir?: string;
  starred: boolean;
  /** What the session's turn does now (`state`: `waiting_for_approval`, ...), when live. */
  activity?: { state?: string } | null;
  [key: string]: unknown;
}

/** One answer of `GET /api/sessions`: its rows and the next page's cursor, if any. */
export interface ListPage {
  rows: readonly SessionSummary[];
  next: string | null;
}

export type ListStatus = 'loading' | 'live' | 'reconnecting';

export interface ListState {
  /** Newest first. */
  sessions: readonly SessionSummary[];
  /** How many rows a page asks for. */
  pageSize: number;
  /** How many rows the user has paged in (the poll re-reads that many). */
  shown: number;
  /** Where `Load more` continues (the last read's `X-Next-Cursor`); null at the end. */
  cursor: string | null;
  hasMore: boolean;
  status: ListStatus;
  /** Why the last read failed (the server's message), while reconnecting. */
  error: string | null;
}

export interface ListQuery {
  limit: number;
  before?: string;
}

const WAITING_STATES = new Set(['waiting_for_approval', 'waiting_for_input']);

export function initialList(pageSize = 50): ListState {
  return {
    sessions: [],
    pageSize,
    shown: pageSize,
    cursor: null,
    hasMore: false,
    status: 'loading',
    error: null
  };
}

/** The server's largest page. */
export const MAX_LIMIT = 10_000;

/** The read that refreshes every row shown. */
export function pollQuery(state: ListState): ListQuery {
  return { limit: Math.min(Math.max(state.shown, state.pageSize), MAX_LIMIT) };
}

/** The read for `Load more`: the page after the last one read. */
export function nextPageQuery(state: ListState): ListQuery {
  return state.cursor === null
    ? { limit: state.pageSize }
    : { limit: state.pageSize, before: state.cursor };
}

/**
 * A poll answered: its rows replace the list (a server without paging sent them all).
 *
 * Sessions made since the last read push the others down without pushing the rows the user
 * paged in out of the list: those are kept (the poll read only as many rows as were shown) and
 * the next poll reads that many more. An answer to a poll sent before the list grew here (a
 * `Load more` answered while the poll was on its way) is stale and changes nothing.
 */
export function listReplaced(state: ListState, page: ListPage, query: ListQuery): ListState {
  if (query.limit < pollQuery(state).limit) {
    // Asked before a `Load more` (or a session made here) grew the list: it read fewer rows
    // than are shown now and would drop the ones paged in meanwhile. The next poll reads all.
    return state;
  }
  const rows = newestFirst(unique(page.rows));
  const newest = state.sessions[0];
  const known = new Set(state.sessions.map(row => row.id));
  const arrived =
    newest === undefined ? 0 : rows.filter(row => !known.has(row.id) && before(row, newest)).length;
  const last = rows[rows.length - 1];
  const returned = new Set(rows.map(row => row.id));
  const kept =
    arrived > 0 && page.next !== null && last !== undefined
      ? state.sessions.filter(row => !returned.has(row.id) && before(last, row)).slice(0, arrived)
      : [];
  const next: ListState = {
    ...state,
    sessions: [...rows, ...kept],
    shown: Math.max(query.limit, state.pageSize) + arrived,
    // The rows kept end where the last read ended: its cursor still says where more begin.
    cursor: kept.length > 0 ? state.cursor : page.next,
    hasMore: kept.length > 0 ? state.hasMore : page.next !== null,
    status: 'live',
    error: null
  };
  return sameList(state, next) ? state : next;
}

/** A `Load more` page answered: its rows go after those shown. */
export function listAppended(state: ListState, page: ListPage): ListState {
  const sessions = newestFirst(unique([...state.sessions, ...page.rows]));
  return {
    ...state,
    sessions,
    shown: sessions.length,
    cursor: page.next,
    hasMore: page.next !== null,
    status: 'live',
    error: null
  };
}

/** A read failed: keep the rows shown, say the list is reconnecting and why. */
export function listFailed(state: ListState, message: string): ListState {
  if (state.status === 'reconnecting' && state.error === message) {
    return state;
  }
  return { ...state, status: 'reconnecting', error: message };
}

/** A change the user made here, shown before the next poll confirms it. */
export function sessionChanged(
  state: ListState,
  id: string,
  change: Partial<SessionSummary>
): ListState {
  if (!state.sessions.some(row => row.id === id)) {
    return state;
  }
  return {
    ...state,
    sessions: state.sessions.map(row => (row.id === id ? { ...row, ...change, id } : row))
  };
}

/** A session created or imported here: it is listed at once, in its place. */
export function sessionAdded(state: ListState, row: SessionSummary): ListState {
  const sessions = newestFirst([row, ...state.sessions.filter(other => other.id !== row.id)]);
  return { ...state, sessions, shown: Math.max(state.shown, sessions.length) };
}

export function sessionRemoved(state: ListState, id: string): ListState {
  if (!state.sessions.some(row => row.id === id)) {
    return state;
  }
  return { ...state, sessions: state.sessions.filter(row => row.id !== id) };
}

/** Whether the server says the session waits for an answer (approval or form). */
export function isWaiting(row: SessionSummary): boolean {
  return WAITING_STATES.has(String(row.activity?.state ?? ''));
}

/**
 * The sessions waiting for the user: those the server marks, and those whose open pane shows
 * a pending prompt (a server that lists no live state still lights the badge for them).
 */
export function waitingSessions(state: ListState, paneWaiting: Iterable<string>): Set<string> {
  const waiting = new Set(paneWaiting);
  for (const row of state.sessions) {
    if (isWaiting(row)) {
      waiting.add(row.id);
    }
  }
  return waiting;
}

/** A title for people: untitled sessions show when they were made. */
export function displayTitle(row: Pick<SessionSummary, 'title' | 'created_at'>): string {
  const title = row.title.trim();
  return title || `Untitled session (${row.created_at.slice(0, 16).replace('T', ' ')})`;
}

/** A file name for a session's notebook export: its title, made safe, and its id. */
export function exportFileName(row: Pick<SessionSummary, 'id' | 'title'>, attempt = 0): string {
  const slug = row.title
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  const stem = `${slug || 'session'}-${row.id.replace(/[^A-Za-z0-9]/g, '').slice(0, 8)}`;
  return attempt === 0 ? `${stem}.ipynb` : `${stem}-${attempt + 1}.ipynb`;
}

/** Whether `a` comes before `b` in the list (newer, or as new with a greater id). */
function before(a: SessionSummary, b: SessionSummary): boolean {
  const ta = Date.parse(a.created_at) || 0;
  const tb = Date.parse(b.created_at) || 0;
  return ta > tb || (ta === tb && a.id > b.id);
}

function newestFirst(rows: SessionSummary[]): SessionSummary[] {
  // A stable sort: rows with one timestamp keep the server's order.
  return rows
    .map((row, index) => ({ row, index, time: Date.parse(row.created_at) || 0 }))
    .sort((a, b) => b.time - a.time || a.index - b.index)
    .map(({ row }) => row);
}

function unique(rows: readonly SessionSummary[]): SessionSummary[] {
  const seen = new Set<string>();
  return rows.filter(row => !seen.has(row.id) && seen.add(row.id) !== undefined);
}

function sameList(a: ListState, b: ListState): boolean {
  return (
    a.status === b.status &&
    a.error === b.error &&
    a.hasMore === b.hasMore &&
    a.cursor === b.cursor &&
    a.shown === b.shown &&
    a.sessions.length === b.sessions.length &&
    a.sessions.every((row, i) => JSON.stringify(row) === JSON.stringify(b.sessions[i]))
  );
}
