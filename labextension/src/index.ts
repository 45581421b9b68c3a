/**
 * JupyterLab plugins of flx_ipy: the model, the side panel with its commands and shortcut, and
 * the status-bar item. Plugin objects and wiring only; the logic lives in model.ts (comm),
 * store.ts (state), requests.ts (replies), tracker.ts (active kernel) and view/.
 */
import {
  ILayoutRestorer,
  type JupyterFrontEnd,
  type JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Dialog, ICommandPalette, Notification, showDialog } from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { FileEditor } from '@jupyterlab/fileeditor';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IStatusBar } from '@jupyterlab/statusbar';

import { flxIcon } from './icon';
import { PanelModel } from './model';
import { CommandIDs, EXTENSION_ID, IFlxPanelModel, type IPanelModel, PANEL_ID, STATUS_ITEM_ID } from './tokens';
import { KernelTracker } from './tracker';
import { serverPath } from './view/format';
import { FlxPanel } from './view/panel';
import { FlxStatusItem } from './view/statusbar';

/** The model of the active notebook kernel's plugin manager, for this and other extensions. */
const modelPlugin: JupyterFrontEndPlugin<IPanelModel> = {
  id: `${EXTENSION_ID}:model`,
  description: 'Keeps the flx_ipy state of the active notebook kernel over a comm.',
  autoStart: true,
  requires: [INotebookTracker],
  provides: IFlxPanelModel,
  activate: (_app: JupyterFrontEnd, notebooks: INotebookTracker): IPanelModel => {
    const model = new PanelModel();
    const tracker = new KernelTracker(notebooks, model);
    // A page reload never disposes plugins: close the comm ourselves so the kernel keeps none.
    window.addEventListener('pagehide', () => {
      tracker.dispose();
      model.dispose();
    });
    return model;
  }
};

/** Opens `path` (as the kernel sees it) at `line` in JupyterLab's editor, if under the root. */
async function openSource(docs: IDocumentManager, path: string, line: number): Promise<void> {
  const root = PageConfig.getOption('serverRoot');
  const rel = serverPath(path, root);
  if (rel === null) {
    Notification.warning(
      `flx_ipy: ${path} is outside JupyterLab's root folder (${root || 'unknown'}), so JupyterLab ` +
        'cannot open it. Keep plugins under the folder JupyterLab was started in.',
      { autoClose: 8000 }
    );
    return;
  }
  const widget = docs.openOrReveal(rel);
  if (!widget) {
    return;
  }
  await widget.context.ready;
  const content = widget.content;
  if (content instanceof FileEditor) {
    const position = { line: Math.max(0, line - 1), column: 0 };
    content.editor.setCursorPosition(position);
    content.editor.revealPosition(position);
    content.editor.focus();
  }
}

/** The side panel, "flx_ipy: Open plugin panel" (Alt+Shift+P) and "open file at line". */
const panelPlugin: JupyterFrontEndPlugin<void> = {
  id: `${EXTENSION_ID}:panel`,
  description: 'Side panel showing lifecycle, health and reloads of the kernel plugins.',
  autoStart: true,
  requires: [IFlxPanelModel],
  optional: [ICommandPalette, ILayoutRestorer, IDocumentManager],
  activate: (
    app: JupyterFrontEnd,
    model: IPanelModel,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    docs: IDocumentManager | null
  ): void => {
    const panel = new FlxPanel(model, {
      open: (path, line) => void app.commands.execute(CommandIDs.openSource, { path, line }),
      confirmUnload: async plugin => {
        const answer = await showDialog({
          title: `Unload ${plugin}?`,
          body:
            `Unloading stops ${plugin} and throws away its state; loading it again starts ` +
            'from scratch.',
          buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Unload' })]
        });
        return answer.button.accept;
      }
    });
    app.shell.add(panel, 'right', { rank: 900 });
    restorer?.add(panel, PANEL_ID);
    app.commands.addCommand(CommandIDs.openPanel, {
      label: 'flx_ipy: Open plugin panel',
      caption: 'Show the plugins of the active notebook kernel',
      icon: flxIcon,
      execute: () => {
        app.shell.activateById(PANEL_ID);
      }
    });
    app.commands.addCommand(CommandIDs.openSource, {
      label: 'flx_ipy: Open plugin file at line',
      isEnabled: () => docs !== null,
      execute: args => {
        const path = typeof args.path === 'string' ? args.path : '';
        const line = typeof args.line === 'number' ? args.line : 1;
        return docs && path ? openSource(docs, path, line) : undefined;
      }
    });
    palette?.addItem({ command: CommandIDs.openPanel, category: 'flx_ipy' });
  }
};

/** "flx_ipy: 2 running · 1 rolled back" in the status bar; a click opens the panel. */
const statusPlugin: JupyterFrontEndPlugin<void> = {
  id: `${EXTENSION_ID}:status`,
  description: 'Status-bar summary of the kernel plugins; a click opens the side panel.',
  autoStart: true,
  requires: [IFlxPanelModel, IStatusBar],
  activate: (app: JupyterFrontEnd, model: IPanelModel, statusBar: IStatusBar): void => {
    const item = new FlxStatusItem(model, () => void app.commands.execute(CommandIDs.openPanel));
    statusBar.registerStatusItem(STATUS_ITEM_ID, {
      item,
      align: 'left',
      rank: 100,
      isActive: () => item.active,
      activeStateChanged: model.changed
    });
  }
};

export default [modelPlugin, panelPlugin, statusPlugin];
