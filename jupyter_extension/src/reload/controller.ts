/**
 * Open documents follow the files agents write, without losing anything the user typed.
 *
 * The server announces writes on its event bus: the contents manager's own `save` event (the
 * `jupyter` toolset's notebook edits go through it, as do the browser's saves) and nbsession's
 * `file_written` (the `filesystem` toolset writes to disk directly). For each open document of
 * that path the controller asks the server for the file's current version and compares it with
 * the version the document last loaded or saved:
 *
 * - the same version: nothing (the browser's own save, or a reload already done);
 * - a save of the document in flight: wait for it to end, then compare again;
 * - a newer version, no unsaved changes: reload the document from disk;
 * - a newer version and unsaved changes: keep them, and tell the user (a notice naming the
 *   file, with a Reload action). Nothing is overwritten without the user's choice.
 *
 * The JupyterLab side (`plugin.ts`) adapts document contexts and notifications to the small
 * interfaces here, so the behaviour is unit-tested without a browser.
 */

/** The contents manager's event schema (jupyter_server's `contents_service/v1`). */
export const CONTENTS_SCHEMA = 'https://events.jupyter.org/jupyter_server/contents_service/v1';
/** nbsession's own event for files its tools write to disk (`nbsession/server/file_events.py`). */
export const FILE_WRITTEN_SCHEMA = 'https://nbsession.dev/events/file_written/v1';

/** One message of the server's event bus, as JupyterLab's EventManager streams it. */
export interface BusEvent {
  schema_id: string;
  [key: string]: unknown;
}

/** The API path (no leading `/`) a bus event says was written, or null for any other event. */
export function writtenPath(event: BusEvent): string | null {
  if (event.schema_id !== CONTENTS_SCHEMA && event.schema_id !== FILE_WRITTEN_SCHEMA) {
    return null;
  }
  if (event.action !== 'save' || typeof event.path !== 'string') {
    return null;
  }
  return event.path.replace(/^\/+/, '');
}

/** A version of a file as the contents API describes it (without its content). */
export interface Version {
  hash?: string | null;
  last_modified?: string | null;
}

/**
 * Whether the file on disk differs from the version a document knows. The content hash
 * decides when both sides have one (jupyter_server 2.11+); otherwise the modification times.
 */
export function changedOnDisk(disk: Version, known: Version | null): boolean {
  if (known === null) {
    return false; // still loading: the load reads the new version anyway
  }
  if (disk.hash && known.hash) {
    return disk.hash !== known.hash;
  }
  return Boolean(disk.last_modified) && disk.last_modified !== known.last_modified;
}

/** Whether two versions a document knew are the same one (the context hands out copies). */
export function sameVersion(a: Version | null, b: Version | null): boolean {
  if (a === null || b === null) {
    return a === b;
  }
  return a.hash === b.hash && a.last_modified === b.last_modified;
}

export type Reaction = 'none' | 'wait' | 'reload' | 'notify';

/** What to do for a document once the disk's version is known. */
export function reaction(
  document: { saving: boolean; dirty: boolean },
  changed: boolean
): Reaction {
  if (document.saving) {
    return 'wait';
  }
  if (!changed) {
    return 'none';
  }
  return document.dirty ? 'notify' : 'reload';
}

/** An open document (a JupyterLab document context) as the controller sees it. */
export interface OpenDocument {
  /** Its API path on the server's default drive. */
  readonly path: string;
  /** Whether it has changes not saved yet. */
  readonly dirty: boolean;
  /** Whether a save of it is in flight. */
  readonly saving: boolean;
  /** The version it last loaded or saved (null while it loads). */
  readonly known: Version | null;
  /** Replace its content with the file on disk. */
  revert(): Promise<void>;
}

/** What the controller needs from JupyterLab. */
export interface ReloadHost {
  /** The open documents of an API path. */
  documents(path: string): OpenDocument[];
  /** The file's version on disk now. */
  diskVersion(path: string): Promise<Version>;
  /** Tell the user the file changed under their unsaved edits; `reload` discards them. */
  notify(document: OpenDocument, reload: () => void): void;
  /** Take back the notice about a document (it was saved, reloaded or closed). */
  dismiss(document: OpenDocument): void;
  /** Report a failure (the check or the reload); nothing else happens. */
  failed(document: OpenDocument, error: unknown): void;
}

/**
 * Runs the check for each open document of a written path: at most one check per document
 * at a time, and one more after it when events came meanwhile (a burst of writes costs two
 * checks, and the last write is never missed).
 */
export class ReloadController {
  constructor(private readonly host: ReloadHost) {}

  /** A bus event: check the open documents of the path it names, if any. */
  handle(event: BusEvent): void {
    const path = writtenPath(event);
    if (path === null) {
      return;
    }
    for (const document of this.host.documents(path)) {
      this.check(document);
    }
  }

  /** A save of the document ended (saved or failed): run a check that waited for it. */
  saveEnded(document: OpenDocument): void {
    if (this.waiting.delete(document)) {
      this.check(document);
    }
  }

  /** The document was saved, reloaded or closed: its notice, if any, is out of date. */
  settled(document: OpenDocument): void {
    this.waiting.delete(document);
    if (this.noticed.delete(document)) {
      this.host.dismiss(document);
    }
  }

  /** Check one document now, or after the check in flight. */
  check(document: OpenDocument): void {
    if (this.running.has(document)) {
      this.again.add(document);
      return;
    }
    this.running.add(document);
    void this.run(document).finally(() => {
      this.running.delete(document);
      if (this.again.delete(document)) {
        this.check(document);
      }
    });
  }

  private async run(document: OpenDocument): Promise<void> {
    try {
      let changed = false;
      if (!document.saving) {
        const known = document.known;
        const disk = await this.host.diskVersion(document.path);
        if (!sameVersion(document.known, known)) {
          this.again.add(document); // saved or reloaded meanwhile: compare with that version
          return;
        }
        changed = changedOnDisk(disk, known);
      }
      switch (reaction(document, changed)) {
        case 'wait':
          this.waiting.add(document);
          return;
        case 'reload':
          await document.revert();
          return;
        case 'notify':
          this.noticed.add(document);
          this.host.notify(document, () => {
            this.noticed.delete(document);
            document.revert().catch(error => this.host.failed(document, error));
          });
          return;
        case 'none':
          return;
      }
    } catch (error) {
      this.host.failed(document, error);
    }
  }

  private readonly running = new Set<OpenDocument>();
  private readonly again = new Set<OpenDocument>();
  private readonly waiting = new Set<OpenDocument>();
  private readonly noticed = new Set<OpenDocument>();
}
