"""The wheel carries the prebuilt JupyterLab extension: installed where no Node exists, the
extension is listed and enabled.

The wheel is built from this tree with the front end already built (the build hook's
`skip-if-exists` then runs no npm), and installed with ``--no-deps`` into a fresh virtual
environment whose other packages come from the test environment (a ``.pth`` file), so the
test stays quick while nbsession itself, and its data files, come only from the wheel.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
BUILT = [
    REPO / "nbsession" / "labextension" / "package.json",
    REPO / "nbsession" / "labextension" / "static" / "style.js",
    REPO / "nbsession" / "widgets" / "static" / "pane.js",
]
DATA = "nbsession-0.1.0.data/data/share/jupyter/labextensions/nbsession"


def _run(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    result = subprocess.run(args, capture_output=True, text=True, check=False, env=env, cwd=cwd)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return str(result.stdout + result.stderr)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = [str(path) for path in BUILT if not path.exists()]
    assert not missing, f"build the front end first (`pip install -e .`): {missing}"
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)])
    (built,) = out.glob("nbsession-*.whl")
    return built


def test_the_wheel_ships_the_labextension_and_the_server_config(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert f"{DATA}/package.json" in names
    assert f"{DATA}/install.json" in names
    assert f"{DATA}/static/style.js" in names
    assert any(name.startswith(f"{DATA}/static/remoteEntry.") for name in names)
    assert "nbsession-0.1.0.data/data/etc/jupyter/jupyter_server_config.d/nbsession.json" in names
    assert "nbsession/widgets/static/pane.js" in names


def test_installed_without_node_jupyterlab_lists_it_enabled(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    packages = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).strip()
    )
    # Everything but nbsession comes from the test environment, read after the venv's own.
    (packages / "test-env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
          "--no-index", str(wheel)])  # fmt: skip
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("JUPYTER", "PYTHON", "VIRTUAL_ENV"))
    }
    env["PATH"] = str(venv / "bin")
    env["HOME"] = str(tmp_path / "home")
    assert shutil.which("node", path=env["PATH"]) is None
    assert shutil.which("npm", path=env["PATH"]) is None
    # Run away from the source tree, which would shadow the installed package.
    located = _run(
        [str(python), "-c", "import nbsession; print(nbsession.__file__)"], env=env, cwd=tmp_path
    )
    assert located.strip().startswith(str(venv)), located
    listing = _run([str(python), "-m", "jupyterlab.labextensions", "list"], env=env, cwd=tmp_path)
    line = next(line for line in listing.splitlines() if line.strip().startswith("nbsession "))
    assert "enabled" in line and "OK" in line, listing
    assert "(python, nbsession)" in line, listing
    assert str(venv / "share" / "jupyter" / "labextensions") in listing, listing
