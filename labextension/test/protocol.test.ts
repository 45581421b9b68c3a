import {
  action,
  ALLOWED_ACTIONS,
  allowedActions,
  asKernelMessage,
  hello,
  PLUGIN_ACTIONS,
  PROTOCOL_VERSION,
  versionProblem
} from '../src/protocol';

describe('allowedActions', () => {
  it('offers what the manager accepts in each state', () => {
    expect(allowedActions('running')).toEqual(['stop', 'reload', 'rollback', 'unload']);
    expect(allowedActions('stopped')).toEqual(['start', 'reload', 'rollback', 'unload']);
  });

  it('never offers reload on a failed plugin', () => {
    expect(allowedActions('failed')).not.toContain('reload');
    expect(allowedActions('failed')).toContain('start');
  });

  it('offers nothing while reloading, or in a state it does not know', () => {
    expect(allowedActions('reloading')).toEqual([]);
    expect(allowedActions('teleporting')).toEqual([]);
    expect(allowedActions('constructor')).toEqual([]); // not an inherited property
  });

  it('only lists plugin actions (a button each, or the rollback picker)', () => {
    for (const actions of Object.values(ALLOWED_ACTIONS)) {
      for (const a of actions) {
        expect([...PLUGIN_ACTIONS, 'rollback']).toContain(a);
      }
    }
  });
});

describe('versionProblem', () => {
  it('accepts the same major version', () => {
    expect(versionProblem('1.7')).toBeNull();
  });

  it('names both versions and the fix otherwise', () => {
    const text = versionProblem('2.0') ?? '';
    expect(text).toContain(`protocol ${PROTOCOL_VERSION}`);
    expect(text).toContain('speaks 2.0');
    expect(text).toContain('pip install -U flx_ipy');
    expect(versionProblem(undefined)).not.toBeNull();
  });
});

describe('messages', () => {
  it('narrows known kinds and ignores the rest', () => {
    expect(asKernelMessage({ kind: 'delta', protocol: '1.0' })?.kind).toBe('delta');
    expect(asKernelMessage({ kind: 'future-kind' })).toBeNull();
    expect(asKernelMessage(null)).toBeNull();
    expect(asKernelMessage('snapshot')).toBeNull();
  });

  it('builds messages stamped with the version', () => {
    expect(hello('c1')).toEqual({ kind: 'hello', protocol: PROTOCOL_VERSION, client: 'labextension', replaces: 'c1' });
    expect(action('r1', 'stop', 'counter')).toEqual({
      kind: 'action',
      protocol: PROTOCOL_VERSION,
      request_id: 'r1',
      action: 'stop',
      plugin: 'counter'
    });
  });
});
