import type { IDeltaMsg, IEventView, IPluginView, IStateView } from '../src/protocol';
import { MAX_EVENTS, PanelStore } from '../src/store';

function plugin(name: string, over: Partial<IPluginView> = {}): IPluginView {
  return {
    name,
    version: '1.0.0',
    description: '',
    source: `/work/${name}.py`,
    state: 'running',
    health: null,
    last_reload: null,
    error: null,
    requires: [],
    capabilities: [],
    signature: null,
    isolation: null,
    revisions: [],
    metrics: null,
    ...over
  };
}

function event(seq: number, kind: string, plugin: string | null = null): IEventView {
  return { seq, kind, plugin, time: 1000 + seq, summary: `${plugin ?? ''} ${kind}`, details: {} };
}

function state(seq: number, plugins: IPluginView[], events: IEventView[] = []): IStateView {
  return { seq, plugins, watcher: { watching: false, paths: [], saves_waiting: 0 }, events, flx_version: '0.1.0' };
}

function delta(seq: number, over: Partial<IDeltaMsg> = {}): IDeltaMsg {
  return { kind: 'delta', protocol: '1.0', seq, event: null, upsert: [], remove: [], watcher: null, ...over };
}

describe('PanelStore state', () => {
  it('ignores deltas before the snapshot and those already folded into it', () => {
    const s = new PanelStore();
    expect(s.applyDelta(delta(1, { upsert: [plugin('a')] }))).toBe(false);
    s.applySnapshot(state(5, [plugin('b'), plugin('a')]));
    expect(s.plugins.map(p => p.name)).toEqual(['a', 'b']); // sorted by name
    expect(s.applyDelta(delta(5, { remove: ['a'], event: event(5, 'unloaded', 'a') }))).toBe(false);
    expect(s.applyDelta(delta(4, { remove: ['a'] }))).toBe(false);
    expect(s.plugins).toHaveLength(2);
  });

  it('takes a refresh (protocol 1.2: no event, same seq) for figures that moved without an event', () => {
    const s = new PanelStore();
    const iso = {
      pid: 7,
      state: 'running',
      enforced: [],
      unavailable: {},
      rss_mb: 20,
      cpu_seconds: 0.1,
      crashes: 0,
      restarts: 0,
      last_crash: null,
      last_crash_at: null
    };
    s.applySnapshot(state(5, [plugin('a', { isolation: iso })], [event(5, 'started', 'a')]));
    expect(s.applyDelta(delta(5, { upsert: [plugin('a', { isolation: { ...iso, rss_mb: 31 } })] }))).toBe(true);
    expect(s.plugins[0].isolation?.rss_mb).toBe(31);
    expect(s.events).toHaveLength(1); // no event added
  });

  it('upserts and removes rows, updates the watcher, keeps a bounded event list', () => {
    const s = new PanelStore();
    s.applySnapshot(state(0, [plugin('a')]));
    expect(s.applyDelta(delta(1, { upsert: [plugin('a', { state: 'stopped' }), plugin('c')] }))).toBe(true);
    expect(s.plugins.map(p => [p.name, p.state])).toEqual([
      ['a', 'stopped'],
      ['c', 'running']
    ]);
    s.applyDelta(delta(2, { remove: ['a'], watcher: { watching: true, paths: ['/w'], saves_waiting: 1 } }));
    expect(s.plugins.map(p => p.name)).toEqual(['c']);
    expect(s.watcher.watching).toBe(true);
    expect(s.watcher.saves_waiting).toBe(1);
    for (let i = 3; i < 3 + MAX_EVENTS + 5; i++) {
      s.applyDelta(delta(i, { event: event(i, 'health_changed', 'c') }));
    }
    expect(s.events).toHaveLength(MAX_EVENTS);
    expect(s.events[s.events.length - 1].seq).toBe(MAX_EVENTS + 7);
  });

  it('reset forgets everything, so deltas wait for the next snapshot', () => {
    const s = new PanelStore();
    s.applySnapshot(state(3, [plugin('a')], [event(3, 'loaded', 'a')]));
    s.reset();
    expect(s.ready).toBe(false);
    expect(s.plugins).toEqual([]);
    expect(s.events).toEqual([]);
    expect(s.applyDelta(delta(4))).toBe(false);
  });
});

describe('PanelStore banner', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  it('is replaced by the next event, but not by "reloading" (only the start of one)', () => {
    const s = new PanelStore();
    s.applySnapshot(state(0, [plugin('a')]));
    s.showNotice({ ok: true, text: 'a stopped', plugin: 'a', action: 'stop' });
    s.applyDelta(delta(1, { event: event(1, 'reloading', 'a') }));
    expect(s.notice?.text).toBe('a stopped');
    s.applyDelta(delta(2, { event: event(2, 'reloaded', 'a') }));
    expect(s.notice).toBeNull();
    s.dispose();
  });

  it('fades by itself after a few seconds and says so', () => {
    jest.useFakeTimers();
    const expired = jest.fn();
    const s = new PanelStore(expired, 6000);
    s.applySnapshot(state(0, [plugin('a')]));
    s.showNotice({ ok: false, text: 'start a failed: boom', plugin: 'a', action: 'start' });
    jest.advanceTimersByTime(5999);
    expect(s.notice).not.toBeNull();
    jest.advanceTimersByTime(1);
    expect(s.notice).toBeNull();
    expect(expired).toHaveBeenCalledTimes(1);
  });

  it('a new banner restarts the clock; clearing stops it', () => {
    jest.useFakeTimers();
    const expired = jest.fn();
    const s = new PanelStore(expired, 1000);
    s.showNotice({ ok: true, text: 'one', plugin: null, action: 'refresh' });
    jest.advanceTimersByTime(800);
    s.showNotice({ ok: true, text: 'two', plugin: null, action: 'refresh' });
    jest.advanceTimersByTime(800);
    expect(s.notice?.text).toBe('two');
    s.clearNotice();
    jest.advanceTimersByTime(5000);
    expect(expired).not.toHaveBeenCalled();
  });

  it('never names a plugin that is gone, except to say it was unloaded', () => {
    const s = new PanelStore();
    s.applySnapshot(state(0, [plugin('a'), plugin('b')]));
    s.showNotice({ ok: false, text: 'reload a failed: x', plugin: 'a', action: 'reload' });
    s.applyDelta(delta(1, { remove: ['a'] })); // no event: e.g. gone from another notebook's %unload
    expect(s.notice).toBeNull();

    s.showNotice({ ok: true, text: 'b unloaded', plugin: 'b', action: 'unload' });
    s.applyDelta(delta(2, { remove: ['b'] }));
    expect(s.notice?.text).toBe('b unloaded');

    s.showNotice({ ok: false, text: 'stop a failed', plugin: 'a', action: 'stop' });
    s.applySnapshot(state(3, []));
    expect(s.notice).toBeNull();
    s.dispose();
  });
});
