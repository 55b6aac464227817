"""A session started in a notebook's kernel records that kernel and notebook, and its turns
show a direct-mode pane (the page's server reads ``/events`` itself)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.server.test_live_server import Server

from .conftest import SERVER_TOKEN
from .helpers import ServerKernel

WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def notebook_kernel(live: Server) -> Iterator[ServerKernel]:
    started = ServerKernel(f"http://127.0.0.1:{live.port}", SERVER_TOKEN, notebook="nb/demo.ipynb")
    started.execute("import nbsession").check()
    yield started
    started.close()


def test_session_records_its_kernel_and_notebook(
    notebook_kernel: ServerKernel, live: Server
) -> None:
    out = notebook_kernel.execute("s = nbsession.connect().create_session()\nprint(s.id)").check()
    with live.client(SERVER_TOKEN) as http:
        session = http.get(f"/api/sessions/{out.stdout.strip()}").json()
    assert session["kernel_id"] == notebook_kernel.id
    assert session["notebook_path"].endswith("demo.ipynb")


def test_a_run_shows_a_direct_pane_with_its_markdown(notebook_kernel: ServerKernel) -> None:
    out = notebook_kernel.execute(
        "import json\n"
        "r = nbsession.connect().create_session().run('what is 17*23')\n"
        "print(json.dumps(r.session_id))",
    ).check()
    session_id = json.loads(out.stdout)
    shown, updated = out.displays
    assert "turn running" in shown["data"]["text/markdown"]
    assert "391" in updated["data"]["text/markdown"]
    assert shown["data"][WIDGET]["model_id"] == updated["data"][WIDGET]["model_id"]
    assert shown["transient"]["display_id"] == updated["transient"]["display_id"]
    assert session_id in updated["data"]["text/markdown"]


@pytest.mark.parametrize(
    "template",
    [{"kernel_id": "../etc"}, {"kernel_id": 5}, {"notebook_path": "a\nb.ipynb"}],
)
def test_binding_fields_are_validated(live: Server, template: dict[str, object]) -> None:
    with live.client(SERVER_TOKEN) as http:
        before = len(http.get("/api/sessions").json())
        reply = http.post("/api/sessions", json=template)
        assert reply.status_code == 400
        assert reply.json()["code"] == "invalid_request"
        assert len(http.get("/api/sessions").json()) == before
