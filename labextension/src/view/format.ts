/** Small pure formatters shared by the views. */
import type { IReloadView } from '../protocol';

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
export function reloadText(r: IReloadView | null, withError = true): string {
  if (!r) {
    return 'never reloaded';
  }
  const when = ago(r.finished_at);
  if (r.ok) {
    return ['reloaded', duration(r.duration_ms), when].filter(Boolean).join(' · ');
  }
  const verdict = r.rolled_back ? 'rolled back' : 'reload failed';
  return `${verdict}${withError && r.error ? `: ${r.error}` : ''}${when ? ` · ${when}` : ''}`;
}
