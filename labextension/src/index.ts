/**
 * JupyterLab plugins of flx_ipy: the side panel and its command. Plugin objects only; the
 * logic lives in model.ts (comm + state), tracker.ts (active kernel) and view/.
 */
import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';

import { flxIcon } from './icon';
import { IPanelModel, PanelModel } from './model';
import { CommandIDs, EXTENSION_ID, IFlxPanelModel, PANEL_ID } from './tokens';
import { KernelTracker } from './tracker';
import { FlxPanel } from './view/panel';

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

/** The side panel and "flx_ipy: Open plugin panel". */
const panelPlugin: JupyterFrontEndPlugin<void> = {
  id: `${EXTENSION_ID}:panel`,
  description: 'Side panel showing lifecycle, health and reloads of the kernel plugins.',
  autoStart: true,
  requires: [IFlxPanelModel],
  optional: [ICommandPalette, ILayoutRestorer, ILabShell],
  activate: (
    app: JupyterFrontEnd,
    model: IPanelModel,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null
  ): void => {
    const panel = new FlxPanel(model);
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
    palette?.addItem({ command: CommandIDs.openPanel, category: 'flx_ipy' });
  }
};

export default [modelPlugin, panelPlugin];
