"""Batch export into a folder of notebooks and import of a folder, through the SDK."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import nbsession
from nbsession.sdk.client import notebook_filename


def test_a_store_survives_as_a_folder_of_notebooks(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    with nbsession.local(db_path=tmp_path / "lost.db") as client:
        planned = client.create_session(title="Plan: the trip / v2")
        planned.run("make a plan")
        counted = client.create_session()
        counted.run("what is 17*23")
        report = client.export_all(folder)
        originals = {s.id: s.messages() for s in (planned, counted)}

    assert report.failed == [] and len(report.succeeded) == 2
    assert "exported 2 sessions" in str(report)
    names = sorted(path.name for path in folder.iterdir())
    assert f"Plan-the-trip-v2-{planned.id}.ipynb" in names and len(names) == 2

    # Damaged files among the good ones: each refused by name, the rest imported.
    (folder / "a-cut.ipynb").write_text((folder / names[0]).read_text()[:-50])
    (folder / "b-foreign.ipynb").write_text(
        json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    (folder / "notes.txt").write_text("not a notebook, not looked at")
    with nbsession.local(db_path=tmp_path / "new.db") as client:
        report = client.import_folder(folder)
        failed = {Path(o.path).name: o.error for o in report.failed}
        assert set(failed) == {"a-cut.ipynb", "b-foreign.ipynb"}
        assert "truncated" in failed["a-cut.ipynb"]
        assert "InvalidRequest" in failed["b-foreign.ipynb"]
        assert "no nbsession record" in failed["b-foreign.ipynb"]
        assert "2 failed" in str(report)
        recovered = {o.session_id for o in report.succeeded}
        assert recovered == set(originals) == {s.id for s in client.sessions()}
        for session_id, messages in originals.items():
            assert client.session(session_id).messages() == messages
        # A recovered session goes on.
        assert "391" in str(client.session(counted.id).run("what is 17*23"))


def test_export_all_reports_a_session_that_is_gone_and_goes_on(
    client: nbsession.Client, tmp_path: Path
) -> None:
    kept = client.create_session(title="kept")
    gone = client.create_session(title="gone")
    gone.delete()
    report = client.export_all(tmp_path, [gone.id, client.sessions(limit=1)[0]])
    assert [o.session_id for o in report.succeeded] == [kept.id]
    assert [(o.session_id, o.error.split(":")[0]) for o in report.failed] == [
        (gone.id, "UnknownSession")
    ]
    assert (tmp_path / f"kept-{kept.id}.ipynb").exists()
    assert not (tmp_path / f"{gone.id}.ipynb").exists()


def test_import_folder_needs_a_folder(client: nbsession.Client, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        client.import_folder(tmp_path / "missing")


def test_file_names_are_safe_and_unique() -> None:
    assert notebook_filename("abc", "") == "abc.ipynb"
    assert notebook_filename("abc", "../../etc/passwd") == "etc-passwd-abc.ipynb"
    assert notebook_filename("a/b", "  ") == "a-b.ipynb"
    assert len(notebook_filename("id", "x" * 500)) == len("x" * 40 + "-id.ipynb")
