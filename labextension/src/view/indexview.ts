/**
 * The Index section: a search box over the kernel's configured index, one row per offered
 * package with an Install button, pip's latest line while installing, errors in one line.
 * The state lives in the model (`IndexState`); the only state here is the box's text.
 */
import type { IIndexRow } from '../protocol';
import type { IIndexView } from '../indexstate';
import { h } from './dom';

export interface IIndexOptions {
  search: (term: string) => void;
  install: (spec: string) => void;
  /** The search box's text, kept across re-renders. */
  term: string;
  setTerm: (term: string) => void;
  open: boolean;
  setOpen: (open: boolean) => void;
}

/** "counter 1.1.0 · plugins: counter · signed": a row's facts on one line. */
export function offerText(r: IIndexRow): string {
  const plugins = r.plugins.length ? `plugins: ${r.plugins.join(', ')}` : '';
  return [`${r.name} ${r.latest}`, plugins, r.signature].filter(Boolean).join(' · ');
}

function renderOffer(r: IIndexRow, view: IIndexView, o: IIndexOptions): HTMLElement {
  const spec = r.latest ? `${r.name}==${r.latest}` : r.name;
  const mine = view.phase === 'installing' && view.installing === spec;
  const button = h(
    'button',
    {
      className: 'jp-Button flx-Button flx-Button-install',
      'data-testid': `flx-install-${r.name}`,
      title: view.phase === 'idle' ? `pip install ${spec} from the index and load its plugins` : 'wait for the running step',
      disabled: view.phase !== 'idle'
    },
    mine ? 'installing…' : 'install'
  );
  button.addEventListener('click', () => o.install(spec));
  return h(
    'div',
    { className: 'flx-Offer', 'data-testid': `flx-offer-${r.name}`, 'data-signature': r.signature },
    h(
      'div',
      { className: 'flx-Offer-head' },
      h('span', { className: 'flx-Name' }, r.name),
      h('span', { className: 'flx-Version' }, r.latest ? `v${r.latest}` : ''),
      h('span', { className: `flx-Signature flx-Signature-${r.signature}` }, r.signature)
    ),
    h(
      'div',
      { className: 'flx-Offer-foot' },
      h('span', { className: 'flx-Offer-summary', title: offerText(r) }, r.summary),
      button
    )
  );
}

export function renderIndex(view: IIndexView, o: IIndexOptions): HTMLElement {
  const box = h('input', {
    className: 'jp-mod-styled flx-Index-term',
    'data-testid': 'flx-index-term',
    type: 'search',
    placeholder: 'search the index (empty: all)',
    value: o.term
  }) as HTMLInputElement;
  box.value = o.term;
  box.addEventListener('input', () => o.setTerm(box.value));
  box.addEventListener('keydown', ev => {
    if (ev.key === 'Enter') {
      o.search(box.value);
    }
  });
  const go = h(
    'button',
    {
      className: 'jp-Button flx-Button',
      'data-testid': 'flx-index-search',
      title: "list what the kernel's index offers (c.PluginMagics.index or $FLX_IPY_INDEX)",
      disabled: view.phase !== 'idle'
    },
    view.phase === 'searching' ? 'searching…' : 'search'
  );
  go.addEventListener('click', () => o.search(box.value));
  const line = view.error ?? view.line;
  const rows = view.rows;
  const section = h(
    'details',
    { className: 'flx-Index', 'data-testid': 'flx-index', 'data-phase': view.phase, open: o.open },
    h('summary', {}, rows ? `index (${rows.length})` : 'index'),
    h('div', { className: 'flx-Index-bar' }, box, go),
    line
      ? h(
          'div',
          {
            className: `flx-Index-line${view.error ? ' flx-Index-error' : ''}`,
            'data-testid': 'flx-index-line',
            'data-error': view.error ? 'true' : 'false',
            title: line
          },
          line
        )
      : null,
    rows && rows.length === 0 && !view.error
      ? h('div', { className: 'flx-Empty' }, view.term ? `nothing matches "${view.term}"` : 'the index is empty')
      : null,
    ...(rows ?? []).map(r => renderOffer(r, view, o))
  );
  section.addEventListener('toggle', () => o.setOpen((section as HTMLDetailsElement).open));
  return section;
}
