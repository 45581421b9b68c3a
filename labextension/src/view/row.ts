/** One plugin: badge, name + version, health, last reload, last error, action buttons. */
import type { IPendingAction } from '../model';
import { IPluginView, PLUGIN_ACTIONS, PluginActionName } from '../protocol';
import { h } from './dom';
import { canRun, reloadText } from './format';

export type RunAction = (action: PluginActionName, plugin: string) => void;

export function renderRow(
  p: IPluginView,
  pending: IPendingAction | undefined,
  kernelBusy: boolean,
  run: RunAction
): HTMLElement {
  const id = (part: string) => `flx-${part}-${p.name}`;
  const health = p.health;
  const buttons = PLUGIN_ACTIONS.map(action => {
    const button = h(
      'button',
      {
        className: `jp-Button flx-Button flx-Button-${action}`,
        'data-testid': id(action),
        title: `${action} ${p.name}`,
        disabled: pending !== undefined || !canRun(action, p)
      },
      action
    ) as HTMLButtonElement;
    button.addEventListener('click', () => run(action, p.name));
    return button;
  });
  let pendingEl: HTMLElement | null = null;
  if (pending) {
    const queued = pending.queued || kernelBusy;
    pendingEl = h(
      'div',
      { className: 'flx-Pending', 'data-testid': id('pending'), 'data-queued': queued ? 'true' : 'false' },
      queued ? `${pending.action} queued — runs when the kernel is idle` : `${pending.action}…`
    );
  }
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
      signatureBadge(p, id('signature'))
    ),
    h(
      'div',
      {
        className: `flx-Health flx-Health-${health?.status ?? 'unknown'}`,
        'data-testid': id('health'),
        'data-health': health?.status ?? 'unknown'
      },
      `health: ${health ? health.status : 'not checked'}${health?.message ? ` — ${health.message}` : ''}`
    ),
    h(
      'div',
      {
        className: `flx-Reload${reload && !reload.ok ? ' flx-Reload-bad' : ''}`,
        'data-testid': id('lastreload'),
        'data-outcome': reload ? (reload.ok ? 'ok' : reload.rolled_back ? 'rolled_back' : 'failed') : 'none'
      },
      reloadText(reload, !p.error)
    ),
    p.error ? h('div', { className: 'flx-Error', 'data-testid': id('error') }, p.error) : null,
    h('div', { className: 'flx-Source', title: p.source }, p.source),
    h('div', { className: 'flx-Actions' }, ...buttons),
    pendingEl
  );
}

/** "signed by alice" / "modified: a.py" / "unsigned"; nothing when no policy checks signatures. */
function signatureBadge(p: IPluginView, testid: string): HTMLElement | null {
  const sig = p.signature;
  if (!sig) {
    return null;
  }
  const text =
    sig.status === 'signed'
      ? `signed by ${sig.signer ?? '?'}`
      : sig.status === 'modified'
        ? `modified: ${sig.files.join(', ')}`
        : sig.status;
  return h(
    'span',
    { className: `flx-Signature flx-Signature-${sig.status}`, 'data-testid': testid, 'data-signature': sig.status },
    text
  );
}
