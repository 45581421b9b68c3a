import type { IPluginView } from '../src/protocol';
import {
  ago,
  findLocations,
  healthText,
  listedEvents,
  reloadText,
  serverPath,
  summary,
  waitingText
} from '../src/view/format';

function plugin(name: string, over: Partial<IPluginView> = {}): IPluginView {
  return {
    name,
    version: '1.0.0',
    description: '',
    source: '',
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

const rolledBack = {
  ok: false,
  rolled_back: true,
  error: 'SyntaxError: invalid syntax',
  duration_ms: 1.2,
  finished_at: 100,
  note: null
};

describe('summary (the status bar)', () => {
  it('counts running and rolled-back plugins', () => {
    const plugins = [
      plugin('a'),
      plugin('b'),
      plugin('c', { last_reload: rolledBack, error: 'reload failed in compile: SyntaxError' })
    ];
    expect(summary(plugins)).toBe('flx_ipy: 3 running · 1 rolled back');
  });

  it('leaves zero counts out and says failed and stopped plainly', () => {
    expect(summary([plugin('a', { state: 'failed' }), plugin('b', { state: 'stopped' })])).toBe(
      'flx_ipy: 1 stopped · 1 failed'
    );
    expect(summary([])).toBe('flx_ipy: no plugins');
  });

  it('does not count a rollback whose error was cleared (the fix was saved)', () => {
    expect(summary([plugin('a', { last_reload: rolledBack, error: null })])).toBe('flx_ipy: 1 running');
  });
});

describe('file:line links', () => {
  it('finds absolute python locations in a message', () => {
    const text = 'reload failed in compile: SyntaxError: invalid syntax (/srv/work/greeter.py:10) — kept';
    const [loc] = findLocations(text);
    expect(loc).toMatchObject({ path: '/srv/work/greeter.py', line: 10 });
    expect(text.slice(loc.start, loc.end)).toBe('/srv/work/greeter.py:10');
    expect(findLocations('a.py:3 is relative; /x/y.txt:4 is not python')).toEqual([]);
  });

  it('maps a kernel path into the server root, or says it cannot', () => {
    expect(serverPath('/srv/work/greeter.py', '/srv')).toBe('work/greeter.py');
    expect(serverPath('/srv/work/greeter.py', '/srv/')).toBe('work/greeter.py');
    expect(serverPath('/srvx/greeter.py', '/srv')).toBeNull();
    expect(serverPath('/tmp/greeter.py', '/srv')).toBeNull();
    expect(serverPath('/tmp/greeter.py', '/')).toBe('tmp/greeter.py');
    expect(serverPath('/home/ann/nb/greeter.py', '~/nb')).toBe('greeter.py');
    expect(serverPath('/home/ann/nb/greeter.py', '')).toBeNull();
  });
});

describe('texts', () => {
  it('says when health was checked, also when nothing changed', () => {
    expect(healthText({ status: 'healthy', message: '3 ticks', checked_at: 100 }, 101)).toBe(
      'health: healthy — 3 ticks · checked just now'
    );
    expect(healthText(null)).toBe('health: not checked');
  });

  it('describes the last reload', () => {
    expect(reloadText(null)).toBe('never reloaded');
    expect(reloadText({ ...rolledBack }, true, 100)).toBe('rolled back: SyntaxError: invalid syntax · just now');
    expect(
      reloadText({ ok: true, rolled_back: false, error: null, duration_ms: 2.14, finished_at: 40, note: null }, true, 100)
    ).toBe('reloaded · 2.1 ms · 1 min ago');
    const cleared = { ok: true, rolled_back: false, error: null, duration_ms: 0, finished_at: 100, note: 'source matches the running version' };
    expect(reloadText(cleared, true, 100)).toBe('error cleared: source matches the running version · just now');
    expect(ago(null)).toBe('');
    expect(ago(0, 30)).toBe('30 s ago');
  });

  it('says how many saves wait for the running cell', () => {
    expect(waitingText(0)).toBe('');
    expect(waitingText(1)).toBe('1 save waiting for the running cell');
    expect(waitingText(3)).toBe('3 saves waiting for the running cell');
  });

  it('lists events without a "reloading" line per reload', () => {
    const ev = (seq: number, kind: string) => ({ seq, kind, plugin: 'a', time: seq, summary: kind, details: {} });
    expect(listedEvents([ev(1, 'reloading'), ev(2, 'reloaded'), ev(4, 'saves_waiting'), ev(3, 'stopped')]).map(e => e.kind)).toEqual([
      'reloaded',
      'stopped'
    ]);
  });
});
