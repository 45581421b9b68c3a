/**
 * The panel's model: owns the comm to one kernel's flx_ipy and keeps the manager's state.
 *
 * No DOM here: views listen to `changed` and read the getters. The model survives kernel
 * switches (`setKernel`), kernel restarts (comms are disposed without `onClose`, so it
 * watches `statusChanged`) and page reloads (it closes its comm on dispose and tells the
 * kernel which comm the previous page held, so none are left behind).
 */
import type { Kernel, KernelMessage } from '@jupyterlab/services';
import type { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import {
  action as actionMsg,
  ActionName,
  asKernelMessage,
  hello,
  IDeltaMsg,
  IEventView,
  IPluginView,
  IReplyMsg,
  IStateView,
  IWatcherView,
  KERNEL_TARGET,
  PANEL_TARGET,
  versionProblem
} from './protocol';

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
  action: ActionName;
  plugin: string | null;
  /** The kernel was busy when the action was sent: it runs after the current cell. */
  queued: boolean;
}

export interface IPanelModel extends IDisposable {
  readonly changed: ISignal<IPanelModel, void>;
  readonly status: ConnectionStatus;
  readonly message: string;
  readonly kernelLabel: string;
  readonly kernelBusy: boolean;
  readonly plugins: readonly IPluginView[];
  readonly watcher: IWatcherView;
  readonly events: readonly IEventView[];
  readonly flxVersion: string;
  readonly notice: { ok: boolean; text: string } | null;
  pendingFor(plugin: string | null): IPendingAction | undefined;
  run(action: ActionName, plugin: string | null): Promise<IReplyMsg>;
  setKernel(kernel: Kernel.IKernelConnection | null, label: string): void;
}

const MAX_EVENTS = 50;
const STORAGE_PREFIX = 'flx_ipy:comm:';

let requestCounter = 0;
function newRequestId(): string {
  requestCounter += 1;
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}-${requestCounter}`;
}

/** sessionStorage survives a page reload of the same tab, which is what we need. */
function storage(): Storage | null {
  try {
    return typeof sessionStorage === 'undefined' ? null : sessionStorage;
  } catch {
    return null;
  }
}

interface IWaiter {
  pending: IPendingAction;
  resolve: (reply: IReplyMsg) => void;
  reject: (err: Error) => void;
}

export class PanelModel implements IPanelModel {
  get changed(): ISignal<IPanelModel, void> {
    return this._changed;
  }
  get status(): ConnectionStatus {
    return this._status;
  }
  get message(): string {
    return this._message;
  }
  get kernelLabel(): string {
    return this._label;
  }
  get kernelBusy(): boolean {
    return this._kernel?.status === 'busy';
  }
  get plugins(): readonly IPluginView[] {
    return this._plugins;
  }
  get watcher(): IWatcherView {
    return this._watcher;
  }
  get events(): readonly IEventView[] {
    return this._events;
  }
  get flxVersion(): string {
    return this._flxVersion;
  }
  get notice(): { ok: boolean; text: string } | null {
    return this._notice;
  }
  get isDisposed(): boolean {
    return this._disposed;
  }

  pendingFor(plugin: string | null): IPendingAction | undefined {
    for (const w of this._waiters.values()) {
      if (w.pending.plugin === plugin) {
        return w.pending;
      }
    }
    return undefined;
  }

  /** Follow another kernel (or none): detach from the old one first. */
  setKernel(kernel: Kernel.IKernelConnection | null, label: string): void {
    if (kernel === this._kernel) {
      if (label !== this._label) {
        this._label = label;
        this._emit();
      }
      return;
    }
    this._detach();
    this._kernel = kernel;
    this._label = label;
    if (!kernel) {
      this._setStatus('no-kernel', '');
      return;
    }
    kernel.registerCommTarget(PANEL_TARGET, this._onAnnounce);
    kernel.statusChanged.connect(this._onKernelStatus, this);
    kernel.connectionStatusChanged.connect(this._onConnectionStatus, this);
    kernel.disposed.connect(this._onKernelDisposed, this);
    this._connect();
  }

  /** Ask the kernel to run an action; resolves with its reply (ok or the one-line error). */
  run(name: ActionName, plugin: string | null): Promise<IReplyMsg> {
    const comm = this._comm;
    if (!comm || comm.isDisposed || this._status !== 'ready') {
      return Promise.reject(new Error(`flx_ipy is not connected (${this._status})`));
    }
    const requestId = newRequestId();
    const pending: IPendingAction = {
      requestId,
      action: name,
      plugin,
      queued: this.kernelBusy
    };
    const reply = new Promise<IReplyMsg>((resolve, reject) => {
      this._waiters.set(requestId, { pending, resolve, reject });
    });
    comm.send(actionMsg(requestId, name, plugin) as any);
    this._emit();
    return reply;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._detach();
    this._disposed = true;
    Signal.clearData(this);
  }

  // --- connection ----------------------------------------------------------------------------

  /** Open our own comm to the kernel's target; the kernel closes it if flx_ipy is not loaded. */
  private _connect(): void {
    const kernel = this._kernel;
    if (!kernel || kernel.isDisposed || this._disposed) {
      return;
    }
    if (kernel.status === 'dead' || kernel.connectionStatus !== 'connected') {
      this._setStatus(kernel.status === 'dead' ? 'dead' : 'connecting', '');
      return;
    }
    this._dropComm(true);
    let comm: Kernel.IComm;
    try {
      comm = kernel.createComm(KERNEL_TARGET);
    } catch (err) {
      // e.g. a kernel connection that does not handle comms
      this._setStatus('not-loaded', String(err));
      return;
    }
    this._comm = comm;
    this._gotSnapshot = false;
    comm.onMsg = msg => this._onCommMsg(comm, msg);
    comm.onClose = () => this._onCommClose(comm);
    const store = storage();
    const key = STORAGE_PREFIX + kernel.id;
    const replaces = store?.getItem(key) ?? null;
    store?.setItem(key, comm.commId);
    this._setStatus('connecting', '');
    comm.open(hello(replaces === comm.commId ? null : replaces) as any);
  }

  private _onAnnounce = (comm: Kernel.IComm, msg: KernelMessage.ICommOpenMsg): void => {
    // The kernel rang the doorbell (`%load_ext flx_ipy` ran): answer with our own comm. The
    // announcing comm is closed by the kernel right away; nothing to keep.
    const data = asKernelMessage(msg.content.data);
    if (data?.kind === 'announce') {
      const problem = versionProblem(data.protocol);
      if (problem) {
        this._setStatus('mismatch', problem);
        return;
      }
    }
    if (this._status !== 'ready' || !this._comm || this._comm.isDisposed) {
      this._connect();
    }
    void comm;
  };

  private _onCommMsg(comm: Kernel.IComm, msg: KernelMessage.ICommMsgMsg): void {
    if (comm !== this._comm) {
      return;
    }
    const data = asKernelMessage(msg.content.data);
    if (!data) {
      return;
    }
    const problem = versionProblem(data.protocol);
    if (problem) {
      this._dropComm(true);
      this._setStatus('mismatch', problem);
      return;
    }
    switch (data.kind) {
      case 'snapshot':
        this._applySnapshot(data.state);
        break;
      case 'delta':
        this._applyDelta(data);
        break;
      case 'reply':
        this._settle(data);
        break;
      case 'error':
        if (data.code === 'version_mismatch') {
          this._dropComm(true);
          this._setStatus('mismatch', data.message);
        } else {
          this._notice = { ok: false, text: data.message };
          this._emit();
        }
        break;
      default:
        break;
    }
  }

  private _onCommClose(comm: Kernel.IComm): void {
    if (comm !== this._comm) {
      return;
    }
    const wasReady = this._gotSnapshot;
    this._comm = null;
    this._failWaiters('the kernel closed the flx_ipy connection');
    if (wasReady && this._reconnects < 1) {
      // Closed after a snapshot: `%unload_ext`, or a duplicated tab claimed our comm id.
      // Try once; a kernel without flx_ipy answers by closing again -> not-loaded.
      this._reconnects += 1;
      this._connect();
      return;
    }
    this._reconnects = 0;
    this._clearState();
    this._setStatus('not-loaded', '');
  }

  private _onKernelStatus(kernel: Kernel.IKernelConnection, status: Kernel.Status): void {
    if (kernel !== this._kernel) {
      return;
    }
    if (status === 'restarting' || status === 'autorestarting') {
      // Comms are disposed without onClose on restart: forget ours, wait for the new kernel.
      this._dropComm(false);
      this._clearState();
      this._setStatus('restarting', '');
    } else if (status === 'dead') {
      this._dropComm(false);
      this._clearState();
      this._setStatus('dead', '');
    } else if (
      (status === 'idle' || status === 'busy') &&
      (this._status === 'restarting' || this._status === 'dead' || !this._comm || this._comm.isDisposed) &&
      this._status !== 'not-loaded' &&
      this._status !== 'mismatch'
    ) {
      this._connect();
    } else {
      this._emit(); // busy/idle changes the "queued" hint
    }
  }

  private _onConnectionStatus(kernel: Kernel.IKernelConnection, status: Kernel.ConnectionStatus): void {
    if (kernel !== this._kernel) {
      return;
    }
    if (status === 'connected' && (!this._comm || this._comm.isDisposed) && this._status !== 'not-loaded') {
      this._connect();
    }
  }

  private _onKernelDisposed(kernel: Kernel.IKernelConnection): void {
    if (kernel === this._kernel) {
      this.setKernel(null, '');
    }
  }

  private _detach(): void {
    const kernel = this._kernel;
    this._dropComm(true);
    this._clearState();
    if (kernel) {
      kernel.statusChanged.disconnect(this._onKernelStatus, this);
      kernel.connectionStatusChanged.disconnect(this._onConnectionStatus, this);
      kernel.disposed.disconnect(this._onKernelDisposed, this);
      if (!kernel.isDisposed) {
        kernel.removeCommTarget(PANEL_TARGET, this._onAnnounce);
      }
    }
    this._kernel = null;
  }

  /** Forget the comm; `close` tells the kernel (not possible once a restart disposed it). */
  private _dropComm(close: boolean): void {
    const comm = this._comm;
    this._comm = null;
    this._gotSnapshot = false;
    this._failWaiters('the flx_ipy connection was reset');
    if (comm && !comm.isDisposed) {
      comm.onClose = () => undefined;
      comm.onMsg = () => undefined;
      if (close && this._kernel && !this._kernel.isDisposed && this._kernel.status !== 'dead') {
        try {
          comm.close();
        } catch {
          // the kernel connection is already going away: nothing to tell it
        }
      }
      comm.dispose();
    }
  }

  // --- state ---------------------------------------------------------------------------------

  private _applySnapshot(state: IStateView): void {
    this._gotSnapshot = true;
    this._reconnects = 0;
    this._seq = state.seq;
    this._plugins = [...state.plugins].sort((a, b) => a.name.localeCompare(b.name));
    this._watcher = state.watcher;
    this._events = state.events.slice(-MAX_EVENTS);
    this._flxVersion = state.flx_version;
    this._setStatus('ready', '');
  }

  private _applyDelta(delta: IDeltaMsg): void {
    if (!this._gotSnapshot || delta.seq <= this._seq) {
      return; // already folded into the snapshot
    }
    this._seq = delta.seq;
    const byName = new Map(this._plugins.map(p => [p.name, p]));
    for (const name of delta.remove) {
      byName.delete(name);
    }
    for (const row of delta.upsert) {
      byName.set(row.name, row);
    }
    this._plugins = [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
    if (delta.watcher) {
      this._watcher = delta.watcher;
    }
    if (delta.event) {
      this._events = [...this._events, delta.event].slice(-MAX_EVENTS);
    }
    this._emit();
  }

  private _settle(reply: IReplyMsg): void {
    const waiter = this._waiters.get(reply.request_id);
    this._notice = { ok: reply.ok, text: reply.message };
    if (waiter) {
      this._waiters.delete(reply.request_id);
      waiter.resolve(reply);
    }
    this._emit();
  }

  private _failWaiters(why: string): void {
    if (this._waiters.size === 0) {
      return;
    }
    const waiters = [...this._waiters.values()];
    this._waiters.clear();
    for (const w of waiters) {
      w.reject(new Error(why));
    }
  }

  private _clearState(): void {
    this._seq = 0;
    this._plugins = [];
    this._watcher = { watching: false, paths: [] };
    this._events = [];
    this._notice = null;
  }

  private _setStatus(status: ConnectionStatus, message: string): void {
    this._status = status;
    this._message = message;
    this._emit();
  }

  private _emit(): void {
    if (!this._disposed) {
      this._changed.emit();
    }
  }

  private _changed = new Signal<IPanelModel, void>(this);
  private _kernel: Kernel.IKernelConnection | null = null;
  private _comm: Kernel.IComm | null = null;
  private _gotSnapshot = false;
  private _reconnects = 0;
  private _status: ConnectionStatus = 'no-kernel';
  private _message = '';
  private _label = '';
  private _seq = 0;
  private _plugins: IPluginView[] = [];
  private _watcher: IWatcherView = { watching: false, paths: [] };
  private _events: IEventView[] = [];
  private _flxVersion = '';
  private _notice: { ok: boolean; text: string } | null = null;
  private _waiters = new Map<string, IWaiter>();
  private _disposed = false;
}
