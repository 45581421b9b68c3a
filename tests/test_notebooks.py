"""Every tutorial notebook runs top to bottom in a fresh, real kernel (nbclient + ipykernel).

A cell that raises fails the test, except cells tagged ``raises-exception`` (they show a
clear error on purpose). Each notebook gets its own kernel, its own ``TMPDIR`` (which must be
empty again at the end: notebooks clean up after themselves) and a time limit. nbclient does
not see output printed from the background, so the notebooks wait on the manager's state,
never on printed text.

The notebooks are committed without outputs; a test checks that too.
"""

from __future__ import annotations

import copy
import os
import subprocess
import textwrap
import time
import warnings
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


def test_the_tutorials_are_there() -> None:
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "07", "08", "09"], NOTEBOOKS
    assert NOTEBOOKS[6].name == "07-find-and-install-plugins.ipynb"
    assert NOTEBOOKS[7].name == "08-running-a-plugin-you-dont-trust.ipynb"
    assert NOTEBOOKS[8].name == "09-shipping-a-plugin-you-can-trust.ipynb"
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


def _committed(path: Path) -> str:
    """The notebook as committed (``git show HEAD:path``): running the tutorials in JupyterLab
    changes the working copy, which is not what this check is about. Outside a git checkout
    (an sdist), the file itself."""
    rel = path.relative_to(ROOT).as_posix()
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "show", f"HEAD:{rel}"], capture_output=True, text=True,
                             check=True, timeout=30)
    except (OSError, subprocess.CalledProcessError):
        return path.read_text()
    return out.stdout


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_without_outputs(path: Path) -> None:
    nb = nbformat.reads(_committed(path), as_version=4)
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
    # Run All must leave the lesson on screen: the optional clean-up step does nothing unless
    # asked. After Run All, a probe records what is still loaded; then the clean-up runs, as a
    # reader would run it, and must leave nothing behind.
    cleanup = [c for c in nb.cells if "clean-up" in c.get("metadata", {}).get("tags", [])]
    assert len(cleanup) == 1 and nb.cells.index(cleanup[0]) >= len(nb.cells) - 2, (
        f"{path.name}: the clean-up is not one optional last step")
    assert "CLEAN_UP = False" in cleanup[0].source
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    nb.cells.append(nbformat.v4.new_code_cell(cleanup[0].source.replace("CLEAN_UP = False", "CLEAN_UP = True", 1)))
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

    probe = "".join(_text(o) for o in nb.cells[-2].outputs if o.get("name") != "stderr")
    loaded = probe.split("loaded:", 1)[1].split("|")[0].split() if "loaded:" in probe else []
    assert loaded, f"{path.name}: after Run All nothing is loaded any more ({probe!r}): the lesson is gone"
    if "%plugin watch" in "".join(c.source for c in nb.cells[:-2]):
        assert "watching: True" in probe, f"{path.name}: Run All ended watching ({probe!r})"

    leftovers = sorted(p.name for p in tmp.iterdir())
    assert not leftovers, f"{path.name} left files in its temporary folder: {leftovers}"
    assert not (path.parent / "work" / path.stem).exists(), f"{path.name}: the clean-up left its work folder"
    print(f"{path.name}: {elapsed:.1f} s")


PROBE = textwrap.dedent("""
    import flx_ipy
    _pm = flx_ipy.get_manager()
    print("loaded:", *sorted(_pm.plugins), "| watching:", _pm.watching)
""")


def test_tutorials_write_under_the_server_root_in_a_git_ignored_folder() -> None:
    """A reader can open what a tutorial writes in JupyterLab's editor (it is under the root
    ``scripts/run`` serves), and it never dirties the checkout."""
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = "".join(c.source for c in nb.cells if c.cell_type == "code")
        assert "tempfile" not in code, f"{path.name} still writes into a temporary folder"
        assert f'Path("work", "{path.stem}")' in code, path.name
    ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", "notebooks/work/x/greeter.py"],
                             timeout=30)
    assert ignored.returncode == 0, "notebooks/work/ is not git-ignored"


def test_notebook_01_shows_the_dashboard_and_how_to_open_the_file() -> None:
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    assert any(c.cell_type == "code" and c.source.strip() == "%plugin panel" for c in nb.cells)
    text = "".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "](work/01-first-plugin/greeter.py)" in text  # a link JupyterLab opens in an editor tab
    assert "File → Open from Path…" in text and "notebooks/work/01-first-plugin/greeter.py" in text


def test_saving_a_tutorial_through_jupyter_strips_its_outputs(tmp_path: Path) -> None:
    """The pre-save hook ``scripts/run`` configures, on a real Jupyter ContentsManager."""
    import runpy

    from jupyter_server.services.contents.filemanager import FileContentsManager
    from traitlets.config import Config

    config = Config()
    runpy.run_path(str(ROOT / "scripts" / "jupyter-config" / "jupyter_server_config.py"), init_globals={"c": config})
    with warnings.catch_warnings():
        # jupyter_server validates a configured hook twice and warns that it "overrides" itself
        warnings.filterwarnings("ignore", "Overriding existing pre_save_hook", UserWarning)
        cm = FileContentsManager(root_dir=str(tmp_path), config=config)
    (tmp_path / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1", execution_count=3, outputs=[
        nbformat.v4.new_output("execute_result", data={"text/plain": "2"}, execution_count=3)])])
    for rel in ("notebooks/01-first-plugin.ipynb", "notebooks/mine.ipynb"):
        cm.save({"type": "notebook", "format": "json", "content": copy.deepcopy(nb)}, rel)
    tutorial = nbformat.read(tmp_path / "notebooks" / "01-first-plugin.ipynb", as_version=4)
    assert tutorial.cells[0].outputs == [] and tutorial.cells[0].execution_count is None
    assert tutorial.cells[0].source == "1 + 1"
    mine = nbformat.read(tmp_path / "notebooks" / "mine.ipynb", as_version=4)
    assert mine.cells[0].outputs  # only the tracked tutorials are stripped
    run = (ROOT / "scripts" / "run").read_text()
    assert "scripts/jupyter-config" in run and "JUPYTER_CONFIG_PATH" in run


def _text(output: dict) -> str:
    if output.get("output_type") == "error":
        return f"{output.get('ename')}: {output.get('evalue')}\n" + "\n".join(output.get("traceback", []))
    if output.get("output_type") == "stream":
        return str(output.get("text", ""))
    data = output.get("data", {})
    return str(data.get("text/plain", ""))
