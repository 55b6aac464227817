/**
 * The JupyterLab extension: the nbsession sidebar (a left-area panel, DOM id
 * `nbsession-sidebar`), the palette command `New agent session` (`nbsession:new-session`) and
 * the file browser's `Import as agent session` on notebooks (`nbsession:import-notebook`).
 * It needs no kernel: everything goes to the server's REST API. A second plugin
 * (`nbsession:reload`, src/reload/) keeps open documents in step with the files agents write.
 */
import {
  ILabShell,
  type JupyterFrontEnd,
  type JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Dialog, ICommandPalette, InputDialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ServerConnection } from '@jupyterlab/services';
import { LabIcon } from '@jupyterlab/ui-components';

import { reloadPlugin } from './reload/plugin';
import { messageOf, SessionsApi } from './sidebar/api';
import { exportFileName, type SessionSummary } from './sidebar/model';
import { type SidebarHost, SidebarPanel } from './sidebar/panel';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16" height="16">
  <g class="jp-icon3" fill="#616161">
    <path d="M4 4h16a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2h-7l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2zm3 5.5a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z"/>
  </g>
</svg>`;

export const sessionsIcon = new LabIcon({ name: 'nbsession:sessions', svgstr: ICON_SVG });

export namespace CommandIDs {
  export const newSession = 'nbsession:new-session';
  export const importNotebook = 'nbsession:import-notebook';
  export const open = 'nbsession:open-sidebar';
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'nbsession:sidebar',
  description: 'Agent sessions in a side panel: list, run, approve, export and import.',
  autoStart: true,
  requires: [ILabShell],
  optional: [ICommandPalette, IDefaultFileBrowser],
  activate: (
    app: JupyterFrontEnd,
    shell: ILabShell,
    palette: ICommandPalette | null,
    fileBrowser: IDefaultFileBrowser | null
  ) => {
    const api = new SessionsApi(app.serviceManager.serverSettings);
    const host: SidebarHost = {
      async confirm(title, body, action) {
        const result = await showDialog({
          title,
          body,
          buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: action })]
        });
        return result.button.accept;
      },
      async askText(title, label, value) {
        const result = await InputDialog.getText({ title, label, text: value });
        return result.button.accept ? result.value : null;
      },
      async openExport(row, notebook) {
        const path = await freePath(app, row);
        await app.serviceManager.contents.save(path, {
          type: 'notebook',
          format: 'json',
          content: notebook
        });
        await app.commands.execute('docmanager:open', { path });
        return path;
      }
    };
    const panel = new SidebarPanel({ api, host });
    panel.title.icon = sessionsIcon;
    panel.title.label = '';
    shell.add(panel, 'left', { rank: 600 });
    panel.start();

    app.commands.addCommand(CommandIDs.open, {
      label: 'Show Agent Sessions',
      execute: () => shell.activateById(panel.id)
    });
    app.commands.addCommand(CommandIDs.newSession, {
      label: 'New agent session',
      caption: 'Create an agent session and open it in the sidebar',
      icon: sessionsIcon,
      execute: async () => {
        shell.activateById(panel.id);
        await panel.newSession();
      }
    });
    palette?.addItem({ command: CommandIDs.newSession, category: 'Agent sessions' });

    if (fileBrowser !== null) {
      app.commands.addCommand(CommandIDs.importNotebook, {
        label: 'Import as Agent Session',
        caption: 'Recreate the session this exported notebook records',
        icon: sessionsIcon,
        isVisible: () => selectedNotebooks(fileBrowser).length === 1,
        execute: async () => {
          const [path] = selectedNotebooks(fileBrowser);
          if (path === undefined) {
            return;
          }
          try {
            const file = await app.serviceManager.contents.get(path, { content: true });
            const created = await api.importNotebook(file.content);
            shell.activateById(panel.id);
            panel.showImported(created);
          } catch (error) {
            await showErrorMessage(`Import of ${path} failed`, messageOf(error));
          }
        }
      });
      app.contextMenu.addItem({
        command: CommandIDs.importNotebook,
        selector: '.jp-DirListing-item[data-file-type="notebook"]',
        rank: 60
      });
    }
  }
};

function selectedNotebooks(browser: IDefaultFileBrowser): string[] {
  return Array.from(browser.selectedItems())
    .filter(item => item.type === 'notebook')
    .map(item => item.path);
}

/** A name in the server's root that no file has yet: exporting twice never overwrites. */
async function freePath(app: JupyterFrontEnd, row: SessionSummary): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    const path = exportFileName(row, attempt);
    try {
      await app.serviceManager.contents.get(path, { content: false });
    } catch (error) {
      if (error instanceof ServerConnection.ResponseError && error.response.status === 404) {
        return path;
      }
      throw error;
    }
  }
}

export default [plugin, reloadPlugin];
