/**
 * The panel's model: the comm to one kernel's flx_ipy, and its life across kernel switches,
 * restarts and page reloads. What the messages mean for the state is `PanelStore`'s job, and
 * matching replies to requests is `PendingRequests`'s; this class only connects them to a comm.
 *
 * No DOM here: views listen to `changed` and read the getters. A kernel restart disposes comms
 * without `onClose`, so the model watches `statusChanged`; on dispose it closes its comm and the
 * next page tells the kernel which comm it replaces, so none are left behind.
 */
import type { Kernel, KernelMessage } from '@jupyterlab/services';
import { type ISignal, Signal } from '@lumino/signaling';

import {
  action as actionMsg,
  type ActionName,
  asKernelMessage,
  hello,
  indexAction,
  rollback as rollbackMsg,
  type IndexActionName,
  type IEventView,
  type IPluginView,
  type IReplyMsg,
  type IWatcherView,
  KERNEL_TARGET,
  PANEL_TARGET,
  versionProblem
} from './protocol';
import { type IIndexView, IndexState } from './indexstate';
import { PendingRequests } from './requests';
import { PanelStore } from './store';
import type { ConnectionStatus, INotice, IPanelModel, IPendingAction } from './tokens';

const STORAGE_PREFIX = 'flx_ipy:comm:';

/** sessionStorage survives a page reload of the same tab, which is what we need. */
function storage(): Storage | null {
  try {
    return typeof sessionStorage === 'undefined' ? null : sessionStorage;
  } catch {
    return null;
  }
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
    return this._store.plugins;
  }
  get watcher(): IWatcherView {
    return this._store.watcher;
  }
  get events(): readonly IEventView[] {
    return this._store.events;
  }
  get flxVersion(): string {
    return this._store.flxVersion;
  }
  get notice(): INotice | null {
    return this._store.notice;
  }
  get index(): IIndexView {
    return this._index.view;
  }
  get isDisposed(): boolean {
    return this._disposed;
  }

  pendingFor(plugin: string | null): IPendingAction | undefined {
    return this._requests.pendingFor(plugin);
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
    const { pending, reply } = this._requests.add(name, plugin, this.kernelBusy);
    comm.send(actionMsg(pending.requestId, name, plugin));
    this._emit();
    return reply;
  }

  rollback(plugin: string, revision: number | null): Promise<IReplyMsg> {
    const comm = this._comm;
    if (!comm || comm.isDisposed || this._status !== 'ready') {
      return Promise.reject(new Error(`flx_ipy is not connected (${this._status})`));
    }
    const { pending, reply } = this._requests.add('rollback', plugin, this.kernelBusy);
    comm.send(rollbackMsg(pending.requestId, plugin, revision));
    this._emit();
    return reply;
  }

  searchIndex(term: string): Promise<IReplyMsg> {
    return this._runIndex('index_search', { term: term.trim() || null });
  }

  install(spec: string): Promise<IReplyMsg> {
    return this._runIndex('install', { spec });
  }

  /** One index action at a time: the section shows one search or one install. */
  private _runIndex(name: IndexActionName, opts: { spec?: string; term?: string | null }): Promise<IReplyMsg> {
    const comm = this._comm;
    if (!comm || comm.isDisposed || this._status !== 'ready') {
      return Promise.reject(new Error(`flx_ipy is not connected (${this._status})`));
    }
    if (this._index.busy) {
      return Promise.reject(new Error('an index search or install is already running'));
    }
    const { pending, reply } = this._requests.add(name, opts.spec ?? null, this.kernelBusy);
    if (name === 'install') {
      this._index.installStarted(pending.requestId, opts.spec ?? '');
    } else {
      this._index.searching(pending.requestId, opts.term ?? '');
    }
    comm.send(indexAction(pending.requestId, name, opts));
    // A reply that never comes (connection reset) must not leave the section "installing".
    reply.catch((err: Error) => this._index.fail(err.message));
    return reply;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._detach();
    this._store.dispose();
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
    comm.onMsg = msg => this._onCommMsg(comm, msg);
    comm.onClose = () => this._onCommClose(comm);
    const store = storage();
    const key = STORAGE_PREFIX + kernel.id;
    const replaces = store?.getItem(key) ?? null;
    store?.setItem(key, comm.commId);
    this._setStatus('connecting', '');
    comm.open(hello(replaces === comm.commId ? null : replaces));
  }

  /**
   * The kernel rang the doorbell (`%load_ext flx_ipy` ran): answer with our own comm. The
   * announcing comm is closed by the kernel right away; nothing to keep.
   */
  private _onAnnounce = (_comm: Kernel.IComm, msg: KernelMessage.ICommOpenMsg): void => {
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
        this._store.applySnapshot(data.state);
        this._gotSnapshot = true;
        this._reconnects = 0;
        this._setStatus('ready', '');
        break;
      case 'delta':
        if (this._store.applyDelta(data)) {
          this._emit();
        }
        break;
      case 'progress':
        this._index.progress(data);
        break;
      case 'reply':
        if (this._index.settle(data)) {
          this._requests.settle(data);
          if (data.action === 'install' && data.ok) {
            // what it installed shows as rows; the banner says so too
            this._store.showNotice({ ok: true, text: data.message, plugin: null, action: data.action });
          }
          this._emit();
          break;
        }
        this._store.showNotice({ ok: data.ok, text: data.message, plugin: data.plugin, action: data.action });
        this._requests.settle(data);
        this._emit();
        break;
      case 'error':
        if (data.code === 'version_mismatch') {
          this._dropComm(true);
          this._setStatus('mismatch', data.message);
        } else {
          this._store.showNotice({ ok: false, text: data.message, plugin: null, action: null });
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
    this._requests.failAll('the kernel closed the flx_ipy connection');
    if (wasReady && this._reconnects < 1) {
      // Closed after a snapshot: `%unload_ext`, or a duplicated tab claimed our comm id.
      // Try once; a kernel without flx_ipy answers by closing again -> not-loaded.
      this._reconnects += 1;
      this._connect();
      return;
    }
    this._reconnects = 0;
    this._store.reset();
    this._index.reset();
    this._setStatus('not-loaded', '');
  }

  private _onKernelStatus(kernel: Kernel.IKernelConnection, status: Kernel.Status): void {
    if (kernel !== this._kernel) {
      return;
    }
    if (status === 'restarting' || status === 'autorestarting') {
      // Comms are disposed without onClose on restart: forget ours, wait for the new kernel.
      this._dropComm(false);
      this._store.reset();
      this._setStatus('restarting', '');
    } else if (status === 'dead') {
      this._dropComm(false);
      this._store.reset();
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
    this._store.reset();
    this._index.reset();
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
    this._requests.failAll('the flx_ipy connection was reset');
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
  private _store = new PanelStore(() => this._emit());
  private _requests = new PendingRequests();
  private _index = new IndexState(() => this._emit());
  private _kernel: Kernel.IKernelConnection | null = null;
  private _comm: Kernel.IComm | null = null;
  /** The current comm has delivered its snapshot (a comm closed before that: not loaded). */
  private _gotSnapshot = false;
  private _reconnects = 0;
  private _status: ConnectionStatus = 'no-kernel';
  private _message = '';
  private _label = '';
  private _disposed = false;
}
