"""A plugin index: a folder of wheels and the ``index.json`` that describes them.

No server beyond static files: the same folder works opened directly, copied to a USB stick,
or served by any HTTP host (``python -m http.server``, nginx, S3, GitHub Pages). That is the
lesson of JupyterLab's extension manager, which lists through PyPI's deprecated XML-RPC search
and so breaks behind proxies and on private indexes.

``index.json`` is a function of the wheels' bytes only — no timestamps, no absolute paths,
keys and lists sorted — so rebuilding an unchanged folder writes the same bytes (and does not
touch the file at all). Its shape::

    {"format": "flx-ipy-index", "format_version": 1,
     "plugins": [{"name": "flx-weather", "key": "flx-weather", "summary": "...",
                  "latest": "1.2.0", "plugins": ["units", "weather"], <the latest version's
                  version, wheel, sha256, entry_points, requires_python, signature>,
                   "versions": [{"version": "1.2.0", "wheel": "flx_weather-1.2.0-py3-none-any.whl",
                                 "sha256": "...", "size": 4242, "requires_python": ">=3.10",
                                 "requires_dist": ["flx_ipy"], "entry_points": {...},
                                 "plugins": [...], "modules": ["flx_weather"],
                                 "signature": {"status": "unsigned", "file": null}, "tags": [...]}]}],
     "skipped": [{"file": "helper-1.0-py3-none-any.whl", "reason": "not a plugin: ..."}]}

One entry per distribution (``key``: its normalized name); ``plugins`` inside it are the entry
point names it provides, the names ``%plugin load`` takes. Only wheels that declare at least one
entry point in group ``flx_ipy.plugins`` are listed: an index of *plugins* answers "what can I
``%plugin load``". Other wheels in the folder (helper libraries, broken files) are named under
``skipped`` with the reason, so nothing disappears silently.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .wheels import WheelError, WheelInfo, read_wheel, sha256_file

__all__ = ["FORMAT", "FORMAT_VERSION", "INDEX_FILE", "BuildReport", "Index", "RegistryError", "build_index",
           "load_index", "resolve", "search"]

INDEX_FILE = "index.json"
FORMAT = "flx-ipy-index"
FORMAT_VERSION = 1
_NOT_PLUGIN = "not a plugin: declares no entry point in group flx_ipy.plugins"


class RegistryError(Exception):
    """An index or install problem, one line that says what to do. ``code``: 1 failed, 2 bad usage."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# ----------------------------------------------------------------------------- building
@dataclass
class BuildReport:
    path: Path
    packages: int
    wheels: int
    skipped: list[dict[str, str]] = field(default_factory=list)
    changed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"index": str(self.path), "packages": self.packages, "wheels": self.wheels,
                "skipped": self.skipped, "changed": self.changed}

    def summary(self) -> str:
        what = "written" if self.changed else "unchanged"
        return (f"{self.path}: {self.packages} plugin package{'s' if self.packages != 1 else ''}, "
                f"{self.wheels} wheel{'s' if self.wheels != 1 else ''} ({what})")


def index_data(wheels: Iterable[WheelInfo], skipped: Iterable[dict[str, str]] = ()) -> dict[str, Any]:
    """The ``index.json`` document for these wheels (deterministic: sorted everywhere)."""
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    by_key: dict[str, list[WheelInfo]] = {}
    for w in wheels:
        by_key.setdefault(canonicalize_name(w.name), []).append(w)
    packages = []
    for key in sorted(by_key):
        versions = sorted(by_key[key], key=lambda w: (Version(w.version), w.file))
        latest = versions[-1]
        # the latest version's facts at the top, so a reader that wants only "what is there" needs
        # no second look; every version (oldest first) under "versions"
        top = latest.to_dict()
        packages.append({"name": latest.name, "key": key, "summary": latest.summary, "latest": latest.version,
                         "version": latest.version, "plugins": latest.plugins, "wheel": latest.file,
                         "sha256": latest.sha256, "entry_points": top["entry_points"],
                         "requires_python": latest.requires_python, "signature": top["signature"],
                         "versions": [w.to_dict() for w in versions]})
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "plugins": packages,
            "skipped": sorted(skipped, key=lambda s: (s["file"], s["reason"]))}


def render(data: dict[str, Any]) -> bytes:
    """One package per line: diffs stay readable, and the C JSON encoder does the work (an
    indented dump goes through the pure-Python encoder, ~10x slower)."""
    def dump(value: Any) -> str:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    head = {k: v for k, v in sorted(data.items()) if k not in ("plugins", "skipped")}
    lines = ["{"] + [f"{dump(k)}:{dump(v)}," for k, v in head.items()]
    for key in ("plugins", "skipped"):
        items = data.get(key, [])
        lines.append(f"{dump(key)}:[" + ("" if items else "]" + ("," if key == "plugins" else "")))
        for i, item in enumerate(items):
            end = "" if i < len(items) - 1 else ("]," if key == "plugins" else "]")
            lines.append(dump(item) + ("," if i < len(items) - 1 else "") + end)
    lines.append("}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def build_index(folder: str | os.PathLike[str]) -> BuildReport:
    """Write ``FOLDER/index.json`` from the ``*.whl`` files in FOLDER; rewrite only if it changed."""
    d = Path(folder).expanduser()
    if not d.is_dir():
        raise RegistryError(f"index build: {d} is not a folder", code=2)
    infos: list[WheelInfo] = []
    skipped: list[dict[str, str]] = []
    known = _previous_entries(d / INDEX_FILE)
    for p in sorted(d.glob("*.whl")):
        try:
            prev = known.get(p.name)
            info = WheelInfo.from_dict(prev) if prev and prev["sha256"] == sha256_file(p) else read_wheel(p)
        except WheelError as e:
            skipped.append({"file": p.name, "reason": str(e)})
            continue
        if info.is_plugin:
            infos.append(info)
        else:
            skipped.append({"file": p.name, "reason": _NOT_PLUGIN})
    data = render(index_data(infos, skipped))
    target = d / INDEX_FILE
    changed = not target.is_file() or target.read_bytes() != data
    if changed:
        tmp = d / f".{INDEX_FILE}.{os.getpid()}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, target)  # readers (an HTTP server mid-request) see the old or the new file
    return BuildReport(target, len({canonical(i.name) for i in infos}), len(infos), skipped, changed)


def _previous_entries(path: Path) -> dict[str, dict[str, Any]]:
    """Version entries of the index.json being replaced, by wheel file: a wheel whose sha256 is
    unchanged is not re-read (its entry is a function of its bytes). Anything odd: start over."""
    try:
        data = json.loads(path.read_bytes())
        entries = {v["wheel"]: v for p in data["plugins"] for v in p["versions"]}
        for v in entries.values():
            WheelInfo.from_dict(v)  # every field this version of flx_ipy writes is there
        return entries if data.get("format_version") == FORMAT_VERSION else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


# ----------------------------------------------------------------------------- reading
def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


@dataclass
class Index:
    """A loaded index: where it is (folder path or base URL) and its packages."""

    location: str  # as the user gave it
    base: str  # the folder (absolute path) or base URL ending in "/"
    packages: list[dict[str, Any]]
    skipped: list[dict[str, Any]] = field(default_factory=list)

    @property
    def remote(self) -> bool:
        return is_url(self.base)

    def wheel_location(self, entry: dict[str, Any]) -> str:
        """Where pip fetches this version's wheel: an absolute path or a URL."""
        name = entry["wheel"]
        if self.remote:
            return urllib.parse.urljoin(self.base, urllib.parse.quote(name))
        return os.path.join(self.base, name)

    def package(self, key: str) -> dict[str, Any] | None:
        return next((p for p in self.packages if p["key"] == key), None)


def load_index(location: str | os.PathLike[str], *, timeout: float = 30.0) -> Index:
    """Read an index from a folder, an ``index.json`` path, or an HTTP(S) URL of either."""
    loc = os.fspath(location).strip()
    if not loc:
        raise RegistryError("no index given: pass --index URL|PATH", code=2)
    if loc.startswith("file://"):
        loc = urllib.parse.unquote(urllib.parse.urlparse(loc).path)
    if is_url(loc):
        from urllib.error import HTTPError, URLError  # remote only: urllib.request imports ssl, http
        from urllib.request import urlopen

        url = loc if loc.endswith(".json") else loc.rstrip("/") + "/" + INDEX_FILE
        base = url.rsplit("/", 1)[0] + "/"
        try:
            with urlopen(url, timeout=timeout, context=_tls_context(url)) as resp:
                raw = resp.read()
        except HTTPError as e:
            hint = f" — is {base} an index folder (`flx-ipy index build`)?" if e.code == 404 else ""
            raise RegistryError(f"index {url}: HTTP {e.code} {e.reason}{hint}") from None
        except (URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise RegistryError(f"index {url} cannot be reached: {reason}") from None
        where = url
    else:
        p = Path(loc).expanduser()
        f = p / INDEX_FILE if p.is_dir() else p
        if not f.is_file():
            hint = (f"; run `flx-ipy index build {p}`" if p.is_dir() else "")
            raise RegistryError(f"index {loc}: no {INDEX_FILE} there{hint}")
        raw = f.read_bytes()
        base, where = str(f.resolve().parent), str(f)
    return _parse(loc, base, raw, where)


def _tls_context(url: str) -> Any:
    """For https: the CA bundle pip is told to use (``PIP_CERT``, else ``REQUESTS_CA_BUNDLE``),
    so a private host that pip can reach is reachable here too; else the system's defaults.
    Proxies come from ``HTTPS_PROXY``/``NO_PROXY`` as for every urllib request."""
    if not url.startswith("https://"):
        return None
    import ssl

    cafile = os.environ.get("PIP_CERT") or os.environ.get("REQUESTS_CA_BUNDLE") or None
    try:
        return ssl.create_default_context(cafile=cafile if cafile and os.path.isfile(cafile) else None)
    except (OSError, ssl.SSLError):
        return ssl.create_default_context()


def _parse(loc: str, base: str, raw: bytes, where: str) -> Index:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise RegistryError(f"index {where} is not JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise RegistryError(f"index {where} is not an flx-ipy index (no \"format\": \"{FORMAT}\")")
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise RegistryError(f"index {where} has format_version {version!r}; this flx_ipy reads "
                            f"{FORMAT_VERSION} — upgrade flx_ipy")
    packages = data.get("plugins")
    if not isinstance(packages, list):
        raise RegistryError(f"index {where}: \"plugins\" must be a list; rebuild it with `flx-ipy index build`")
    good = []
    for p in packages:
        ok = (isinstance(p, dict) and isinstance(p.get("key"), str) and isinstance(p.get("versions"), list)
              and all(_good_version(v) for v in p["versions"]))
        if not ok:
            raise RegistryError(f"index {where}: malformed entry {str(p)[:80]!r}; rebuild it with "
                                "`flx-ipy index build`")
        good.append(p)
    return Index(loc, base, good, list(data.get("skipped") or []))


def _good_version(v: Any) -> bool:
    """A version entry pip can be pointed at safely: a plain file name and a sha256."""
    if not isinstance(v, dict):
        return False
    wheel, sha = v.get("wheel"), v.get("sha256")
    return (isinstance(wheel, str) and wheel.endswith(".whl") and "/" not in wheel and "\\" not in wheel
            and not wheel.startswith(".") and isinstance(sha, str) and len(sha) == 64
            and all(c in "0123456789abcdef" for c in sha) and isinstance(v.get("version"), str))


# ----------------------------------------------------------------------------- searching
def search(index: Index, term: str | None = None) -> list[dict[str, Any]]:
    """Packages whose name, plugin names or summary contain TERM (all without one), best first."""
    if not term:
        return sorted(index.packages, key=lambda p: p["key"])
    t = term.lower()
    key_t = canonical(term) if term.strip() else t
    scored = []
    for p in index.packages:
        names = [p["key"], str(p.get("name", "")).lower(), *(str(n).lower() for n in p.get("plugins", []))]
        if key_t == p["key"] or t in names:
            rank = 0
        elif any(n.startswith(t) for n in names):
            rank = 1
        elif any(t in n for n in names):
            rank = 2
        elif t in str(p.get("summary", "")).lower():
            rank = 3
        else:
            continue
        scored.append((rank, p["key"], p))
    return [p for _, _, p in sorted(scored, key=lambda s: (s[0], s[1]))]


# ----------------------------------------------------------------------------- resolving
def resolve(index: Index, spec: str, *, python: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The package and version entry that ``NAME[==VERSION]`` (or any PEP 508 specifier) means.

    NAME is a distribution name or the name of a plugin it provides (``weather`` finds the
    ``flx-weather`` package). The highest version whose specifier, ``Requires-Python`` and wheel
    tags fit this interpreter wins; prereleases only when asked for or when nothing else fits.
    """
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.tags import sys_tags
    from packaging.utils import parse_wheel_filename
    from packaging.version import InvalidVersion, Version

    try:
        req = Requirement(spec)
    except InvalidRequirement as e:
        raise RegistryError(f"{spec!r} is not NAME or NAME==VERSION ({e})", code=2) from None
    if req.url:
        raise RegistryError(f"{spec!r}: give a name from the index, not a URL", code=2)
    pkg = _find_package(index, req.name)
    py = python or ".".join(map(str, sys.version_info[:3]))
    supported = set(sys_tags())
    fits: list[tuple[Version, dict[str, Any]]] = []
    reasons: list[str] = []
    for v in pkg["versions"]:
        try:
            ver = Version(v["version"])
        except InvalidVersion:
            continue
        if not req.specifier.contains(ver, prereleases=True):
            continue
        rp = v.get("requires_python")
        try:
            if rp and not SpecifierSet(rp).contains(py, prereleases=True):
                reasons.append(f"{v['version']} requires Python {rp}")
                continue
        except InvalidSpecifier:
            pass
        try:
            tags = parse_wheel_filename(v["wheel"])[3]
        except ValueError:
            continue
        if not tags & supported:
            reasons.append(f"{v['wheel']} is not for this platform")
            continue
        fits.append((ver, v))
    finals = [f for f in fits if not f[0].is_prerelease or req.specifier.prereleases]
    chosen = finals or fits
    if not chosen:
        have = ", ".join(v["version"] for v in pkg["versions"])
        why = f" ({'; '.join(reasons)}; this is Python {py})" if reasons else ""
        raise RegistryError(f"{pkg['name']}: no version in the index matches {spec!r} (it has {have}){why}")
    return pkg, max(chosen, key=lambda f: f[0])[1]


def _find_package(index: Index, name: str) -> dict[str, Any]:
    key = canonical(name)
    pkg = index.package(key)
    if pkg is not None:
        return pkg
    by_plugin = [p for p in index.packages
                 if name in p.get("plugins", []) or key in map(canonical, p.get("plugins", []))]
    if len(by_plugin) == 1:
        return by_plugin[0]
    if len(by_plugin) > 1:
        raise RegistryError(f"plugin {name!r} is provided by several packages in the index "
                            f"({', '.join(p['name'] for p in by_plugin)}); name the package", code=2)
    close = [p["name"] for p in search(index, name)][:3]
    hint = f"; did you mean {', '.join(close)}?" if close else f"; `flx-ipy search --index {index.location}` lists them"
    raise RegistryError(f"{name!r} is not in the index {index.location}{hint}")
