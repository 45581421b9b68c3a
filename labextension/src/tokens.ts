/**
 * Ids and contracts shared by the plugins in `index.ts` and by other extensions.
 */
import { Token } from '@lumino/coreutils';

import type { IPanelModel } from './model';

/** Prefix of every JupyterLab plugin id this package provides (= the npm package name). */
export const EXTENSION_ID = 'flx_ipy-labextension';

/** Id of the side-panel widget (also its DOM id). */
export const PANEL_ID = 'flx-ipy-panel';

export namespace CommandIDs {
  /** "flx_ipy: Open plugin panel" in the command palette. */
  export const openPanel = 'flx_ipy:open-panel';
}

/** The panel's model: the state of the plugin manager in the active notebook's kernel. */
export const IFlxPanelModel = new Token<IPanelModel>(
  `${EXTENSION_ID}:IFlxPanelModel`,
  'The flx_ipy plugin manager state of the active notebook kernel, kept live over a comm.'
);
