/**
 * Actions sent to the kernel and waiting for their reply, matched by `request_id`.
 *
 * The kernel answers every action exactly once, possibly after the running cell (the action
 * is then shown as queued). If the connection goes away first, every waiter is rejected so no
 * button stays "pending" forever. No comm and no DOM: unit-tested in `test/requests.test.ts`.
 */
import type { ActionName, IReplyMsg } from './protocol';
import type { IPendingAction } from './tokens';

interface IWaiter {
  pending: IPendingAction;
  resolve: (reply: IReplyMsg) => void;
  reject: (err: Error) => void;
}

let counter = 0;
function newRequestId(): string {
  counter += 1;
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}-${counter}`;
}

export class PendingRequests {
  get size(): number {
    return this._waiters.size;
  }

  /** Register a request; the promise settles with its reply (or the reason it never came). */
  add(
    action: ActionName,
    plugin: string | null,
    queued: boolean
  ): { pending: IPendingAction; reply: Promise<IReplyMsg> } {
    const pending: IPendingAction = { requestId: newRequestId(), action, plugin, queued };
    const reply = new Promise<IReplyMsg>((resolve, reject) => {
      this._waiters.set(pending.requestId, { pending, resolve, reject });
    });
    return { pending, reply };
  }

  /** The first action still waiting for `plugin` (`null`: a manager-wide one like refresh). */
  pendingFor(plugin: string | null): IPendingAction | undefined {
    for (const w of this._waiters.values()) {
      if (w.pending.plugin === plugin) {
        return w.pending;
      }
    }
    return undefined;
  }

  /** Resolve the waiter of this reply; `false` if none waited (another page's, or too late). */
  settle(reply: IReplyMsg): boolean {
    const waiter = this._waiters.get(reply.request_id);
    if (!waiter) {
      return false;
    }
    this._waiters.delete(reply.request_id);
    waiter.resolve(reply);
    return true;
  }

  /** Reject every waiter with `why` (the connection was closed or reset). */
  failAll(why: string): void {
    const waiters = [...this._waiters.values()];
    this._waiters.clear();
    for (const w of waiters) {
      w.reject(new Error(why));
    }
  }

  private _waiters = new Map<string, IWaiter>();
}
