/**
 * The sidebar's session list: live replacement by the poll, paging, local edits before the
 * poll confirms them, the waiting badge's count, and the reconnecting state.
 */
import {
  displayTitle,
  exportFileName,
  initialList,
  listAppended,
  listFailed,
  listReplaced,
  nextPageQuery,
  pollQuery,
  sessionAdded,
  sessionChanged,
  sessionRemoved,
  type ListPage,
  type SessionSummary,
  waitingSessions
} from '../src/sidebar/model';

function page(rows: SessionSummary[], next: string | null = null): ListPage {
  return { rows, next };
}

function row(id: string, minute: number, extra: Partial<SessionSummary> = {}): SessionSummary {
  return {
    id,
    title: `Session ${id}`,
    created_at: `2026-11-30T10:${String(minute).padStart(2, '0')}:00Z`,
    num_messages: 0,
    starred: false,
    ...extra
  };
}

describe('the session list', () => {
  it('shows a poll newest first, whatever order the server sent', () => {
    const state = listReplaced(initialList(3), page([row('a', 1), row('c', 3), row('b', 2)]), {
      limit: 3
    });
    expect(state.sessions.map(r => r.id)).toEqual(['c', 'b', 'a']);
    expect(state.status).toBe('live');
  });

  it('replaces its rows on each poll: creations, renames and deletions from anywhere', () => {
    let state = listReplaced(initialList(10), page([row('a', 1), row('b', 2)]), { limit: 10 });
    state = listReplaced(
      state,
      page([row('c', 3), row('a', 1, { title: 'Renamed elsewhere' })]),
      pollQuery(state)
    );
    expect(state.sessions.map(r => [r.id, r.title])).toEqual([
      ['c', 'Session c'],
      ['a', 'Renamed elsewhere']
    ]);
  });

  it('keeps the same state object when a poll changes nothing (no re-render)', () => {
    const rows = [row('a', 1), row('b', 2)];
    const state = listReplaced(initialList(10), page(rows), { limit: 10 });
    expect(listReplaced(state, page(rows.map(r => ({ ...r }))), pollQuery(state))).toBe(state);
  });

  it('pages older sessions in with the server’s cursor and polls all that are shown', () => {
    let state = listReplaced(initialList(2), page([row('d', 4), row('c', 3)], 'after-c'), {
      limit: 2
    });
    expect(state.hasMore).toBe(true);
    const next = nextPageQuery(state);
    expect(next).toEqual({ limit: 2, before: 'after-c' });
    state = listAppended(state, page([row('b', 2), row('a', 1)], 'after-a'));
    expect(state.sessions.map(r => r.id)).toEqual(['d', 'c', 'b', 'a']);
    expect(pollQuery(state)).toEqual({ limit: 4 });
    state = listAppended(state, page([]));
    expect(state.hasMore).toBe(false);
    // The next poll re-reads all four; a session made meanwhile adds a row and pushes none
    // out: `a` stays (nothing more to load), and the poll after reads five.
    state = listReplaced(
      state,
      page([row('e', 5), row('d', 4), row('c', 3), row('b', 2)], 'after-b'),
      pollQuery(state)
    );
    expect(state.sessions.map(r => r.id)).toEqual(['e', 'd', 'c', 'b', 'a']);
    expect(state.hasMore).toBe(false);
    expect(pollQuery(state)).toEqual({ limit: 5 });
    state = listReplaced(
      state,
      page([row('e', 5), row('d', 4), row('c', 3), row('b', 2), row('a', 1)]),
      pollQuery(state)
    );
    expect(state.sessions.map(r => r.id)).toEqual(['e', 'd', 'c', 'b', 'a']);
  });

  it('ignores a poll sent before a `Load more` that was answered first', () => {
    let state = listReplaced(initialList(2), page([row('d', 4), row('c', 3)], 'after-c'), {
      limit: 2
    });
    const poll = pollQuery(state); // on its way while the user pages in two more
    state = listAppended(state, page([row('b', 2), row('a', 1)], 'after-a'));
    const paged = state;
    state = listReplaced(state, page([row('d', 4), row('c', 3)], 'after-c'), poll);
    expect(state).toBe(paged);
    expect(nextPageQuery(state)).toEqual({ limit: 2, before: 'after-a' });
  });

  it('goes on where the last read ended once the poll reads all that are shown', () => {
    let state = listReplaced(initialList(2), page([row('d', 4), row('c', 3)], 'after-c'), {
      limit: 2
    });
    state = listReplaced(state, page([row('d', 4), row('b', 2)], 'after-b'), pollQuery(state));
    // `c` was deleted elsewhere: `b` moves up, nothing was made, the cursor follows the read.
    expect(state.sessions.map(r => r.id)).toEqual(['d', 'b']);
    expect(nextPageQuery(state)).toEqual({ limit: 2, before: 'after-b' });
  });

  it('shows everything, with nothing more to load, when the server sends no cursor', () => {
    const rows = [row('a', 1), row('b', 2), row('c', 3), row('d', 4)];
    const state = listReplaced(initialList(2), page(rows), { limit: 2 });
    expect(state.sessions).toHaveLength(4);
    expect(state.hasMore).toBe(false);
  });

  it('reconnects without losing the rows, and says why', () => {
    const live = listReplaced(initialList(10), page([row('a', 1)]), { limit: 10 });
    const failed = listFailed(live, 'The Jupyter server cannot be reached.');
    expect(failed.status).toBe('reconnecting');
    expect(failed.error).toBe('The Jupyter server cannot be reached.');
    expect(failed.sessions).toEqual(live.sessions);
    expect(listFailed(failed, 'The Jupyter server cannot be reached.')).toBe(failed);
    const back = listReplaced(failed, page([row('a', 1)]), pollQuery(failed));
    expect(back.status).toBe('live');
    expect(back.error).toBeNull();
  });

  it('applies the user’s own changes at once', () => {
    let state = listReplaced(initialList(10), page([row('a', 1), row('b', 2)]), { limit: 10 });
    state = sessionChanged(state, 'a', { starred: true, title: 'Mine' });
    expect(state.sessions.find(r => r.id === 'a')).toMatchObject({ starred: true, title: 'Mine' });
    state = sessionAdded(state, row('c', 3));
    expect(state.sessions[0].id).toBe('c');
    state = sessionRemoved(state, 'b');
    expect(state.sessions.map(r => r.id)).toEqual(['c', 'a']);
    expect(sessionRemoved(state, 'unknown')).toBe(state);
  });

  it('counts the sessions waiting for an answer: from the server and from open panes', () => {
    const state = listReplaced(
      initialList(10),
      page([
        row('a', 1, { activity: { state: 'waiting_for_approval' } }),
        row('b', 2, { activity: { state: 'running_tool' } }),
        row('c', 3, { activity: { state: 'waiting_for_input' } }),
        row('d', 4)
      ]),
      { limit: 10 }
    );
    expect([...waitingSessions(state, [])].sort()).toEqual(['a', 'c']);
    expect([...waitingSessions(state, ['d', 'a'])].sort()).toEqual(['a', 'c', 'd']);
  });

  it('names untitled sessions and their exports readably and safely', () => {
    expect(displayTitle(row('a', 5, { title: '  ' }))).toBe('Untitled session (2026-11-30 10:05)');
    expect(exportFileName({ id: 'f3a9c2d1-0000', title: 'List the files: ../etc' })).toBe(
      'list-the-files-etc-f3a9c2d1.ipynb'
    );
    expect(exportFileName({ id: 'x1', title: '' }, 1)).toBe('session-x1-2.ipynb');
  });
});
