/**
 * What the panel knows about one kernel's manager: the plugins, the watcher, recent events and
 * the banner, folded from one snapshot and then one delta per manager event.
 *
 * No comm and no DOM, so it is unit-tested on its own (`test/store.test.ts`). The model feeds it
 * messages; the store only decides what they mean for the state.
 */
import type { IDeltaMsg, IEventView, IPluginView, IStateView, IWatcherView } from './protocol';
import type { INotice } from './tokens';

/** Events kept for the list (the kernel keeps its own bounded history). */
export const MAX_EVENTS = 50;
/** A banner fades after this long unless an event replaced it first. */
export const NOTICE_MS = 6000;

const byName = (a: IPluginView, b: IPluginView): number => a.name.localeCompare(b.name);

export class PanelStore {
  /** `onExpire` is called when the banner fades by itself (so the owner can re-render). */
  constructor(
    private readonly _onExpire: () => void = () => undefined,
    private readonly _noticeMs: number = NOTICE_MS
  ) {}

  /** A snapshot has arrived since the last reset: deltas apply on top of it. */
  get ready(): boolean {
    return this._ready;
  }
  get seq(): number {
    return this._seq;
  }
  get plugins(): readonly IPluginView[] {
    return this._plugins;
  }
  get watcher(): IWatcherView {
    return this._watcher;
  }
  get events(): readonly IEventView[] {
    return this._events;
  }
  get flxVersion(): string {
    return this._flxVersion;
  }
  get notice(): INotice | null {
    return this._notice;
  }

  applySnapshot(state: IStateView): void {
    this._ready = true;
    this._seq = state.seq;
    this._plugins = [...state.plugins].sort(byName);
    this._watcher = state.watcher;
    this._events = state.events.slice(-MAX_EVENTS);
    this._flxVersion = state.flx_version;
    this._dropNoticeOfGonePlugins();
  }

  /** Fold one delta in; `false` if it was already part of the snapshot (or came before one). */
  applyDelta(delta: IDeltaMsg): boolean {
    // Protocol 1.2: `event: null` at the same seq refreshes figures (RSS, CPU) that moved
    // without an event; anything else at or below our seq is old news.
    const refresh = delta.event === null && delta.seq === this._seq;
    if (!this._ready || (delta.seq <= this._seq && !refresh)) {
      return false;
    }
    this._seq = delta.seq;
    const rows = new Map(this._plugins.map(p => [p.name, p]));
    for (const name of delta.remove) {
      rows.delete(name);
    }
    for (const row of delta.upsert) {
      rows.set(row.name, row);
    }
    this._plugins = [...rows.values()].sort(byName);
    if (delta.watcher) {
      this._watcher = delta.watcher;
    }
    if (delta.event) {
      this._events = [...this._events, delta.event].slice(-MAX_EVENTS);
      // The next thing that happens replaces the banner ("reloading" is only the start of one).
      if (delta.event.kind !== 'reloading') {
        this.clearNotice();
      }
    }
    this._dropNoticeOfGonePlugins();
    return true;
  }

  /** Show a banner; it fades after a few seconds unless an event replaces it first. */
  showNotice(notice: Omit<INotice, 'at'>, now: number = Date.now()): void {
    this.clearNotice();
    this._notice = { ...notice, at: now };
    if (this._noticeMs > 0) {
      this._timer = setTimeout(() => {
        this._timer = null;
        this._notice = null;
        this._onExpire();
      }, this._noticeMs);
    }
  }

  clearNotice(): void {
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
    this._notice = null;
  }

  /** Forget everything (kernel switched, restarted, or flx_ipy unloaded). */
  reset(): void {
    this.clearNotice();
    this._ready = false;
    this._seq = 0;
    this._plugins = [];
    this._watcher = { watching: false, paths: [], saves_waiting: 0 };
    this._events = [];
  }

  dispose(): void {
    this.clearNotice();
  }

  /** A banner never names a plugin that is gone, except the one saying it was unloaded. */
  private _dropNoticeOfGonePlugins(): void {
    const n = this._notice;
    if (n?.plugin && n.action !== 'unload' && !this._plugins.some(p => p.name === n.plugin)) {
      this.clearNotice();
    }
  }

  private _ready = false;
  private _seq = 0;
  private _plugins: IPluginView[] = [];
  private _watcher: IWatcherView = { watching: false, paths: [], saves_waiting: 0 };
  private _events: IEventView[] = [];
  private _flxVersion = '';
  private _notice: INotice | null = null;
  private _timer: ReturnType<typeof setTimeout> | null = null;
}
