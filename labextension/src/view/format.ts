/** Small pure formatters shared by the views (no DOM: unit-tested in `test/format.test.ts`). */
import type { IEventView, IHealthView, IPluginView, IReloadView } from '../protocol';

export function ago(epochSeconds: number | null, now: number = Date.now() / 1000): string {
  if (epochSeconds === null) {
    return '';
  }
  const s = Math.max(0, Math.round(now - epochSeconds));
  if (s < 5) {
    return 'just now';
  }
  if (s < 60) {
    return `${s} s ago`;
  }
  if (s < 3600) {
    return `${Math.round(s / 60)} min ago`;
  }
  return new Date(epochSeconds * 1000).toLocaleTimeString();
}

/** "14:03:07": the wall-clock time of an event, in the browser's time zone. */
export function clock(epochSeconds: number): string {
  const d = new Date(epochSeconds * 1000);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

export function duration(ms: number | null): string {
  if (ms === null) {
    return '';
  }
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

/**
 * "reloaded · 2.1 ms · just now", "rolled back: SyntaxError ... · just now", or "never".
 * `withError` false leaves the error out (the row shows it on its own line already).
 */
export function reloadText(r: IReloadView | null, withError = true, now?: number): string {
  if (!r) {
    return 'never reloaded';
  }
  const when = ago(r.finished_at, now);
  if (r.ok) {
    const what = r.note ? `error cleared: ${r.note}` : 'reloaded';
    return [what, r.note ? '' : duration(r.duration_ms), when].filter(Boolean).join(' · ');
  }
  const verdict = r.rolled_back ? 'rolled back' : 'reload failed';
  return `${verdict}${withError && r.error ? `: ${r.error}` : ''}${when ? ` · ${when}` : ''}`;
}

/** "health: healthy — 3 ticks · checked just now" (a re-check that changed nothing still says when). */
export function healthText(h: IHealthView | null, now?: number): string {
  if (!h) {
    return 'health: not checked';
  }
  const when = ago(h.checked_at, now);
  return `health: ${h.status}${h.message ? ` — ${h.message}` : ''}${when ? ` · checked ${when}` : ''}`;
}

/**
 * The events the list shows: "reloading" only announces a reload whose outcome follows as its
 * own event (and the row's badge shows it meanwhile), so it would just double every reload;
 * "saves_waiting" is shown as the watcher's line.
 */
export function listedEvents(events: readonly IEventView[]): IEventView[] {
  return events.filter(e => !UNLISTED_EVENTS.has(e.kind));
}

/** Steps the panel shows as state instead: the row's badge, the watcher's "waiting" line. */
const UNLISTED_EVENTS = new Set(['reloading', 'saves_waiting']);

/** "1 save waiting for the running cell", or '' when none waits. */
export function waitingText(count: number): string {
  return count > 0 ? `${count} save${count === 1 ? '' : 's'} waiting for the running cell` : '';
}

/** A plugin counts as rolled back while its last reload was undone and the error still stands. */
export function isRolledBack(p: IPluginView): boolean {
  const r = p.last_reload;
  return !!r && !r.ok && r.rolled_back && p.error !== null;
}

/** The status bar's text: "flx_ipy: 2 running · 1 rolled back" (zero counts are left out). */
export function summary(plugins: readonly IPluginView[]): string {
  if (plugins.length === 0) {
    return 'flx_ipy: no plugins';
  }
  const count = (pred: (p: IPluginView) => boolean) => plugins.filter(pred).length;
  const parts: [number, string][] = [
    [count(p => p.state === 'running'), 'running'],
    [count(p => p.state === 'reloading'), 'reloading'],
    [count(p => p.state === 'stopped'), 'stopped'],
    [count(p => p.state === 'loaded' || p.state === 'initialized'), 'not started'],
    [count(p => p.state === 'failed'), 'failed'],
    [count(isRolledBack), 'rolled back']
  ];
  const shown = parts.filter(([n]) => n > 0).map(([n, what]) => `${n} ${what}`);
  return `flx_ipy: ${shown.join(' · ')}`;
}

/** A `file.py:line` inside a message: what the panel turns into a link to the editor. */
export interface ILocation {
  path: string;
  line: number;
  /** Where in the text the `path:line` starts and ends. */
  start: number;
  end: number;
}

const LOCATION = /(\/[^\s()'",:]+\.py):(\d+)/g;

/** Every absolute `path.py:line` in `text`, in order. */
export function findLocations(text: string): ILocation[] {
  const out: ILocation[] = [];
  for (const m of text.matchAll(LOCATION)) {
    const start = m.index ?? 0;
    out.push({ path: m[1], line: Number(m[2]), start, end: start + m[0].length });
  }
  return out;
}

/**
 * `abs` as a path JupyterLab's file browser knows (relative to the server root), or `null` if
 * the file is outside the root, where JupyterLab cannot open it.
 */
export function serverPath(abs: string, serverRoot: string): string | null {
  const root = serverRoot === '/' ? '/' : serverRoot.replace(/\/+$/, '');
  if (!root || !abs.startsWith('/')) {
    return null;
  }
  if (root.startsWith('~')) {
    // The server shows a root under the home folder as "~/..."; the kernel reports real paths.
    abs = abs.replace(/^(\/root|\/home\/[^/]+)(?=\/)/, '~');
  }
  if (root === '/') {
    return abs.slice(1);
  }
  return abs.startsWith(root + '/') ? abs.slice(root.length + 1) : null;
}
