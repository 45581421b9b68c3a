/**
 * The versioned comm protocol between the kernel's plugin manager and this panel.
 *
 * Mirror of `flx_ipy/protocol.py`, field for field: change both together and bump
 * PROTOCOL_VERSION (minor for additions a peer may ignore, major for anything an older peer
 * would misread). Snapshot first, then one delta per manager event; actions get replies.
 */
import type { JSONObject } from '@lumino/coreutils';

export const PROTOCOL_VERSION = '1.2'; // 1.1: IReloadView.note, IWatcherView.saves_waiting, IPluginView.signature
// 1.2: the `rollback` action (IRollbackActionMsg), IPluginView.revisions and .metrics; a delta with
// `event: null` and an unchanged `seq` refreshes rows whose figures (RSS, CPU, timings) moved

/** Comm target the kernel registers; the panel opens comms to it. */
export const KERNEL_TARGET = 'flx_ipy';
/** Comm target the panel registers; the kernel announces itself to it on `%load_ext`. */
export const PANEL_TARGET = 'flx_ipy.panel';

export type LifecycleName =
  | 'discovered'
  | 'loaded'
  | 'initialized'
  | 'running'
  | 'stopped'
  | 'unloaded'
  | 'failed'
  | 'reloading';
export type HealthName = 'healthy' | 'degraded' | 'unhealthy' | 'unknown';
export type ActionName = 'start' | 'stop' | 'reload' | 'unload' | 'rollback' | 'refresh';
export type PluginActionName = Exclude<ActionName, 'refresh'>;
/** Actions on a plugin index (`INDEX_ACTIONS` in `flx_ipy/protocol.py`). */
export type IndexActionName = 'index_search' | 'install';
export const INDEX_ACTIONS: readonly IndexActionName[] = ['index_search', 'install'];
/** The plain buttons of a row; `rollback` has its own picker (`view/revisions.ts`). */
export const PLUGIN_ACTIONS: readonly PluginActionName[] = ['start', 'stop', 'reload', 'unload'];

/**
 * The plugin actions the kernel's manager accepts in each lifecycle state: the panel enables a
 * button only if its action is listed. Owned by `ALLOWED_ACTIONS` in `flx_ipy/protocol.py`
 * (which a test checks against a real manager); `tests/test_protocol.py` keeps this copy equal.
 * A failed plugin is never reloaded (start retries it); nothing applies while reloading.
 * `rollback` goes through the reload transaction, so it is allowed where reload is; a row also
 * needs an earlier revision and an in-kernel plugin (`rowActions` in `view/revisions.ts`).
 */
export const ALLOWED_ACTIONS: Readonly<Record<LifecycleName, readonly PluginActionName[]>> = {
  discovered: [],
  loaded: ['start', 'reload', 'rollback', 'unload'],
  initialized: ['start', 'reload', 'rollback', 'unload'],
  running: ['stop', 'reload', 'rollback', 'unload'],
  stopped: ['start', 'reload', 'rollback', 'unload'],
  failed: ['start', 'unload'],
  reloading: [],
  unloaded: []
};

/** The actions allowed in `state`; none for a state this panel does not know (a newer kernel). */
export function allowedActions(state: string): readonly PluginActionName[] {
  return Object.prototype.hasOwnProperty.call(ALLOWED_ACTIONS, state)
    ? ALLOWED_ACTIONS[state as LifecycleName]
    : [];
}

// --- the state the panel shows --------------------------------------------------------------

export interface IHealthView {
  status: HealthName;
  message: string;
  checked_at: number | null;
}

export interface IReloadView {
  ok: boolean;
  rolled_back: boolean;
  error: string | null;
  duration_ms: number | null;
  finished_at: number | null; // epoch seconds
  /** e.g. "source matches the running version" (a kept failure was cleared by that save) */
  note: string | null;
}

/** `record.signature`: signed (by signer), unsigned, invalid or modified (files differ). */
export interface ISignatureView {
  status: string;
  signer: string | null;
  files: string[];
}

/** One kept revision of a plugin (`pm.history(name)`), for the rollback picker. */
export interface IRevisionView {
  revision: number;
  version: string;
  reason: string; // load | reload | rollback | ...
  time: number; // epoch seconds
  code_sha256: string; // the first 12 hex digits
  rollback_of: number | null; // a rollback: the revision whose code it ran again
  current: boolean; // the revision running now (the last one)
}

/** `pm.metrics()[name]` boiled down to what a row shows: the slowest hook and reloads. */
export interface IMetricsView {
  slowest_hook: string | null;
  slowest_hook_max_ms: number | null;
  slowest_hook_mean_ms: number | null;
  hook_calls: number;
  hook_errors: number;
  reloads: number;
  reloads_failed: number;
  reload_last_ms: number | null;
  reload_mean_ms: number | null;
  reload_max_ms: number | null;
}

export interface IPluginView {
  name: string;
  version: string;
  description: string;
  source: string;
  state: LifecycleName;
  health: IHealthView | null;
  last_reload: IReloadView | null;
  error: string | null;
  requires: string[];
  capabilities: string[];
  signature: ISignatureView | null; // null when no policy checks signatures
  isolation: IIsolationView | null; // null: runs in the kernel's process
  revisions: IRevisionView[]; // oldest first, the last is the current (empty: none kept)
  metrics: IMetricsView | null; // null: the manager keeps no metrics
}

export interface IIsolationView {
  pid: number | null;
  state: string; // running | restarting | failed | closed
  enforced: string[]; // only layers read back as in force
  unavailable: { [layer: string]: string };
  rss_mb: number | null;
  cpu_seconds: number | null;
  crashes: number;
  restarts: number;
  last_crash: string | null;
  last_crash_at: number | null; // epoch seconds
}

export interface IWatcherView {
  watching: boolean;
  paths: string[];
  /** Settled saves queued until the running cell ends (0 when idle). */
  saves_waiting: number;
}

export interface IEventView {
  seq: number;
  kind: string;
  plugin: string | null;
  time: number;
  summary: string;
  details: Record<string, unknown>;
}

export interface IStateView {
  seq: number;
  plugins: IPluginView[];
  watcher: IWatcherView;
  events: IEventView[];
  flx_version: string;
}

// --- kernel -> panel -------------------------------------------------------------------------

export interface IAnnounceMsg {
  kind: 'announce';
  protocol: string;
  flx_version: string;
}

export interface ISnapshotMsg {
  kind: 'snapshot';
  protocol: string;
  state: IStateView;
}

export interface IDeltaMsg {
  kind: 'delta';
  protocol: string;
  seq: number;
  event: IEventView | null;
  upsert: IPluginView[];
  remove: string[];
  watcher: IWatcherView | null;
}

export interface IReplyMsg {
  kind: 'reply';
  protocol: string;
  request_id: string;
  action: string;
  plugin: string | null;
  ok: boolean;
  message: string;
}

/** `index_search` replies carry the offers in `data` (`IIndexRow[]`); `install` its outcome. */
export interface IIndexReplyMsg extends IReplyMsg {
  data?: unknown;
}

/** A line of progress for a running action (`install`: pip's output), before its reply. */
export interface IProgressMsg {
  kind: 'progress';
  protocol: string;
  request_id: string;
  action: string;
  line: string;
}

/** One offer of an index (`flx_ipy.registry.table.search_rows`). */
export interface IIndexRow {
  name: string;
  latest: string;
  version: string;
  plugins: string[];
  summary: string;
  versions: string[];
  signature: string;
}

export interface IErrorMsg {
  kind: 'error';
  protocol: string;
  code: 'version_mismatch' | 'bad_message';
  message: string;
}

export type KernelMessage = IAnnounceMsg | ISnapshotMsg | IDeltaMsg | IIndexReplyMsg | IErrorMsg | IProgressMsg;

// --- panel -> kernel -------------------------------------------------------------------------

export interface IHelloMsg {
  kind: 'hello';
  protocol: string;
  client: string;
  /** Comm id this page held before a reload: the kernel closes it (no stale comms). */
  replaces: string | null;
}

export interface IActionMsg {
  kind: 'action';
  protocol: string;
  request_id: string;
  action: ActionName | IndexActionName;
  plugin: string | null;
}

export interface IRollbackActionMsg extends IActionMsg {
  revision: number | null; // the revision to run again; null: the one before the current
}

export interface IIndexActionMsg extends IActionMsg {
  index?: string | null; // index folder or URL; default: the kernel's configured one
  term?: string | null; // index_search: what to look for
}

function major(version: unknown): number | null {
  if (typeof version !== 'string') {
    return null;
  }
  const head = version.split('.', 1)[0];
  return /^\d+$/.test(head) ? Number(head) : null;
}

/**
 * `null` if a kernel speaking `theirs` can talk to this panel, else the message to show,
 * naming both versions and the fix (same wording as the Python side).
 */
export function versionProblem(theirs: unknown, ours: string = PROTOCOL_VERSION): string | null {
  if (major(theirs) !== null && major(theirs) === major(ours)) {
    return null;
  }
  return (
    `flx_ipy protocol mismatch: the JupyterLab side panel speaks protocol ${ours} but the ` +
    `kernel's flx_ipy speaks ${String(theirs)}. Install the same flx_ipy version in the ` +
    "kernel's environment and in JupyterLab's (pip install -U flx_ipy in both), then restart " +
    'the kernel and reload the page.'
  );
}

/** Narrow an incoming comm payload to a message this panel understands, or `null`. */
export function asKernelMessage(data: unknown): KernelMessage | null {
  if (typeof data !== 'object' || data === null) {
    return null;
  }
  const kind = (data as { kind?: unknown }).kind;
  switch (kind) {
    case 'announce':
    case 'snapshot':
    case 'delta':
    case 'reply':
    case 'error':
    case 'progress':
      return data as KernelMessage;
    default:
      return null; // a newer minor version may add kinds: ignore them
  }
}

// The builders' return types are also JSONObject, which is what a comm sends: no casts needed.
export function hello(replaces: string | null): IHelloMsg & JSONObject {
  return { kind: 'hello', protocol: PROTOCOL_VERSION, client: 'labextension', replaces };
}

export function action(
  requestId: string,
  name: ActionName,
  plugin: string | null
): IActionMsg & JSONObject {
  return { kind: 'action', protocol: PROTOCOL_VERSION, request_id: requestId, action: name, plugin };
}

/** `index_search` (term) or `install` (`spec` is `NAME[==VERSION]`) on an index. */
export function indexAction(
  requestId: string,
  name: IndexActionName,
  opts: { spec?: string | null; term?: string | null; index?: string | null }
): IIndexActionMsg & JSONObject {
  return {
    kind: 'action',
    protocol: PROTOCOL_VERSION,
    request_id: requestId,
    action: name,
    plugin: opts.spec ?? null,
    index: opts.index ?? null,
    term: opts.term ?? null
  };
}

/** Run `revision`'s code again (`null`: the one before the current), state kept. */
export function rollback(requestId: string, plugin: string, revision: number | null): IRollbackActionMsg & JSONObject {
  return { kind: 'action', protocol: PROTOCOL_VERSION, request_id: requestId, action: 'rollback', plugin, revision };
}
