"""Every tutorial notebook runs top to bottom in a fresh, real kernel (nbclient + ipykernel).

A cell that raises fails the test, except cells tagged ``raises-exception`` (they show a
clear error on purpose). Each notebook gets its own kernel, its own ``TMPDIR`` (which must be
empty again at the end: notebooks clean up after themselves) and a time limit. nbclient does
not see output printed from the background, so the notebooks wait on the manager's state,
never on printed text.

The notebooks are committed without outputs; a test checks that too.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
#: seconds for one whole notebook, kernel start included (a notebook takes 2-6 s here)
NOTEBOOK_TIMEOUT = 120
#: seconds for one cell
CELL_TIMEOUT = 60


def test_the_six_tutorials_are_there() -> None:
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"], NOTEBOOKS
    # scripts/run opens the first one
    assert NOTEBOOKS[0].name == "01-first-plugin.ipynb"


def test_example_package_entry_points_name_their_plugins() -> None:
    """Each ``flx_ipy.plugins`` entry point of examples/flx-weather names a class whose
    ``metadata.name`` is the entry point's name (notebook 05 relies on it)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    from flx_ipy.core.validators import validate_path

    pkg = ROOT / "examples" / "flx-weather"
    eps = tomllib.loads((pkg / "pyproject.toml").read_text())["project"]["entry-points"]["flx_ipy.plugins"]
    assert set(eps) == {"weather", "units"}
    for name, value in eps.items():
        module, _, cls = value.partition(":")
        file = pkg / "src" / (module.replace(".", "/") + ".py")
        text = file.read_text()
        assert f"class {cls}(Plugin):" in text and f'name="{name}"' in text, (name, value)
        assert validate_path(file).ok, str(validate_path(file))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; clear them before committing"


@pytest.mark.kernel
@pytest.mark.timeout(NOTEBOOK_TIMEOUT)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel inherits this process's environment: it must import this checkout's flx_ipy
    # (also when it is not installed), and write its temporary folders where we can check them.
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # the debugger's frozen-modules warning

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=False,
        resources={"metadata": {"path": str(path.parent)}},  # the kernel's cwd, as in JupyterLab
    )
    started = time.monotonic()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as e:
        pytest.fail(f"{path.name}: a cell failed\n{e}", pytrace=False)
    elapsed = time.monotonic() - started

    # What the raises-exception cells show must be an flx_ipy one-line error, not a crash.
    for cell in nb.cells:
        if "raises-exception" in cell.get("metadata", {}).get("tags", []):
            text = "".join(_text(o) for o in cell.get("outputs", []))
            assert text.strip(), f"{path.name}: cell tagged raises-exception printed nothing:\n{cell.source}"
            assert "Traceback (most recent call last)" not in text, (
                f"{path.name}: an error cell shows a full traceback instead of one line:\n{text}")
            assert "flx_ipy/core" not in text and "flx_ipy/magics" not in text, (
                f"{path.name}: an error cell shows flx_ipy's internals:\n{text}")

    leftovers = sorted(p.name for p in tmp.iterdir())
    assert not leftovers, f"{path.name} left files in its temporary folder: {leftovers}"
    print(f"{path.name}: {elapsed:.1f} s")


def _text(output: dict) -> str:
    if output.get("output_type") == "error":
        return f"{output.get('ename')}: {output.get('evalue')}\n" + "\n".join(output.get("traceback", []))
    if output.get("output_type") == "stream":
        return str(output.get("text", ""))
    data = output.get("data", {})
    return str(data.get("text/plain", ""))
