/**
 * The status-bar item: "flx_ipy: 2 running · 1 rolled back" for the active notebook's kernel;
 * a click opens the side panel. Shown only once flx_ipy is loaded in that kernel.
 */
import { Widget } from '@lumino/widgets';

import type { IPanelModel } from '../tokens';
import { isRolledBack, summary } from './format';

export class FlxStatusItem extends Widget {
  constructor(
    private readonly _model: IPanelModel,
    onClick: () => void
  ) {
    super({ node: document.createElement('button') });
    this.addClass('flx-StatusItem');
    this.node.dataset.testid = 'flx-statusbar';
    this.node.addEventListener('click', onClick);
    _model.changed.connect(this._render, this);
    this._render();
  }

  /** The status bar asks this to decide whether to show the item. */
  get active(): boolean {
    return this._model.status === 'ready';
  }

  dispose(): void {
    this._model.changed.disconnect(this._render, this);
    super.dispose();
  }

  private _render(): void {
    const m = this._model;
    const plugins = m.plugins;
    const bad = plugins.some(p => p.state === 'failed' || isRolledBack(p));
    this.node.textContent = m.status === 'ready' ? summary(plugins) : `flx_ipy: ${m.status}`;
    this.node.title = `${m.kernelLabel || 'no notebook'} — click to open the flx_ipy plugin panel`;
    this.node.dataset.status = m.status;
    this.node.classList.toggle('flx-StatusItem-bad', bad);
  }
}
