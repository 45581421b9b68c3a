"""How a search result is shown: the same rows for ``flx-ipy search``, ``%plugin search`` and the panels."""

from __future__ import annotations

from typing import Any

__all__ = ["format_table", "search_rows"]


def search_rows(packages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One JSON-safe row per package: what a list of offers needs, latest version's facts."""
    rows = []
    for p in packages:
        latest = p["versions"][-1] if p.get("versions") else {}
        version = p.get("latest", latest.get("version", ""))
        rows.append({"name": p["name"], "latest": version, "version": version, "wheel": latest.get("wheel"),
                     "sha256": latest.get("sha256"),
                     "plugins": list(p.get("plugins", [])), "summary": p.get("summary", ""),
                     "versions": [v["version"] for v in p.get("versions", [])],
                     "requires_python": latest.get("requires_python"),
                     "signature": (latest.get("signature") or {}).get("status", "unsigned")})
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    cols = [("name", "NAME"), ("latest", "VERSION"), ("plugins", "PLUGINS"), ("signature", "SIGNATURE"),
            ("summary", "SUMMARY")]
    cells = [[", ".join(r[k]) if isinstance(r[k], list) else str(r[k]) for k, _ in cols] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, (_, h) in enumerate(cols)]
    out = ["  ".join(h.ljust(w) for (_, h), w in zip(cols, widths, strict=True)).rstrip()]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(out)
