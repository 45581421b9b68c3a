/**
 * The rollback picker under a row (issue 14): the kept revisions a rollback can go to, newest
 * first ("r2 · v1.0.0 · reload · 14:03:07"), and a *roll back* button that runs the picked one's
 * code again through `run_action` (`pm.rollback(plugin, to=revision)`). Shown only where the
 * manager would accept it: the row's state allows `rollback` and an earlier revision is kept
 * (`rowActions`); isolated plugins too (the manager sends the kept code to the worker).
 */
import { allowedActions, type IPluginView, type IRevisionView, type PluginActionName } from '../protocol';
import type { IPendingAction } from '../tokens';
import { h } from './dom';
import { clock } from './format';

/** Every kept revision but the current, newest first (`rollback_targets` in protocol.py). */
export function rollbackTargets(p: Pick<IPluginView, 'revisions'>): IRevisionView[] {
  return [...(p.revisions ?? [])].reverse().filter(r => !r.current);
}

/** The actions a row offers (`row_actions` in protocol.py): no rollback without an earlier revision. */
export function rowActions(p: Pick<IPluginView, 'state' | 'revisions'>): readonly PluginActionName[] {
  const allowed = allowedActions(p.state);
  if (allowed.includes('rollback') && rollbackTargets(p).length === 0) {
    return allowed.filter(a => a !== 'rollback');
  }
  return allowed;
}

/** "r2 · v1.0.0 · reload · 14:03:07" (a rollback says which revision's code it ran again). */
export function revisionText(r: IRevisionView): string {
  const reason = r.reason === 'rollback' && r.rollback_of !== null ? `rollback to r${r.rollback_of}` : r.reason;
  return [`r${r.revision}`, r.version ? `v${r.version}` : '', reason, r.time ? clock(r.time) : '']
    .filter(Boolean)
    .join(' · ');
}

export interface IRevisionOptions {
  pending: IPendingAction | undefined;
  /** The revision picked in this row (kept by the panel across re-renders), if any. */
  picked: number | undefined;
  pick: (plugin: string, revision: number) => void;
  rollback: (plugin: string, revision: number) => void;
}

export function renderRevisions(p: IPluginView, o: IRevisionOptions): HTMLElement | null {
  const targets = rollbackTargets(p);
  if (targets.length === 0) {
    return null;
  }
  const id = (part: string) => `flx-${part}-${p.name}`;
  const picked = targets.find(r => r.revision === o.picked) ?? targets[0];
  const ok = o.pending === undefined && rowActions(p).includes('rollback');
  const select = h(
    'select',
    { className: 'jp-mod-styled flx-Revisions', 'data-testid': id('revisions'), title: 'the revision to run again' },
    ...targets.map(r => h('option', { value: String(r.revision), selected: r === picked }, revisionText(r)))
  ) as HTMLSelectElement;
  select.value = String(picked.revision);
  select.addEventListener('change', () => o.pick(p.name, Number(select.value)));
  const button = h(
    'button',
    {
      className: 'jp-Button flx-Button flx-Button-rollback',
      'data-testid': id('rollback'),
      title: ok
        ? `run revision ${picked.revision}'s code again (state kept, as a reload)`
        : o.pending
          ? `waiting for ${o.pending.action} to finish`
          : `rollback: not possible while ${p.name} is ${p.state}`,
      disabled: !ok
    },
    'roll back'
  );
  button.addEventListener('click', () => o.rollback(p.name, Number(select.value)));
  return h('div', { className: 'flx-Rollback', 'data-testid': id('rollback-picker') }, select, button);
}
