/**
 * The contract of this package: plugin and command ids, the model's interface and its token.
 * Everything here is a name other code relies on; implementations import it, never the reverse.
 * The kernel <-> panel messages live in `protocol.ts` (mirror of `flx_ipy/protocol.py`) and are
 * re-exported here, so other extensions need one import.
 */
import { Token } from '@lumino/coreutils';
import type { Kernel } from '@jupyterlab/services';
import type { IDisposable } from '@lumino/disposable';
import type { ISignal } from '@lumino/signaling';

import type { IIndexView } from './indexstate';
import type { ActionName, IEventView, IndexActionName, IPluginView, IReplyMsg, IWatcherView } from './protocol';

export type { IIndexView } from './indexstate';
export type {
  ActionName,
  IIndexRow,
  IIsolationView,
  IMetricsView,
  IRevisionView,
  IndexActionName,
  ISignatureView,
  IEventView,
  IHealthView,
  IPluginView,
  IReloadView,
  IReplyMsg,
  IStateView,
  IWatcherView,
  LifecycleName,
  PluginActionName
} from './protocol';

/** Prefix of every JupyterLab plugin id this package provides (= the npm package name). */
export const EXTENSION_ID = 'flx_ipy-labextension';

/** Id of the side-panel widget (also its DOM id). */
export const PANEL_ID = 'flx-ipy-panel';

/** Id of the status-bar item. */
export const STATUS_ITEM_ID = `${EXTENSION_ID}:status`;

export namespace CommandIDs {
  /** "flx_ipy: Open plugin panel": shows the panel, or hides it when it is already shown. */
  export const openPanel = 'flx_ipy:open-panel';
  /** Opens a plugin file at a line in JupyterLab's editor; args `{ path, line }`. */
  export const openSource = 'flx_ipy:open-source';
}

/**
 * - `no-kernel`: no notebook, or its kernel is not started
 * - `connecting`: comm open sent, no answer yet (the kernel may be busy)
 * - `not-loaded`: the kernel answered but `%load_ext flx_ipy` has not run there
 * - `ready`: snapshot received, deltas flowing
 * - `restarting` / `dead`: the kernel is restarting or gone; the comm is dropped
 * - `mismatch`: the kernel speaks another major protocol version (see `message`)
 */
export type ConnectionStatus =
  | 'no-kernel'
  | 'connecting'
  | 'not-loaded'
  | 'ready'
  | 'restarting'
  | 'dead'
  | 'mismatch';

export interface IPendingAction {
  requestId: string;
  action: ActionName | IndexActionName;
  plugin: string | null;
  /** The kernel was busy when the action was sent: it runs after the current cell. */
  queued: boolean;
}

/** The banner: the outcome of the last action; ends with the next event or after a few seconds. */
export interface INotice {
  ok: boolean;
  text: string;
  /** The plugin it is about, if any: the notice goes when that plugin does. */
  plugin: string | null;
  action: string | null;
  /** When it was shown, epoch ms. */
  at: number;
}

/** The plugin manager state of one kernel, kept live over a comm. No DOM. */
export interface IPanelModel extends IDisposable {
  /** Emitted after any change below. */
  readonly changed: ISignal<IPanelModel, void>;
  readonly status: ConnectionStatus;
  readonly message: string;
  readonly kernelLabel: string;
  readonly kernelBusy: boolean;
  readonly plugins: readonly IPluginView[];
  readonly watcher: IWatcherView;
  readonly events: readonly IEventView[];
  readonly flxVersion: string;
  readonly notice: INotice | null;
  pendingFor(plugin: string | null): IPendingAction | undefined;
  run(action: ActionName, plugin: string | null): Promise<IReplyMsg>;
  /** Run a kept revision's code again (`null`: the one before the current), state kept. */
  rollback(plugin: string, revision: number | null): Promise<IReplyMsg>;
  /** The Index section: offers of the last search, the install running. */
  readonly index: IIndexView;
  /** List what the kernel's configured index offers (`term`: filter; '' lists all). */
  searchIndex(term: string): Promise<IReplyMsg>;
  /** Install `spec` (`NAME[==VERSION]`) from the index; progress shows in `index.line`. */
  install(spec: string): Promise<IReplyMsg>;
  setKernel(kernel: Kernel.IKernelConnection | null, label: string): void;
}

/** The panel's model: the state of the plugin manager in the active notebook's kernel. */
export const IFlxPanelModel = new Token<IPanelModel>(
  `${EXTENSION_ID}:IFlxPanelModel`,
  'The flx_ipy plugin manager state of the active notebook kernel, kept live over a comm.'
);
