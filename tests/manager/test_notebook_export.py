"""The manager's notebook export and import (SPEC 6) over a real turn and a real store."""

from __future__ import annotations

import json

import nbformat
import pytest

from nbsession.errors import InvalidRequest


async def test_a_real_turn_exports_as_a_valid_notebook_and_imports_back(open_manager):
    async with open_manager() as mgr:
        session = await mgr.create_session({"permissions": {"allow": ["think"]}})
        stream = await mgr.run_session(
            session.id, "default", "", [{"role": "user", "content": "what is 17*23"}]
        )
        async for _ in stream:
            pass
        notebook = await mgr.export_session_notebook(session.id)
        nbformat.validate(nbformat.from_dict(notebook))
        text = json.dumps(notebook["cells"])
        assert "what is 17*23" in text and "think" in text and "391" in text

        imported = await mgr.import_session(notebook)
        original = await mgr.get_session(session.id)
        assert imported.id != original.id  # the exported id is taken on this server
        again = await mgr.export_session_notebook(imported.id)
        assert again["cells"] == notebook["cells"]
        for field in ("title", "permissions", "input_tokens", "output_tokens"):
            assert getattr(imported, field) == getattr(original, field)
        assert [i.to_json() for i in imported.messages] == [i.to_json() for i in original.messages]


async def test_a_notebook_without_its_record_is_refused_and_creates_nothing(open_manager):
    async with open_manager() as mgr:
        session = await mgr.create_session({})
        notebook = await mgr.export_session_notebook(session.id)
        del notebook["metadata"]["nbsession"]
        before = len(await mgr.get_sessions())
        with pytest.raises(InvalidRequest) as err:
            await mgr.import_session(notebook)
        assert err.value.field == "metadata.nbsession"
        assert len(await mgr.get_sessions()) == before
