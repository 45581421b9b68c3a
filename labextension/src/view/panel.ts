/**
 * The side panel: status line, one row per plugin, the watcher, recent events.
 * Re-renders from the model on every `changed`; holds no state of its own.
 */
import { Widget } from '@lumino/widgets';

import type { ConnectionStatus, IPanelModel } from '../model';
import { PANEL_ID } from '../tokens';
import { flxIcon } from '../icon';
import { h } from './dom';
import { ago } from './format';
import { renderRow } from './row';

const STATUS_TEXT: Record<ConnectionStatus, string> = {
  'no-kernel': 'No notebook kernel. Open a notebook to see its plugins.',
  connecting: 'Connecting to the kernel… (waits while a cell runs)',
  'not-loaded': 'flx_ipy is not loaded in this kernel. Run %load_ext flx_ipy in the notebook.',
  ready: '',
  restarting: 'Kernel restarting…',
  dead: 'The kernel is dead. Restart it to see its plugins.',
  mismatch: ''
};

export class FlxPanel extends Widget {
  constructor(private readonly _model: IPanelModel) {
    super();
    this.id = PANEL_ID;
    this.addClass('flx-Panel');
    this.node.dataset.testid = 'flx-panel';
    this.title.icon = flxIcon;
    this.title.caption = 'flx_ipy plugins';
    _model.changed.connect(this._render, this);
    this._render();
  }

  dispose(): void {
    this._model.changed.disconnect(this._render, this);
    super.dispose();
  }

  private _render(): void {
    const m = this._model;
    const run = (action: 'start' | 'stop' | 'reload' | 'unload', plugin: string) => {
      m.run(action, plugin).catch(() => undefined); // the model shows failures as a notice
    };
    const refresh = h(
      'button',
      {
        className: 'jp-Button flx-Button',
        'data-testid': 'flx-refresh',
        title: 'Ask the kernel for the whole state again',
        disabled: m.status !== 'ready'
      },
      'refresh'
    );
    refresh.addEventListener('click', () => m.run('refresh', null).catch(() => undefined));

    const header = h(
      'div',
      { className: 'flx-Header' },
      h('div', { className: 'flx-Title' }, 'flx_ipy plugins', refresh),
      h('div', { className: 'flx-Kernel', 'data-testid': 'flx-kernel' }, m.kernelLabel || '—'),
      h(
        'div',
        { className: `flx-Status flx-Status-${m.status}`, 'data-testid': 'flx-status', 'data-status': m.status },
        m.status === 'ready'
          ? `connected${m.flxVersion ? ` · flx_ipy ${m.flxVersion}` : ''}${m.kernelBusy ? ' · kernel busy' : ''}`
          : m.message || STATUS_TEXT[m.status]
      )
    );
    const body: HTMLElement[] = [header];
    if (m.status === 'ready') {
      const w = m.watcher;
      body.push(
        h(
          'div',
          { className: 'flx-Watcher', 'data-testid': 'flx-watcher', 'data-watching': w.watching ? 'true' : 'false' },
          w.watching ? `watching ${w.paths.length} path${w.paths.length === 1 ? '' : 's'}` : 'not watching',
          w.watching && w.paths.length ? h('span', { className: 'flx-Paths', title: w.paths.join('\n') }, '') : null
        )
      );
      if (m.notice) {
        body.push(
          h(
            'div',
            { className: `flx-Notice${m.notice.ok ? '' : ' flx-Notice-bad'}`, 'data-testid': 'flx-notice' },
            m.notice.text
          )
        );
      }
      const rows = m.plugins.map(p => renderRow(p, m.pendingFor(p.name), m.kernelBusy, run));
      body.push(
        h(
          'div',
          { className: 'flx-Plugins', 'data-testid': 'flx-plugins' },
          ...(rows.length ? rows : [h('div', { className: 'flx-Empty' }, 'No plugins loaded yet: %plugin load TARGET')])
        )
      );
      const events = m.events.slice(-12).reverse();
      body.push(
        h(
          'details',
          { className: 'flx-Events', 'data-testid': 'flx-events', open: this._eventsOpen },
          h('summary', {}, `recent events (${m.events.length})`),
          ...events.map(e =>
            h('div', { className: `flx-Event flx-Event-${e.kind}`, 'data-testid': 'flx-event', title: ago(e.time) }, e.summary)
          )
        )
      );
      const details = body[body.length - 1] as HTMLDetailsElement;
      details.addEventListener('toggle', () => {
        this._eventsOpen = details.open;
      });
    }
    this.node.replaceChildren(...body);
  }

  private _eventsOpen = true;
}
