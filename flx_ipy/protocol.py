"""The versioned comm protocol between the kernel's plugin manager and its UIs.

``labextension/src/protocol.ts`` mirrors this file field for field; change both together and
bump :data:`PROTOCOL_VERSION` (minor for additions a peer may ignore, major for anything an
older peer would misread).

Conversation (one comm per browser page and kernel)::

    panel                                   kernel (flx_ipy.lab_bridge)
      | comm_open target "flx_ipy", HelloMsg  ->|
      |<- SnapshotMsg  (the whole state, seq=N)  |
      |<- DeltaMsg     (seq=N+1, N+2, ... )      |   one per manager event
      | ActionMsg (request_id, action)         ->|
      |<- ReplyMsg     (same request_id)         |   after the manager ran it
      |<- ErrorMsg     (version mismatch, ...)   |

When ``%load_ext flx_ipy`` runs after the panel is already open, the kernel rings the
doorbell: it opens (and at once closes) a comm to the frontend target ``flx_ipy.panel`` carrying
an :class:`AnnounceMsg`; the panel answers by opening its own comm as above.

Every message carries ``protocol``. A peer whose *major* version differs refuses to go on and
says so with both versions and the fix (:func:`version_problem`); a newer *minor* version is
accepted and unknown kinds or fields are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypedDict

PROTOCOL_VERSION = "1.2"  # 1.1: ReloadView.note, WatcherView.saves_waiting, PluginView.signature
#: 1.2: the ``rollback`` action (:class:`RollbackActionMsg`), ``PluginView.revisions`` and
#: ``PluginView.metrics``; deltas with ``event: null`` and an unchanged ``seq`` refresh rows whose
#: figures (RSS, CPU, hook timings) moved without an event (an older panel drops them: harmless)

#: Comm target the kernel registers; the panel opens comms to it.
KERNEL_TARGET = "flx_ipy"
#: Comm target the panel registers; the kernel announces itself to it.
PANEL_TARGET = "flx_ipy.panel"

LifecycleName = Literal[
    "discovered", "loaded", "initialized", "running", "stopped", "unloaded", "failed", "reloading",
]
HealthName = Literal["healthy", "degraded", "unhealthy", "unknown"]
ActionName = Literal["start", "stop", "reload", "unload", "refresh"]
#: mirrored in ``protocol.ts`` (the side panel's Index section); a panel that does
#: not know them never sends them
IndexActionName = Literal["index_search", "install"]
#: Actions on a plugin index (``flx_ipy.registry.panel``): ``index_search`` (optional ``term``)
#: answers with the offers in the reply's ``data``; ``install`` (``plugin`` is ``NAME[==VERSION]``)
#: sends :class:`ProgressMsg` lines while pip runs, then its reply. Both take an optional ``index``
#: (folder or URL; default: ``c.PluginMagics.index`` or ``$FLX_IPY_INDEX``). Older peers ignore them.
INDEX_ACTIONS: tuple[str, ...] = ("index_search", "install")
#: mirrored in ``protocol.ts`` (the side panel's rollback picker): ``rollback`` runs a kept revision's code again
#: (``pm.rollback(plugin, to=revision)``; ``revision`` omitted or null: the one before the current)
RevisionActionName = Literal["rollback"]
REVISION_ACTIONS: tuple[str, ...] = ("rollback",)
ACTIONS: tuple[str, ...] = ("start", "stop", "reload", "unload", "refresh", *INDEX_ACTIONS, *REVISION_ACTIONS)
#: The plain buttons of a row (each needs a plugin name; ``refresh`` does not).
PLUGIN_ACTIONS: tuple[str, ...] = ("start", "stop", "reload", "unload")
#: Actions that need a plugin name.
NAMED_ACTIONS: tuple[str, ...] = (*PLUGIN_ACTIONS, *REVISION_ACTIONS, "install")

#: Which plugin actions the manager accepts in each lifecycle state -- the ONE table both UIs
#: (the ipywidgets dashboard and the JupyterLab panel, via ``protocol.ts``) enable buttons from,
#: so a button is offered only when the manager would not refuse it. It mirrors the checks in
#: ``core/lifecycle.py`` / ``core/reloading.py`` exactly (``tests/test_allowed_actions.py`` drives
#: a real manager through every state to keep it so):
#:
#: - a ``failed`` plugin is not reloaded (the manager refuses: there is no good version to roll
#:   back to); ``start`` retries it, and saving a fix retries it too;
#: - ``discovered``/``unloaded`` plugins are not loaded, so no plugin action applies (load them);
#: - while ``reloading`` every operation is refused ("busy");
#: - ``rollback`` goes through the reload transaction, so it is allowed where ``reload`` is; a
#:   row also needs an earlier revision (:func:`row_actions`); an isolated plugin's worker runs
#:   the kept code too.
ALLOWED_ACTIONS: dict[str, tuple[str, ...]] = {
    "discovered": (),
    "loaded": ("start", "reload", "rollback", "unload"),
    "initialized": ("start", "reload", "rollback", "unload"),
    "running": ("stop", "reload", "rollback", "unload"),
    "stopped": ("start", "reload", "rollback", "unload"),
    "failed": ("start", "unload"),
    "reloading": (),
    "unloaded": (),
}


def allowed_actions(state: object) -> tuple[str, ...]:
    """The plugin actions the manager accepts in ``state`` (a lifecycle name or enum member);
    ``()`` for a state this version does not know, so an unknown state offers nothing."""
    key = getattr(state, "value", state)
    return ALLOWED_ACTIONS.get(key, ()) if isinstance(key, str) else ()


def row_actions(view: Mapping[str, Any]) -> tuple[str, ...]:
    """The actions a row offers: :func:`allowed_actions` of its state, less ``rollback`` when
    there is no earlier revision to go back to (isolated plugins included: the manager sends the
    kept code to the worker)."""
    allowed = allowed_actions(view.get("state"))
    if "rollback" in allowed and not rollback_targets(view):
        allowed = tuple(a for a in allowed if a != "rollback")
    return allowed


def rollback_targets(view: Mapping[str, Any]) -> list[RevisionView]:
    """The revisions a rollback can go to: every kept one but the current, newest first."""
    revs = list(view.get("revisions") or [])
    return [r for r in reversed(revs) if not r.get("current")]


# --- the state a UI shows -----------------------------------------------------------------


class HealthView(TypedDict):
    status: HealthName
    message: str
    checked_at: float | None


class ReloadView(TypedDict):
    """Outcome of the last reload: ok, or rolled back with the error that caused it."""

    ok: bool
    rolled_back: bool
    error: str | None
    duration_ms: float | None
    finished_at: float | None  # epoch seconds
    note: str | None  # e.g. "source matches the running version" (a kept failure was cleared)


class SignatureView(TypedDict):
    """``record.signature``: ``signed`` (by ``signer``), ``unsigned``, ``invalid`` or ``modified``
    (``files`` differ from what was signed). A row has none when no policy checks signatures."""

    status: str
    signer: str | None
    files: list[str]


class RevisionView(TypedDict):
    """One kept revision of a plugin (``pm.history(name)``), for a rollback picker."""

    revision: int
    version: str
    reason: str  # load | reload | rollback | ...
    time: float  # epoch seconds
    code_sha256: str  # the first 12 hex digits
    rollback_of: int | None  # a rollback: the revision whose code it ran again
    current: bool  # the revision running now (the last one)


class MetricsView(TypedDict):
    """``pm.metrics()[name]`` boiled down to what a row shows: the slowest hook and reloads."""

    slowest_hook: str | None  # by its longest call
    slowest_hook_max_ms: float | None
    slowest_hook_mean_ms: float | None
    hook_calls: int
    hook_errors: int
    reloads: int
    reloads_failed: int  # rolled back or failed
    reload_last_ms: float | None
    reload_mean_ms: float | None
    reload_max_ms: float | None


class IsolationView(TypedDict):
    """An isolated plugin's worker: what runs it, what protects it, how it last died."""

    pid: int | None
    state: str  # running | restarting | failed | closed
    enforced: list[str]  # only layers read back as in force, e.g. ["userns", "netns", "seccomp"]
    unavailable: dict[str, str]  # layer -> why it is not in force here
    rss_mb: float | None
    cpu_seconds: float | None
    crashes: int
    restarts: int
    last_crash: str | None  # the reason, e.g. "segfault (SIGSEGV)"
    last_crash_at: float | None  # epoch seconds


class PluginView(TypedDict):
    name: str
    version: str
    description: str
    source: str
    state: LifecycleName
    health: HealthView | None
    last_reload: ReloadView | None
    error: str | None  # last error one-liner (failed load, rolled-back reload, hook error)
    requires: list[str]
    capabilities: list[str]
    signature: SignatureView | None
    isolation: IsolationView | None  # None: runs in the kernel's process
    revisions: list[RevisionView]  # oldest first, the last is the current (empty: none kept)
    metrics: MetricsView | None  # None: the manager keeps no metrics (a UI fed events only)


class WatcherView(TypedDict):
    watching: bool
    paths: list[str]
    #: settled saves queued until the running cell ends (0 when idle): "1 save waiting for the
    #: running cell". Changes arrive as ``saves_waiting`` events (details: ``count``).
    saves_waiting: int


class EventView(TypedDict):
    seq: int
    kind: str
    plugin: str | None
    time: float
    summary: str  # one human line, e.g. "counter reloaded in 2.1 ms"
    details: dict[str, Any]


class StateView(TypedDict):
    seq: int  # last manager event folded into this state
    plugins: list[PluginView]  # sorted by name
    watcher: WatcherView
    events: list[EventView]  # oldest first, bounded
    flx_version: str


# --- kernel -> frontend -------------------------------------------------------------------


class AnnounceMsg(TypedDict):
    kind: Literal["announce"]
    protocol: str
    flx_version: str


class SnapshotMsg(TypedDict):
    kind: Literal["snapshot"]
    protocol: str
    state: StateView


class DeltaMsg(TypedDict):
    """What one manager event changed. Rows in ``upsert`` replace rows of the same name."""

    kind: Literal["delta"]
    protocol: str
    seq: int
    event: EventView | None
    upsert: list[PluginView]
    remove: list[str]
    watcher: WatcherView | None


class ReplyMsg(TypedDict):
    kind: Literal["reply"]
    protocol: str
    request_id: str
    action: str
    plugin: str | None
    ok: bool
    message: str  # what happened, or the one-line error


class IndexReplyMsg(ReplyMsg, total=False):
    data: Any  # index_search: the offers (rows of flx_ipy.registry.table.search_rows)


class ProgressMsg(TypedDict):
    """A line of progress for a running action (``install``: pip's output), before its reply."""

    kind: Literal["progress"]
    protocol: str
    request_id: str
    action: str
    line: str


class ErrorMsg(TypedDict):
    kind: Literal["error"]
    protocol: str
    code: Literal["version_mismatch", "bad_message"]
    message: str


KernelMessage = AnnounceMsg | SnapshotMsg | DeltaMsg | ReplyMsg | ErrorMsg | ProgressMsg


# --- frontend -> kernel -------------------------------------------------------------------


class HelloMsg(TypedDict, total=False):
    kind: Literal["hello"]
    protocol: str
    client: str  # "labextension", "widgets", ...
    replaces: str | None  # comm id this page held before a reload: the kernel closes it


class ActionMsg(TypedDict):
    kind: Literal["action"]
    protocol: str
    request_id: str
    action: ActionName | IndexActionName | RevisionActionName
    plugin: str | None


class RollbackActionMsg(ActionMsg, total=False):
    revision: int | None  # the revision to run again; None: the one before the current


class IndexActionMsg(ActionMsg, total=False):
    index: str | None  # index folder or URL
    term: str | None  # index_search: what to look for


ClientMessage = HelloMsg | ActionMsg


class ProtocolError(ValueError):
    """A message the other side cannot use; ``code`` goes into the :class:`ErrorMsg`."""

    def __init__(self, message: str, code: Literal["version_mismatch", "bad_message"] = "bad_message"):
        super().__init__(message)
        self.code = code


def _major(version: object) -> int | None:
    if not isinstance(version, str):
        return None
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def version_problem(theirs: object, *, peer: str = "the JupyterLab side panel",
                    ours: str = PROTOCOL_VERSION) -> str | None:
    """``None`` if a peer speaking ``theirs`` can talk to us, else the message to show.

    The message names both versions and the fix, because the usual cause is a kernel whose
    environment has a different flx_ipy than JupyterLab's.
    """
    if _major(theirs) == _major(ours):
        return None
    return (
        f"flx_ipy protocol mismatch: {peer} speaks protocol {theirs!s} but the kernel's flx_ipy "
        f"speaks {ours}. Install the same flx_ipy version in the kernel's environment and in "
        "JupyterLab's (pip install -U flx_ipy in both), then restart the kernel and reload the page."
    )


def parse_client_message(data: object) -> ClientMessage:
    """Check a message from a UI; raises :class:`ProtocolError` saying what is wrong."""
    if not isinstance(data, Mapping):
        raise ProtocolError(f"flx_ipy: expected a message object, got {type(data).__name__}")
    problem = version_problem(data.get("protocol"))
    if problem:
        raise ProtocolError(problem, "version_mismatch")
    kind = data.get("kind")
    if kind == "hello":
        replaces = data.get("replaces")
        return HelloMsg(kind="hello", protocol=str(data["protocol"]), client=str(data.get("client", "")),
                        replaces=replaces if isinstance(replaces, str) else None)
    if kind == "action":
        action, plugin, request_id = data.get("action"), data.get("plugin"), data.get("request_id")
        if action not in ACTIONS:
            raise ProtocolError(f"flx_ipy: unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
        if not isinstance(request_id, str) or not request_id:
            raise ProtocolError(f"flx_ipy: action {action!r} has no request_id")
        if action in NAMED_ACTIONS and (not isinstance(plugin, str) or not plugin):
            raise ProtocolError(f"flx_ipy: action {action!r} needs a plugin name")
        msg = ActionMsg(kind="action", protocol=str(data["protocol"]), request_id=request_id,
                        action=action, plugin=plugin if isinstance(plugin, str) else None)
        if action in INDEX_ACTIONS:
            index, term = data.get("index"), data.get("term")
            return IndexActionMsg(**msg, index=index if isinstance(index, str) and index else None,
                                  term=term if isinstance(term, str) and term else None)
        if action in REVISION_ACTIONS:
            revision = data.get("revision")
            if revision is not None and (isinstance(revision, bool) or not isinstance(revision, int)
                                         or revision < 1):
                raise ProtocolError(f"flx_ipy: rollback revision must be a revision number (1, 2, ...) "
                                    f"or null for the previous one, not {revision!r}")
            return RollbackActionMsg(**msg, revision=revision)
        return msg
    raise ProtocolError(f"flx_ipy: unknown message kind {kind!r}; expected 'hello' or 'action'")


# --- builders (so every message gets its version and every field) -------------------------


def announce(flx_version: str) -> AnnounceMsg:
    return AnnounceMsg(kind="announce", protocol=PROTOCOL_VERSION, flx_version=flx_version)


def snapshot(state: StateView) -> SnapshotMsg:
    return SnapshotMsg(kind="snapshot", protocol=PROTOCOL_VERSION, state=state)


def delta(seq: int, event: EventView | None = None, upsert: list[PluginView] | None = None,
          remove: list[str] | None = None, watcher: WatcherView | None = None) -> DeltaMsg:
    return DeltaMsg(kind="delta", protocol=PROTOCOL_VERSION, seq=seq, event=event,
                    upsert=list(upsert or []), remove=list(remove or []), watcher=watcher)


def reply(request_id: str, action: str, plugin: str | None, ok: bool, message: str,
          data: Any = None) -> ReplyMsg:
    msg = ReplyMsg(kind="reply", protocol=PROTOCOL_VERSION, request_id=request_id, action=action,
                   plugin=plugin, ok=ok, message=message)
    if data is not None:
        return IndexReplyMsg(**msg, data=data)
    return msg


def progress(request_id: str, action: str, line: str) -> ProgressMsg:
    return ProgressMsg(kind="progress", protocol=PROTOCOL_VERSION, request_id=request_id, action=action, line=line)


def error(message: str, code: Literal["version_mismatch", "bad_message"] = "bad_message") -> ErrorMsg:
    return ErrorMsg(kind="error", protocol=PROTOCOL_VERSION, code=code, message=message)
