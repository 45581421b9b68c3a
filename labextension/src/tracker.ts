/**
 * Follows the active notebook's kernel and points the panel model at it.
 *
 * `INotebookTracker.currentChanged` says which notebook is active; that notebook's
 * `sessionContext.kernelChanged` says when its kernel is started, changed or shut down.
 * Focusing a non-notebook widget keeps the last notebook (the tracker's `currentWidget`).
 */
import type { ISessionContext } from '@jupyterlab/apputils';
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import type { IDisposable } from '@lumino/disposable';

import type { IPanelModel } from './tokens';

export class KernelTracker implements IDisposable {
  constructor(
    private readonly _notebooks: INotebookTracker,
    private readonly _model: IPanelModel
  ) {
    _notebooks.currentChanged.connect(this._onCurrentChanged, this);
    this._onCurrentChanged(_notebooks, _notebooks.currentWidget);
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._notebooks.currentChanged.disconnect(this._onCurrentChanged, this);
    this._follow(null);
  }

  private _onCurrentChanged(_: INotebookTracker, panel: NotebookPanel | null): void {
    this._follow(panel);
  }

  private _follow(panel: NotebookPanel | null): void {
    if (this._context) {
      this._context.kernelChanged.disconnect(this._update, this);
      this._context.disposed.disconnect(this._onContextDisposed, this);
    }
    this._panel = panel;
    this._context = panel?.sessionContext ?? null;
    if (this._context) {
      this._context.kernelChanged.connect(this._update, this);
      this._context.disposed.connect(this._onContextDisposed, this);
    }
    this._update();
  }

  private _onContextDisposed(): void {
    this._follow(this._notebooks.currentWidget === this._panel ? null : this._notebooks.currentWidget);
  }

  private _update(): void {
    const kernel = this._context?.session?.kernel ?? null;
    const label = this._panel?.context.path ?? '';
    this._model.setKernel(this._disposed ? null : kernel, label);
  }

  private _panel: NotebookPanel | null = null;
  private _context: ISessionContext | null = null;
  private _disposed = false;
}
