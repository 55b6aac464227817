/**
 * The JupyterLab plugin behind `ReloadController`: it listens to the server's event bus from
 * start-up (whether or not the sidebar is ever opened), finds the open documents of a written
 * path among the main area's widgets, and shows a notice with a Reload action when a document
 * with unsaved changes changed on disk.
 */
import type { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { IDocumentManager, IDocumentWidgetOpener } from '@jupyterlab/docmanager';
import type { DocumentRegistry } from '@jupyterlab/docregistry';
import type { Contents } from '@jupyterlab/services';

import { type OpenDocument, ReloadController, type ReloadHost, type Version } from './controller';

/** A document context seen through `OpenDocument`; one per context, made once. */
class ContextDocument implements OpenDocument {
  constructor(
    readonly context: DocumentRegistry.Context,
    private readonly contents: Contents.IManager
  ) {}

  /** Kept by the plugin from the context's `saveState`. */
  saving = false;

  get path(): string {
    return this.contents.localPath(this.context.path);
  }

  get dirty(): boolean {
    return this.context.model.dirty;
  }

  get known(): Version | null {
    return this.context.contentsModel; // a copy on each read
  }

  revert(): Promise<void> {
    return this.context.revert();
  }
}

export const reloadPlugin: JupyterFrontEndPlugin<void> = {
  id: 'nbsession:reload',
  description: 'Open documents reload when an agent writes their file; unsaved work is kept.',
  autoStart: true,
  requires: [IDocumentManager, IDocumentWidgetOpener],
  activate: (app: JupyterFrontEnd, docManager: IDocumentManager, opener: IDocumentWidgetOpener) => {
    const contents = app.serviceManager.contents;
    const documents = new Map<DocumentRegistry.Context, ContextDocument>();
    const notices = new Map<OpenDocument, string>();

    const wrap = (context: DocumentRegistry.Context): ContextDocument => {
      let document = documents.get(context);
      if (document === undefined) {
        const made = new ContextDocument(context, contents);
        documents.set(context, made);
        context.saveState.connect((_, state) => {
          made.saving = state === 'started';
          if (!made.saving) {
            controller.saveEnded(made);
          }
        });
        context.fileChanged.connect(() => controller.settled(made));
        context.disposed.connect(() => {
          controller.settled(made);
          documents.delete(context);
        });
        document = made;
      }
      return document;
    };

    const host: ReloadHost = {
      documents(path) {
        const found = new Set<ContextDocument>();
        for (const widget of app.shell.widgets('main')) {
          const context = docManager.contextForWidget(widget);
          // Events name paths on the server's own drive, not on other drives; a collaborative
          // document (jupyter-collaboration) is kept in step with the file by the server.
          if (context && contents.driveName(context.path) === '' && !context.model.collaborative) {
            const document = wrap(context);
            if (document.path === path) {
              found.add(document);
            }
          }
        }
        return [...found];
      },
      diskVersion(path) {
        return contents.get(path, { content: false, hash: true });
      },
      notify(document, reload) {
        const name = PathExt.basename(document.path);
        const message =
          `"${name}" changed on disk. ` +
          'Your unsaved changes are kept; Reload shows the new version.';
        const options = {
          autoClose: false as const,
          actions: [
            {
              label: 'Reload',
              caption: `Discard your unsaved changes and show ${document.path} as it is on disk`,
              displayType: 'accent' as const,
              callback: () => {
                notices.delete(document);
                reload();
              }
            }
          ]
        };
        const shown = notices.get(document);
        if (shown !== undefined && Notification.update({ id: shown, message, ...options })) {
          return;
        }
        notices.set(document, Notification.warning(message, options));
      },
      dismiss(document) {
        const shown = notices.get(document);
        if (shown !== undefined) {
          notices.delete(document);
          Notification.dismiss(shown);
        }
      },
      failed(document, error) {
        console.warn(`nbsession: could not check ${document.path} against the disk`, error);
      }
    };
    const controller = new ReloadController(host);
    // Contexts are followed from their first widget on, so a save already in flight when an
    // event comes is known (the event of the browser's own save must not look like a change).
    opener.opened.connect((_, widget) => {
      const context = docManager.contextForWidget(widget);
      if (context) {
        wrap(context);
      }
    });
    app.serviceManager.events.stream.connect((_, event) => controller.handle(event));
  }
};
