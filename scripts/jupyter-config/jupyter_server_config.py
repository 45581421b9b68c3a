"""Jupyter Server settings that ``scripts/run`` adds (it puts this folder on JUPYTER_CONFIG_PATH).

The tutorial notebooks are committed without outputs. Running them in JupyterLab writes outputs
into them (autosave included), which would leave a newcomer's checkout dirty — and, before
this hook, failed ``test_committed_without_outputs``. So every save of a tracked tutorial
(``notebooks/NN-*.ipynb`` under the server's root) is stripped of outputs and execution counts
on its way to disk. The notebook open in the browser keeps its outputs; only the file stays
clean. Any other notebook is saved as it is.
"""

from __future__ import annotations

import re
from typing import Any

#: API paths (relative to the server root) of the tracked tutorials
TUTORIAL = re.compile(r"^/?notebooks/\d\d-[^/]+\.ipynb$")


def strip_tutorial_outputs(model: dict[str, Any], path: str, contents_manager: Any = None, **_: Any) -> None:
    """``ContentsManager.pre_save_hook``: a tracked tutorial is saved without outputs."""
    if model.get("type") != "notebook" or not TUTORIAL.match(path or ""):
        return
    content = model.get("content") or {}
    for cell in content.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None


try:
    c  # type: ignore[used-before-def]  # noqa: B018 - defined when Jupyter loads this file
except NameError:  # imported by a test, not loaded as a config file
    pass
else:
    c.ContentsManager.pre_save_hook = strip_tutorial_outputs  # type: ignore[name-defined]  # noqa: F821
