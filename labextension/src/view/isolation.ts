/**
 * An isolated plugin's worker, under its row: "isolated · pid 4242 · 38.2 MB · 0.41 s CPU",
 * the layers read back as in force, and the last crash with its reason. In-kernel plugins
 * (`isolation` null) show nothing: the row is then as it always was.
 */
import type { IIsolationView, IPluginView } from '../protocol';
import { h } from './dom';
import { ago } from './format';

/** "isolated · pid 4242 · 38.2 MB · 0.41 s CPU" (a state other than running is named). */
export function workerText(iso: IIsolationView): string {
  const parts = ['isolated'];
  if (iso.state !== 'running') {
    parts.push(iso.state);
  }
  if (iso.pid !== null) {
    parts.push(`pid ${iso.pid}`);
  }
  if (iso.rss_mb !== null) {
    parts.push(`${iso.rss_mb < 10 ? iso.rss_mb.toFixed(1) : Math.round(iso.rss_mb)} MB`);
  }
  if (iso.cpu_seconds !== null) {
    parts.push(`${iso.cpu_seconds < 10 ? iso.cpu_seconds.toFixed(2) : Math.round(iso.cpu_seconds)} s CPU`);
  }
  return parts.join(' · ');
}

/** "enforced: userns, netns, seccomp" / "enforced: none"; the tooltip says why others are not. */
export function layersText(iso: IIsolationView): string {
  return `enforced: ${iso.enforced.length ? iso.enforced.join(', ') : 'none'}`;
}

export function unavailableText(iso: IIsolationView): string {
  return Object.entries(iso.unavailable)
    .map(([layer, why]) => `${layer}: ${why}`)
    .join('\n');
}

/** "last crash: segfault (SIGSEGV) · 2 min ago · 1 restart", or '' if it never crashed. */
export function crashText(iso: IIsolationView, now?: number): string {
  if (!iso.last_crash && iso.crashes === 0) {
    return '';
  }
  const when = ago(iso.last_crash_at, now);
  const restarts = iso.restarts ? `${iso.restarts} restart${iso.restarts === 1 ? '' : 's'}` : '';
  const count = iso.crashes > 1 ? `${iso.crashes} crashes` : '';
  return [`last crash: ${iso.last_crash ?? 'unknown reason'}`, when, count, restarts].filter(Boolean).join(' · ');
}

export function renderIsolation(p: IPluginView, now: number): HTMLElement | null {
  const iso = p.isolation;
  if (!iso) {
    return null;
  }
  const id = (part: string) => `flx-${part}-${p.name}`;
  const crash = crashText(iso, now);
  const missing = unavailableText(iso);
  return h(
    'div',
    { className: 'flx-Isolation', 'data-testid': id('isolation'), 'data-worker': iso.state },
    h('div', { className: 'flx-Worker', 'data-testid': id('worker') }, workerText(iso)),
    h(
      'div',
      {
        className: 'flx-Layers',
        'data-testid': id('layers'),
        title: missing ? `not in force here:\n${missing}` : 'every layer asked for is in force'
      },
      layersText(iso)
    ),
    crash ? h('div', { className: 'flx-Crash', 'data-testid': id('crash') }, crash) : null
  );
}
