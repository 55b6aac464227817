"""The pane's front-end unit tests (jest, in jupyter_extension/) run as part of pytest.

One test command covers both languages; the JavaScript suite runs on event streams recorded
from a real server (jupyter_extension/test/fixtures).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

FRONTEND = Path(__file__).parents[2] / "jupyter_extension"


def test_front_end_unit_tests_pass() -> None:
    npm = shutil.which("npm")
    assert npm, "npm is needed to run the front end's tests (Node 20 + npm)"
    assert (FRONTEND / "node_modules").is_dir(), (
        "jupyter_extension/node_modules is missing: `pip install -e .` installs it, "
        "or run `npm ci` in jupyter_extension/"
    )
    result = subprocess.run(
        [npm, "test", "--", "--ci"],
        cwd=FRONTEND,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
