/**
 * Open documents and agents' writes: which bus events name a written file, when the disk
 * differs from what a document knows, and what the controller does for each document
 * (reload, notice, nothing, or wait for the browser's own save).
 */
import {
  type BusEvent,
  changedOnDisk,
  CONTENTS_SCHEMA,
  FILE_WRITTEN_SCHEMA,
  type OpenDocument,
  reaction,
  ReloadController,
  sameVersion,
  type ReloadHost,
  type Version,
  writtenPath
} from '../src/reload/controller';

describe('bus events', () => {
  it('name the path of a save, from the contents manager or from nbsession', () => {
    expect(writtenPath({ schema_id: CONTENTS_SCHEMA, action: 'save', path: 'a/b.ipynb' })).toBe(
      'a/b.ipynb'
    );
    expect(writtenPath({ schema_id: FILE_WRITTEN_SCHEMA, action: 'save', path: '/c.txt' })).toBe(
      'c.txt'
    );
  });

  it('ignore reads, renames, other schemas and malformed events', () => {
    expect(writtenPath({ schema_id: CONTENTS_SCHEMA, action: 'get', path: 'a.txt' })).toBeNull();
    expect(
      writtenPath({ schema_id: CONTENTS_SCHEMA, action: 'rename', path: 'b', source_path: 'a' })
    ).toBeNull();
    const other = { schema_id: 'https://example.org/other/v1', action: 'save', path: 'a' };
    expect(writtenPath(other)).toBeNull();
    expect(writtenPath({ schema_id: CONTENTS_SCHEMA, action: 'save' })).toBeNull();
  });
});

describe('a change on disk', () => {
  const at = (last_modified: string, hash?: string): Version => ({ last_modified, hash });

  it('is decided by the content hash when both sides have one', () => {
    expect(changedOnDisk(at('2026-12-01T02:00:01Z', 'h1'), at('2026-12-01T02:00:00Z', 'h1'))).toBe(
      false
    );
    expect(changedOnDisk(at('2026-12-01T02:00:00Z', 'h2'), at('2026-12-01T02:00:00Z', 'h1'))).toBe(
      true
    );
  });

  it('falls back to the modification time, and is no change while the document loads', () => {
    expect(changedOnDisk(at('2026-12-01T02:00:00.5Z'), at('2026-12-01T02:00:00.5Z'))).toBe(false);
    expect(changedOnDisk(at('2026-12-01T02:00:00.6Z'), at('2026-12-01T02:00:00.5Z'))).toBe(true);
    expect(changedOnDisk(at('2026-12-01T02:00:00Z'), null)).toBe(false);
  });

  it('is the same version when hash and time are, whatever the object', () => {
    expect(sameVersion(at('2026-12-01T02:00:00Z', 'h1'), at('2026-12-01T02:00:00Z', 'h1'))).toBe(
      true
    );
    expect(sameVersion(at('2026-12-01T02:00:00Z', 'h1'), at('2026-12-01T02:00:01Z', 'h1'))).toBe(
      false
    );
    expect(sameVersion(null, null)).toBe(true);
    expect(sameVersion(null, at('2026-12-01T02:00:00Z'))).toBe(false);
  });

  it('reloads a clean document, notifies over unsaved changes, waits for a save', () => {
    expect(reaction({ saving: false, dirty: false }, true)).toBe('reload');
    expect(reaction({ saving: false, dirty: true }, true)).toBe('notify');
    expect(reaction({ saving: false, dirty: true }, false)).toBe('none');
    expect(reaction({ saving: true, dirty: true }, true)).toBe('wait');
  });
});

/** A document whose disk version and state the test sets; reverting loads the disk's. */
class FakeDocument implements OpenDocument {
  constructor(
    readonly path: string,
    private version: Version | null
  ) {}

  /** A copy on each read, as a JupyterLab context's `contentsModel`. */
  get known(): Version | null {
    return this.version === null ? null : { ...this.version };
  }
  set known(version: Version | null) {
    this.version = version;
  }

  dirty = false;
  saving = false;
  reverts = 0;

  async revert(): Promise<void> {
    this.reverts += 1;
    this.known = { ...disk.get(this.path) };
    this.dirty = false;
  }
}

const disk = new Map<string, Version>();

class FakeHost implements ReloadHost {
  open: FakeDocument[] = [];
  notices = new Map<OpenDocument, () => void>();
  failures: unknown[] = [];
  reads = 0;

  documents(path: string): OpenDocument[] {
    return this.open.filter(document => document.path === path);
  }
  async diskVersion(path: string): Promise<Version> {
    this.reads += 1;
    const version = disk.get(path);
    if (version === undefined) {
      throw new Error(`404: ${path}`);
    }
    return { ...version };
  }
  notify(document: OpenDocument, reload: () => void): void {
    this.notices.set(document, reload);
  }
  dismiss(document: OpenDocument): void {
    this.notices.delete(document);
  }
  failed(_document: OpenDocument, error: unknown): void {
    this.failures.push(error);
  }
}

/** Let the controller's promise chains run to their end. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) {
    await Promise.resolve();
  }
}

function saved(path: string, schema_id = CONTENTS_SCHEMA): BusEvent {
  return { schema_id, action: 'save', path };
}

describe('the reload controller', () => {
  let host: FakeHost;
  let controller: ReloadController;

  beforeEach(() => {
    disk.clear();
    host = new FakeHost();
    controller = new ReloadController(host);
  });

  function opened(path: string, hash: string): FakeDocument {
    disk.set(path, { hash });
    const document = new FakeDocument(path, { hash });
    host.open.push(document);
    return document;
  }

  it("reloads an open, unmodified document when an agent's write changed it", async () => {
    const notebook = opened('nb.ipynb', 'v1');
    const other = opened('other.ipynb', 'o1');
    disk.set('nb.ipynb', { hash: 'v2' });
    controller.handle(saved('nb.ipynb'));
    await settle();
    expect(notebook.reverts).toBe(1);
    expect(notebook.known).toEqual({ hash: 'v2' });
    expect(other.reverts).toBe(0);
    expect(host.notices.size).toBe(0);
  });

  it('keeps unsaved changes and offers a reload that shows the new version', async () => {
    const text = opened('notes.txt', 'v1');
    text.dirty = true;
    disk.set('notes.txt', { hash: 'v2' });
    controller.handle(saved('notes.txt', FILE_WRITTEN_SCHEMA));
    await settle();
    expect(text.reverts).toBe(0);
    expect(text.dirty).toBe(true);
    const reload = host.notices.get(text);
    expect(reload).toBeDefined();
    reload?.();
    await settle();
    expect(text.reverts).toBe(1);
    expect(text.known).toEqual({ hash: 'v2' });
  });

  it("does nothing for the browser's own save, even when its event comes mid-save", async () => {
    const notebook = opened('nb.ipynb', 'v1');
    notebook.dirty = true;
    notebook.saving = true;
    disk.set('nb.ipynb', { hash: 'v2' }); // written by the save, not yet acknowledged
    controller.handle(saved('nb.ipynb'));
    await settle();
    expect(host.reads).toBe(0);
    // The save ends: the document knows the version it wrote.
    notebook.saving = false;
    notebook.dirty = false;
    notebook.known = { hash: 'v2' };
    controller.saveEnded(notebook);
    await settle();
    expect(host.reads).toBe(1);
    expect(notebook.reverts).toBe(0);
    expect(host.notices.size).toBe(0);
  });

  it('checks again after a save when an agent wrote meanwhile', async () => {
    const notebook = opened('nb.ipynb', 'v1');
    notebook.saving = true;
    controller.handle(saved('nb.ipynb'));
    await settle();
    notebook.saving = false;
    notebook.known = { hash: 'v2' };
    disk.set('nb.ipynb', { hash: 'v3' }); // the agent's write after the save
    controller.saveEnded(notebook);
    await settle();
    expect(notebook.reverts).toBe(1);
    expect(notebook.known).toEqual({ hash: 'v3' });
  });

  it('compares again when the document was saved while the disk was read', async () => {
    const notebook = opened('nb.ipynb', 'v1');
    notebook.dirty = true;
    disk.set('nb.ipynb', { hash: 'v2' }); // an agent's write
    const read = host.diskVersion.bind(host);
    host.diskVersion = async path => {
      const version = await read(path);
      if (host.reads === 1) {
        // The user's save (over the agent's write, after JupyterLab asked) lands while the
        // check reads the disk, and then the user types on.
        disk.set('nb.ipynb', { hash: 'mine' });
        notebook.known = { hash: 'mine' };
      }
      return version;
    };
    controller.handle(saved('nb.ipynb'));
    await settle();
    await settle();
    expect(host.reads).toBe(2);
    expect(notebook.reverts).toBe(0);
    expect(host.notices.size).toBe(0);
  });

  it('runs one check at a time per document, plus one for a burst of events', async () => {
    const notebook = opened('nb.ipynb', 'v1');
    disk.set('nb.ipynb', { hash: 'v2' });
    for (let i = 0; i < 5; i++) {
      controller.handle(saved('nb.ipynb'));
    }
    await settle();
    await settle();
    expect(host.reads).toBe(2);
    expect(notebook.reverts).toBe(1);
  });

  it('takes the notice back once the document was saved or reloaded elsewhere', async () => {
    const text = opened('notes.txt', 'v1');
    text.dirty = true;
    disk.set('notes.txt', { hash: 'v2' });
    controller.handle(saved('notes.txt'));
    await settle();
    expect(host.notices.has(text)).toBe(true);
    controller.settled(text);
    expect(host.notices.has(text)).toBe(false);
  });

  it('reports a failed check and changes nothing', async () => {
    const gone = opened('gone.txt', 'v1');
    disk.delete('gone.txt');
    controller.handle(saved('gone.txt'));
    await settle();
    expect(host.failures).toHaveLength(1);
    expect(gone.reverts).toBe(0);
  });
});
