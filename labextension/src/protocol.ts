/**
 * The versioned comm protocol between the kernel's plugin manager and this panel.
 *
 * Mirror of `flx_ipy/protocol.py`, field for field: change both together and bump
 * PROTOCOL_VERSION (minor for additions a peer may ignore, major for anything an older peer
 * would misread). Snapshot first, then one delta per manager event; actions get replies.
 */
import type { JSONObject } from '@lumino/coreutils';

export const PROTOCOL_VERSION = '1.1'; // 1.1: IReloadView.note, IWatcherView.saves_waiting, IPluginView.signature

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
export type ActionName = 'start' | 'stop' | 'reload' | 'unload' | 'refresh';
export type PluginActionName = Exclude<ActionName, 'refresh'>;
export const PLUGIN_ACTIONS: readonly PluginActionName[] = ['start', 'stop', 'reload', 'unload'];

/**
 * The plugin actions the kernel's manager accepts in each lifecycle state: the panel enables a
 * button only if its action is listed. Owned by `ALLOWED_ACTIONS` in `flx_ipy/protocol.py`
 * (which a test checks against a real manager); `tests/test_protocol.py` keeps this copy equal.
 * A failed plugin is never reloaded (start retries it); nothing applies while reloading.
 */
export const ALLOWED_ACTIONS: Readonly<Record<LifecycleName, readonly PluginActionName[]>> = {
  discovered: [],
  loaded: ['start', 'reload', 'unload'],
  initialized: ['start', 'reload', 'unload'],
  running: ['stop', 'reload', 'unload'],
  stopped: ['start', 'reload', 'unload'],
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
  signature?: ISignatureView | null; // absent from a 1.0 kernel; null when no policy checks
  isolation?: IIsolationView | null; // absent/null: runs in the kernel's process
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

export interface IErrorMsg {
  kind: 'error';
  protocol: string;
  code: 'version_mismatch' | 'bad_message';
  message: string;
}

export type KernelMessage = IAnnounceMsg | ISnapshotMsg | IDeltaMsg | IReplyMsg | IErrorMsg;

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
  action: ActionName;
  plugin: string | null;
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
