/** One plugin: badge, name + version + signer, health, last reload, last error, worker, buttons. */
import { ALLOWED_ACTIONS, allowedActions, type IPluginView, PLUGIN_ACTIONS, type PluginActionName } from '../protocol';
import type { IPendingAction } from '../tokens';
import { h } from './dom';
import { findLocations, healthText, reloadText } from './format';
import { renderIsolation } from './isolation';
import { renderRevisions } from './revisions';
import { renderSignature } from './signature';

export type RunAction = (action: PluginActionName, plugin: string) => void;
/** Open a plugin file at a line in JupyterLab's editor. */
export type OpenSource = (path: string, line: number) => void;

export interface IRowOptions {
  pending: IPendingAction | undefined;
  kernelBusy: boolean;
  run: RunAction;
  open: OpenSource;
  /** epoch seconds, so every row of one render says the same "just now" */
  now: number;
  /** The rollback picker's choice in this row (kept by the panel), and how to change/run it. */
  picked: number | undefined;
  pick: (plugin: string, revision: number) => void;
  rollback: (plugin: string, revision: number) => void;
}

/** "start: possible when loaded, initialized, stopped or failed": read off the one table. */
export function whyDisabled(action: PluginActionName): string {
  const states = Object.entries(ALLOWED_ACTIONS)
    .filter(([, actions]) => actions.includes(action))
    .map(([state]) => state);
  const list = states.length > 1 ? `${states.slice(0, -1).join(', ')} or ${states[states.length - 1]}` : states[0];
  return `${action}: possible when ${list ?? 'never'}`;
}

/** `text` with every `file.py:line` in it as a link that opens the file at that line. */
export function withLinks(text: string, open: OpenSource, testid: string): (Node | string)[] {
  const parts: (Node | string)[] = [];
  let at = 0;
  for (const loc of findLocations(text)) {
    parts.push(text.slice(at, loc.start));
    const link = document.createElement('a');
    link.className = 'flx-Location';
    link.href = '#';
    link.dataset.testid = testid;
    link.title = `Open ${loc.path} at line ${loc.line} in the editor`;
    // The file name is enough to read; the whole path is in the tooltip.
    link.textContent = `${loc.path.slice(loc.path.lastIndexOf('/') + 1)}:${loc.line}`;
    link.addEventListener('click', ev => {
      ev.preventDefault();
      open(loc.path, loc.line);
    });
    parts.push(link);
    at = loc.end;
  }
  parts.push(text.slice(at));
  return parts.filter(p => p !== '');
}

export function renderRow(p: IPluginView, o: IRowOptions): HTMLElement {
  const id = (part: string) => `flx-${part}-${p.name}`;
  const allowed = allowedActions(p.state);
  const buttons = PLUGIN_ACTIONS.map(action => {
    const ok = o.pending === undefined && allowed.includes(action);
    const button = h(
      'button',
      {
        className: `jp-Button flx-Button flx-Button-${action}`,
        'data-testid': id(action),
        title: ok
          ? `${action} ${p.name}`
          : o.pending
            ? `waiting for ${o.pending.action} to finish`
            : `${whyDisabled(action)}; ${p.name} is ${p.state}`,
        disabled: !ok
      },
      action
    ) as HTMLButtonElement;
    button.addEventListener('click', () => o.run(action, p.name));
    return button;
  });
  let pendingEl: HTMLElement | null = null;
  if (o.pending) {
    const queued = o.pending.queued || o.kernelBusy;
    pendingEl = h(
      'div',
      { className: 'flx-Pending', 'data-testid': id('pending'), 'data-queued': queued ? 'true' : 'false' },
      queued ? `${o.pending.action} queued — runs when the kernel is idle` : `${o.pending.action}…`
    );
  }
  const health = p.health;
  const reload = p.last_reload;
  return h(
    'div',
    { className: 'flx-Row', 'data-testid': id('row'), 'data-state': p.state },
    h(
      'div',
      { className: 'flx-Row-head' },
      h('span', { className: `flx-Badge flx-Badge-${p.state}`, 'data-testid': id('state') }, p.state),
      h('span', { className: 'flx-Name', title: p.description || p.name }, p.name),
      h('span', { className: 'flx-Version', 'data-testid': id('version') }, `v${p.version}`),
      renderSignature(p)
    ),
    h(
      'div',
      {
        className: `flx-Health flx-Health-${health?.status ?? 'unknown'}`,
        'data-testid': id('health'),
        'data-health': health?.status ?? 'unknown'
      },
      healthText(health, o.now)
    ),
    h(
      'div',
      {
        className: `flx-Reload${reload && !reload.ok ? ' flx-Reload-bad' : ''}`,
        'data-testid': id('lastreload'),
        'data-outcome': reload ? (reload.ok ? 'ok' : reload.rolled_back ? 'rolled_back' : 'failed') : 'none'
      },
      ...withLinks(reloadText(reload, !p.error, o.now), o.open, id('open'))
    ),
    p.error
      ? h('div', { className: 'flx-Error', 'data-testid': id('error') }, ...withLinks(p.error, o.open, id('open')))
      : null,
    renderIsolation(p, o.now),
    h('div', { className: 'flx-Source', title: p.source }, p.source),
    h('div', { className: 'flx-Actions' }, ...buttons),
    renderRevisions(p, { pending: o.pending, picked: o.picked, pick: o.pick, rollback: o.rollback }),
    pendingEl
  );
}
