"""Decide whether the watcher must poll: file systems that deliver no change events.

inotify (and the other OS notifiers) sees only changes made through the local kernel. A folder
on a network mount (NFS, SMB/CIFS, sshfs), a VM/WSL share (9p, drvfs, vboxsf, virtiofs) or a
Docker Desktop bind mount (grpcfuse, fakeowner) gets no events for edits made on the other
side — the editor usually runs there — so saves would silently never reload.

The choice, in order: an explicit ``force_polling`` (``pm.watch(force_polling=True)``,
``c.PluginMagics.force_polling``); then the environment (``FLX_IPY_FORCE_POLLING`` or
watchfiles' own ``WATCHFILES_FORCE_POLLING``, ``1``/``true`` or ``0``/``false``); then the file
system type of each watched folder, from ``/proc/mounts`` (Linux; elsewhere events are used).
Detecting by type rather than by probing (write a file, wait for its event) keeps arming
instant and never writes into a user's plugin folder; the price is that an unknown fs type
without events is missed — set ``force_polling`` there.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

#: fs types whose remote-side changes produce no local events
NO_EVENTS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "9p", "drvfs", "vboxsf", "virtiofs",
    "fuse.sshfs", "fuse.grpcfuse", "fakeowner", "fuse.osxfs", "prl_fs", "vmhgfs", "fuse.vmhgfs-fuse",
    "fuse.rclone", "fuse.s3fs", "fuse.gcsfuse", "davfs", "fuse.davfs2",
})
ENV = ("FLX_IPY_FORCE_POLLING", "WATCHFILES_FORCE_POLLING")


def _env_choice() -> bool | None:
    for var in ENV:
        value = os.environ.get(var)
        if value is not None and value.strip():
            return value.strip().lower() not in ("0", "false", "no", "off")
    return None


def _unescape(field: str) -> str:
    # /proc/mounts escapes space, tab, newline and backslash as octal
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def mounts(text: str | None = None) -> list[tuple[str, str]]:
    """(mount point, fs type) pairs, longest mount point first."""
    if text is None:
        try:
            with open("/proc/mounts", encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:
            return []
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            out.append((_unescape(parts[1]), parts[2]))
    return sorted(out, key=lambda m: len(m[0]), reverse=True)


def fs_type(path: str, table: list[tuple[str, str]]) -> str | None:
    p = os.path.realpath(path)
    for point, kind in table:
        if p == point or p.startswith(point.rstrip("/") + "/") or point == "/":
            return kind
    return None


def polling_reason(folders: Iterable[str], mounts_text: str | None = None) -> str | None:
    """Why polling is needed for ``folders`` (None: OS events will arrive)."""
    choice = _env_choice()
    if choice is not None:
        return "set in the environment" if choice else None
    table = mounts(mounts_text)
    for folder in folders:
        kind = fs_type(folder, table)
        if kind in NO_EVENTS:
            return f"{folder} is on a {kind} mount (no change events)"
    return None


def resolve(force_polling: bool | None, folders: Iterable[str],
            mounts_text: str | None = None) -> tuple[bool, str]:
    """(poll?, why) — an explicit setting wins over the environment and the mount table."""
    if force_polling is not None:
        return bool(force_polling), "set explicitly"
    reason = polling_reason(folders, mounts_text)
    return (reason is not None), (reason or "file system events")


class PollingSource:
    """A change source (watchfiles' ``RustNotify`` shape) that stats files itself.

    Not notify's poll watcher: that one keeps modification times in whole seconds, so a second
    save within the same second is never seen. Here each ``.py`` file is known by
    ``(st_mtime_ns, st_size, st_ino)`` — an editor's ``os.replace`` gives a new inode — and a
    file modified in the last two seconds also by a hash of its bytes (coarse network-fs clocks).
    Cost: one ``stat`` per watched file every ``delay_ms`` (folders are walked recursively,
    skipping hidden folders and ``__pycache__``).
    """

    def __init__(self, dirs: Iterable[str], files: Iterable[str], delay_ms: int = 50) -> None:
        self.dirs = [d for d in dirs if os.path.isdir(d)]
        self.files = list(files)
        self.delay = max(1, delay_ms) / 1000
        self.known = self._scan()

    def _paths(self) -> list[str]:
        out = list(self.files)
        for root in self.dirs:
            for here, subdirs, names in os.walk(root):
                subdirs[:] = [s for s in subdirs if not s.startswith(".") and s != "__pycache__"]
                out.extend(os.path.join(here, n) for n in names if n.endswith(".py"))
        return out

    def _scan(self) -> dict[str, tuple[int, int, int, bytes | None]]:
        import hashlib
        import time

        now = time.time_ns()
        out = {}
        for p in self._paths():
            try:
                st = os.stat(p)
            except OSError:
                continue
            h = None
            if now - st.st_mtime_ns < 2_000_000_000:
                try:
                    with open(p, "rb") as fh:
                        h = hashlib.blake2b(fh.read(), digest_size=16).digest()
                except OSError:
                    continue
            out[p] = (st.st_mtime_ns, st.st_size, st.st_ino, h)
        return out

    def watch(self, debounce_ms: int, step_ms: int, timeout_ms: int, stop_event: Any) -> Any:
        import time

        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            if stop_event.is_set():
                return "stop"
            now_known = self._scan()
            changes = {(1 if p not in self.known else 2, p) for p, sig in now_known.items()
                       if self.known.get(p) != sig and not _same_old_file(self.known.get(p), sig)}
            changes |= {(3, p) for p in self.known.keys() - now_known.keys()}
            self.known = now_known
            if changes:
                return changes
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            stop_event.wait(min(self.delay, left))

    def close(self) -> None:
        self.known = {}


def _same_old_file(before: Any, after: Any) -> bool:
    """Only the hash appeared or went away (the file aged past two seconds): no change."""
    return before is not None and before[:3] == after[:3] and (before[3] is None or after[3] is None)
