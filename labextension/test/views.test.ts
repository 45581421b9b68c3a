import type { IIsolationView, IPluginView, IRevisionView, ISignatureView } from '../src/protocol';
import { offerText } from '../src/view/indexview';
import { crashText, layersText, unavailableText, workerText } from '../src/view/isolation';
import { revisionText, rollbackTargets, rowActions } from '../src/view/revisions';
import { signatureText, signatureTitle } from '../src/view/signature';

function iso(over: Partial<IIsolationView> = {}): IIsolationView {
  return {
    pid: 4242,
    state: 'running',
    enforced: ['userns', 'netns'],
    unavailable: {},
    rss_mb: 38.24,
    cpu_seconds: 0.413,
    crashes: 0,
    restarts: 0,
    last_crash: null,
    last_crash_at: null,
    ...over
  };
}

describe('isolation formatters', () => {
  it('says isolated, pid, RSS and CPU on one line', () => {
    expect(workerText(iso())).toBe('isolated · pid 4242 · 38 MB · 0.41 s CPU');
    expect(workerText(iso({ rss_mb: 7.25, cpu_seconds: 12.6 }))).toBe('isolated · pid 4242 · 7.3 MB · 13 s CPU');
    expect(workerText(iso({ state: 'restarting', pid: null, rss_mb: null, cpu_seconds: null }))).toBe(
      'isolated · restarting'
    );
  });

  it('lists only the layers in force, and why others are not in the tooltip', () => {
    expect(layersText(iso())).toBe('enforced: userns, netns');
    expect(layersText(iso({ enforced: [] }))).toBe('enforced: none');
    expect(unavailableText(iso({ unavailable: { seccomp: 'no libseccomp', landlock: 'kernel 5.4' } }))).toBe(
      'seccomp: no libseccomp\nlandlock: kernel 5.4'
    );
  });

  it('shows the last crash with its reason, when and how often', () => {
    expect(crashText(iso())).toBe('');
    const now = 1_000_000;
    expect(
      crashText(iso({ crashes: 2, restarts: 1, last_crash: 'segfault (SIGSEGV)', last_crash_at: now - 120 }), now)
    ).toBe('last crash: segfault (SIGSEGV) · 2 min ago · 2 crashes · 1 restart');
    expect(crashText(iso({ crashes: 1, last_crash: null }), now)).toBe('last crash: unknown reason');
  });
});

describe('signature badge text', () => {
  const sig = (status: string, signer: string | null = null, files: string[] = []): ISignatureView => ({
    status,
    signer,
    files
  });
  it('names the signer, the modified files, or the status as it is', () => {
    expect(signatureText(sig('signed', 'alice'))).toBe('signed by alice');
    expect(signatureText(sig('modified', 'alice', ['a.py', 'b.py']))).toBe('modified: a.py, b.py');
    expect(signatureText(sig('invalid'))).toBe('invalid');
    expect(signatureText(sig('unsigned'))).toBe('unsigned');
    expect(signatureText(sig('revoked'))).toBe('revoked');
    expect(signatureTitle(sig('modified', null, ['a.py']))).toBe('changed since signing: a.py');
  });
});

describe('offerText', () => {
  it('puts an offer on one line', () => {
    expect(
      offerText({
        name: 'flx-counter',
        latest: '1.1.0',
        version: '1.1.0',
        plugins: ['counter', 'timer'],
        summary: '',
        versions: ['1.1.0'],
        signature: 'unsigned'
      })
    ).toBe('flx-counter 1.1.0 · plugins: counter, timer · unsigned');
  });
});

describe('rollback picker (revisions)', () => {
  const rev = (revision: number, over: Partial<IRevisionView> = {}): IRevisionView => ({
    revision,
    version: `1.${revision - 1}.0`,
    reason: revision === 1 ? 'load' : 'reload',
    time: 0,
    code_sha256: 'abcdef012345',
    rollback_of: null,
    current: false,
    ...over
  });
  const row = (over: Partial<Pick<IPluginView, 'state' | 'isolation' | 'revisions'>>) => ({
    state: 'running' as const,
    isolation: null,
    revisions: [rev(1), rev(2), rev(3, { current: true })],
    ...over
  });

  it('offers every kept revision but the current, newest first', () => {
    expect(rollbackTargets(row({})).map(r => r.revision)).toEqual([2, 1]);
    expect(rollbackTargets(row({ revisions: [rev(1, { current: true })] }))).toEqual([]);
    expect(rollbackTargets({ revisions: [] })).toEqual([]);
  });

  it('allows rollback like protocol.row_actions: an earlier revision and a reloadable state', () => {
    expect(rowActions(row({}))).toContain('rollback');
    expect(rowActions(row({ revisions: [rev(1, { current: true })] }))).not.toContain('rollback');
    expect(rowActions(row({ isolation: iso() }))).toContain('rollback'); // the worker gets the kept code
    expect(rowActions(row({ state: 'failed' }))).not.toContain('rollback');
    expect(rowActions(row({ state: 'failed' }))).toEqual(['start', 'unload']);
  });

  it('names revision, version, reason and time', () => {
    const t = new Date(2026, 11, 1, 14, 3, 7).getTime() / 1000;
    expect(revisionText(rev(2, { time: t }))).toBe('r2 · v1.1.0 · reload · 14:03:07');
    expect(revisionText(rev(4, { reason: 'rollback', rollback_of: 1, version: '1.0.0' }))).toBe(
      'r4 · v1.0.0 · rollback to r1'
    );
  });
});
