/**
 * The side panel: status line, one row per plugin, the watcher, the index, recent events.
 * Re-renders from the model on every `changed` (and every few seconds while shown, so "just
 * now" ages); holds no state of its own but whether the event list is open.
 */
import { Widget } from '@lumino/widgets';

import { flxIcon } from '../icon';
import type { PluginActionName } from '../protocol';
import { type ConnectionStatus, type IPanelModel, PANEL_ID } from '../tokens';
import { h } from './dom';
import { ago, clock, listedEvents, waitingText } from './format';
import { renderIndex } from './indexview';
import { type OpenSource, renderRow, withLinks } from './row';

export interface IPanelOptions {
  /** Open a plugin file at a line (JupyterLab's editor). */
  open: OpenSource;
  /** Unload throws the plugin's state away: ask first. Resolves `true` to go on. */
  confirmUnload: (plugin: string) => Promise<boolean>;
}

/** How often the panel re-renders while shown, for the relative times. */
const TICK_MS = 10_000;

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
  constructor(
    private readonly _model: IPanelModel,
    private readonly _options: IPanelOptions
  ) {
    super();
    this.id = PANEL_ID;
    this.addClass('flx-Panel');
    this.node.dataset.testid = 'flx-panel';
    this.title.icon = flxIcon;
    this.title.caption = 'flx_ipy plugins';
    _model.changed.connect(this._render, this);
    this._timer = setInterval(() => {
      if (this.isVisible) {
        this._render();
      }
    }, TICK_MS);
    this._render();
  }

  dispose(): void {
    clearInterval(this._timer);
    this._model.changed.disconnect(this._render, this);
    super.dispose();
  }

  private _render(): void {
    const m = this._model;
    const now = Date.now() / 1000;
    const open = this._options.open;
    const run = (action: PluginActionName, plugin: string) => void this._act(action, plugin);
    const refresh = h(
      'button',
      {
        className: 'jp-Button flx-Button',
        'data-testid': 'flx-refresh',
        title: 'Ask the kernel for the whole state again (re-checks health)',
        disabled: m.status !== 'ready'
      },
      'refresh'
    );
    refresh.addEventListener('click', () => {
      m.run('refresh', null).catch(() => undefined); // a lost connection shows in the status line
    });

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
      const waiting = waitingText(w.saves_waiting ?? 0);
      if (waiting) {
        body.push(h('div', { className: 'flx-Pending', 'data-testid': 'flx-saves-waiting' }, waiting));
      }
      if (m.notice) {
        body.push(
          h(
            'div',
            { className: `flx-Notice${m.notice.ok ? '' : ' flx-Notice-bad'}`, 'data-testid': 'flx-notice' },
            ...withLinks(m.notice.text, open, 'flx-notice-open')
          )
        );
      }
      const pick = (plugin: string, revision: number) => this._picked.set(plugin, revision);
      const rollback = (plugin: string, revision: number) => {
        this._picked.delete(plugin); // after it, the newest earlier revision is the default again
        void m.rollback(plugin, revision).catch(() => undefined); // the banner shows the outcome
      };
      const rows = m.plugins.map(p =>
        renderRow(p, {
          pending: m.pendingFor(p.name),
          kernelBusy: m.kernelBusy,
          run,
          open,
          now,
          picked: this._picked.get(p.name),
          pick,
          rollback
        })
      );
      body.push(
        h(
          'div',
          { className: 'flx-Plugins', 'data-testid': 'flx-plugins' },
          ...(rows.length ? rows : [h('div', { className: 'flx-Empty' }, 'No plugins loaded yet: %plugin load TARGET')])
        )
      );
      body.push(
        renderIndex(m.index, {
          search: term => void m.searchIndex(term).catch(() => undefined), // shown as the index line
          install: spec => void m.install(spec).catch(() => undefined),
          term: this._term,
          setTerm: term => {
            this._term = term;
          },
          open: this._indexOpen,
          setOpen: open => {
            this._indexOpen = open;
          }
        })
      );
      const listed = listedEvents(m.events);
      const events = listed.slice(-12).reverse();
      body.push(
        h(
          'details',
          { className: 'flx-Events', 'data-testid': 'flx-events', open: this._eventsOpen },
          h('summary', {}, `recent events (${listed.length})`),
          ...events.map(e =>
            h(
              'div',
              {
                className: `flx-Event flx-Event-${e.kind}`,
                'data-testid': 'flx-event',
                'data-kind': e.kind,
                title: ago(e.time, now)
              },
              h('span', { className: 'flx-Event-time', 'data-testid': 'flx-event-time' }, clock(e.time)),
              ' ',
              ...withLinks(e.summary, open, 'flx-event-open')
            )
          )
        )
      );
      const details = body[body.length - 1] as HTMLDetailsElement;
      details.addEventListener('toggle', () => {
        this._eventsOpen = details.open;
      });
    }
    // A delta re-renders while someone types in the index box: keep their caret there.
    const typing = document.activeElement instanceof HTMLInputElement && this.node.contains(document.activeElement);
    const caret = typing ? (document.activeElement as HTMLInputElement).selectionStart : null;
    this.node.replaceChildren(...body);
    if (typing) {
      const box = this.node.querySelector<HTMLInputElement>('[data-testid="flx-index-term"]');
      box?.focus();
      if (box && caret !== null) {
        box.setSelectionRange(caret, caret);
      }
    }
  }

  private async _act(action: PluginActionName, plugin: string): Promise<void> {
    if (action === 'unload' && !(await this._options.confirmUnload(plugin))) {
      return;
    }
    // The model shows a refusal or a lost connection as the banner: nothing to add here.
    await this._model.run(action, plugin).catch(() => undefined);
  }

  private _eventsOpen = true;
  private _indexOpen = false;
  /** The revision picked in each row's rollback picker, until it is used. */
  private _picked = new Map<string, number>();
  private _term = '';
  private _timer: ReturnType<typeof setInterval>;
}
