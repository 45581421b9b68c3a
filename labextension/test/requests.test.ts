import type { IReplyMsg } from '../src/protocol';
import { PendingRequests } from '../src/requests';

function reply(requestId: string, ok = true): IReplyMsg {
  return { kind: 'reply', protocol: '1.0', request_id: requestId, action: 'stop', plugin: 'a', ok, message: 'a stopped' };
}

describe('PendingRequests', () => {
  it('resolves the waiter its reply names, and only once', async () => {
    const r = new PendingRequests();
    const one = r.add('stop', 'a', false);
    const two = r.add('start', 'b', true);
    expect(one.pending.requestId).not.toBe(two.pending.requestId);
    expect(r.pendingFor('b')?.queued).toBe(true);
    expect(r.settle(reply(one.pending.requestId))).toBe(true);
    await expect(one.reply).resolves.toMatchObject({ ok: true, message: 'a stopped' });
    expect(r.settle(reply(one.pending.requestId))).toBe(false);
    expect(r.pendingFor('a')).toBeUndefined();
    expect(r.size).toBe(1);
  });

  it('ignores replies nobody waits for (another page asked)', () => {
    const r = new PendingRequests();
    expect(r.settle(reply('someone-else'))).toBe(false);
  });

  it('rejects every waiter when the connection goes away', async () => {
    const r = new PendingRequests();
    const one = r.add('reload', 'a', false);
    const all = r.add('refresh', null, false);
    expect(r.pendingFor(null)?.action).toBe('refresh');
    r.failAll('the kernel closed the flx_ipy connection');
    await expect(one.reply).rejects.toThrow('the kernel closed');
    await expect(all.reply).rejects.toThrow('the kernel closed');
    expect(r.size).toBe(0);
  });
});
