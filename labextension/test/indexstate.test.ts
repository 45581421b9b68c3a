import { asRows, IndexState, progressLine } from '../src/indexstate';
import type { IIndexReplyMsg, IProgressMsg } from '../src/protocol';

function reply(requestId: string, ok: boolean, message: string, data?: unknown): IIndexReplyMsg {
  return { kind: 'reply', protocol: '1.1', request_id: requestId, action: 'index_search', plugin: null, ok, message, data };
}

function progress(requestId: string, line: string): IProgressMsg {
  return { kind: 'progress', protocol: '1.1', request_id: requestId, action: 'install', line };
}

const ROW = {
  name: 'flx-counter',
  latest: '1.1.0',
  version: '1.1.0',
  wheel: 'flx_counter-1.1.0-py3-none-any.whl',
  plugins: ['counter'],
  summary: 'counts',
  versions: ['1.0.0', '1.1.0'],
  signature: 'signed'
};

describe('IndexState (the Index section, folded from replies and progress)', () => {
  it('lists the rows of a search reply and says how many', () => {
    let changes = 0;
    const s = new IndexState(() => (changes += 1));
    expect(s.view.rows).toBeNull();
    s.searching('r1', 'count');
    expect(s.view.phase).toBe('searching');
    expect(s.busy).toBe(true);
    expect(s.settle(reply('r1', true, '1 plugin package in /idx', [ROW]))).toBe(true);
    expect(s.view.phase).toBe('idle');
    expect(s.view.rows).toEqual([
      {
        name: 'flx-counter',
        latest: '1.1.0',
        version: '1.1.0',
        plugins: ['counter'],
        summary: 'counts',
        versions: ['1.0.0', '1.1.0'],
        signature: 'signed'
      }
    ]);
    expect(s.view.term).toBe('count');
    expect(s.view.line).toBe('1 plugin package in /idx');
    expect(s.view.error).toBeNull();
    expect(changes).toBe(2);
  });

  it('ignores replies and progress of other requests', () => {
    const s = new IndexState();
    s.installStarted('mine', 'flx-counter==1.1.0');
    expect(s.progress(progress('theirs', 'Collecting x'))).toBe(false);
    expect(s.settle(reply('theirs', true, 'x'))).toBe(false);
    expect(s.view.phase).toBe('installing');
    expect(s.view.line).toBe('installing flx-counter==1.1.0…');
  });

  it("shows pip's latest line while installing, then the outcome", () => {
    const s = new IndexState();
    s.installStarted('i1', 'flx-counter==1.1.0');
    s.progress(progress('i1', 'Processing ./flx_counter-1.1.0-py3-none-any.whl\n'));
    expect(s.view.line).toBe('Processing ./flx_counter-1.1.0-py3-none-any.whl');
    s.progress(progress('i1', '   \n')); // a blank line keeps the last useful one
    expect(s.view.line).toBe('Processing ./flx_counter-1.1.0-py3-none-any.whl');
    s.settle(reply('i1', true, 'installed flx-counter 1.1.0; loaded counter'));
    expect(s.view).toMatchObject({ phase: 'idle', line: 'installed flx-counter 1.1.0; loaded counter', error: null });
    expect(s.view.installing).toBe('flx-counter==1.1.0');
  });

  it('keeps the last rows when a search fails and shows its error on one line', () => {
    const s = new IndexState();
    s.searching('a', '');
    s.settle(reply('a', true, '1', [ROW]));
    s.searching('b', '');
    s.settle(reply('b', false, 'no index given: pass --index URL|PATH\n(more detail)'));
    expect(s.view.error).toBe('no index given: pass --index URL|PATH');
    expect(s.view.line).toBe('');
    expect(s.view.rows?.map(r => r.name)).toEqual(['flx-counter']);
  });

  it('stops waiting when the connection goes, and reset forgets everything', () => {
    const s = new IndexState();
    s.installStarted('i', 'x');
    s.fail('the flx_ipy connection was reset');
    expect(s.view).toMatchObject({ phase: 'idle', error: 'the flx_ipy connection was reset' });
    s.reset();
    expect(s.view).toEqual({ phase: 'idle', rows: null, term: '', installing: null, line: '', error: null });
  });
});

describe('asRows / progressLine', () => {
  it('keeps only well-formed rows and fills missing fields', () => {
    expect(asRows(null)).toEqual([]);
    expect(asRows([{ nope: 1 }, 'x', { name: 'a' }])).toEqual([
      { name: 'a', latest: '', version: '', plugins: [], summary: '', versions: [], signature: 'unsigned' }
    ]);
  });

  it('trims a line of pip output; blank means nothing to show', () => {
    expect(progressLine('  Installing collected packages: x\r\n')).toBe('Installing collected packages: x');
    expect(progressLine(' \n')).toBe('');
  });
});
