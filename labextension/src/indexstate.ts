/**
 * What the panel's Index section shows: the offers of the last search, and the one install
 * running (its latest pip line), or the one-line error of the last step. Folded from replies
 * and progress messages; no comm and no DOM, so it is unit-tested in `test/indexstate.test.ts`.
 */
import type { IIndexReplyMsg, IIndexRow, IProgressMsg } from './protocol';

export type IndexPhase = 'idle' | 'searching' | 'installing';

export interface IIndexView {
  phase: IndexPhase;
  /** null: never searched in this connection */
  rows: readonly IIndexRow[] | null;
  /** The term of the last search ('' = everything). */
  term: string;
  /** The `NAME[==VERSION]` being (or last) installed. */
  installing: string | null;
  /** Latest progress line while installing; the outcome line afterwards. */
  line: string;
  /** The last step failed: its one-line error (shown red). */
  error: string | null;
}

/** A reply's `data` as offers: only well-formed rows, so a newer kernel cannot break the view. */
export function asRows(data: unknown): IIndexRow[] {
  if (!Array.isArray(data)) {
    return [];
  }
  return (data as unknown[])
    .filter(
      (r): r is Record<string, unknown> =>
        typeof r === 'object' && r !== null && typeof (r as { name?: unknown }).name === 'string'
    )
    .map(r => ({
      name: r.name as string,
      latest: typeof r.latest === 'string' ? r.latest : '',
      version: typeof r.version === 'string' ? r.version : '',
      plugins: Array.isArray(r.plugins) ? r.plugins.map(String) : [],
      summary: typeof r.summary === 'string' ? r.summary : '',
      versions: Array.isArray(r.versions) ? r.versions.map(String) : [],
      signature: typeof r.signature === 'string' ? r.signature : 'unsigned'
    }));
}

/** The last line of pip's output worth showing (blank lines and bare dots say nothing). */
export function progressLine(line: string): string {
  const text = line.replace(/\s+$/, '');
  return text.trim() ? text.trim() : '';
}

export class IndexState {
  constructor(private readonly _changed: () => void = () => undefined) {}

  get view(): IIndexView {
    return {
      phase: this._phase,
      rows: this._rows,
      term: this._term,
      installing: this._installing,
      line: this._line,
      error: this._error
    };
  }

  get busy(): boolean {
    return this._phase !== 'idle';
  }

  /** A search was sent as `requestId`. */
  searching(requestId: string, term: string): void {
    this._request = requestId;
    this._phase = 'searching';
    this._term = term;
    this._error = null;
    this._line = '';
    this._changed();
  }

  /** An install of `spec` was sent as `requestId`. */
  installStarted(requestId: string, spec: string): void {
    this._request = requestId;
    this._phase = 'installing';
    this._installing = spec;
    this._error = null;
    this._line = `installing ${spec}…`;
    this._changed();
  }

  /** A progress line: shown only if it belongs to the running request. */
  progress(msg: IProgressMsg): boolean {
    if (msg.request_id !== this._request) {
      return false;
    }
    const line = progressLine(msg.line);
    if (line) {
      this._line = line;
      this._changed();
    }
    return true;
  }

  /** The reply of the running request; `false` if it is someone else's. */
  settle(reply: IIndexReplyMsg): boolean {
    if (reply.request_id !== this._request) {
      return false;
    }
    this._request = null;
    const wasSearch = this._phase === 'searching';
    this._phase = 'idle';
    this._error = reply.ok ? null : firstLine(reply.message);
    this._line = reply.ok ? reply.message : '';
    if (wasSearch && reply.ok) {
      this._rows = asRows(reply.data);
    }
    this._changed();
    return true;
  }

  /** The request will not be answered (connection lost): say so, stop waiting. */
  fail(why: string): void {
    this._request = null;
    this._phase = 'idle';
    this._error = firstLine(why);
    this._line = '';
    this._changed();
  }

  reset(): void {
    this._request = null;
    this._phase = 'idle';
    this._rows = null;
    this._term = '';
    this._installing = null;
    this._line = '';
    this._error = null;
  }

  private _request: string | null = null;
  private _phase: IndexPhase = 'idle';
  private _rows: IIndexRow[] | null = null;
  private _term = '';
  private _installing: string | null = null;
  private _line = '';
  private _error: string | null = null;
}

function firstLine(text: string): string {
  return (text.split('\n').find(l => l.trim()) ?? text).trim();
}
