"""Files the agents' tools write behind the contents manager, announced on the server's event bus.

JupyterLab keeps an open document in memory and learns of a change on disk only when it next
saves. The contents manager emits a ``save`` event (schema ``contents_service/v1``) for every
save through it, which covers the ``jupyter`` toolset's notebook edits; the ``filesystem``
toolset writes files directly, which nothing announces. This module registers a schema of our
own with the same shape and emits it for those writes, so the front end (our labextension's
reload plugin, subscribed to ``/api/events/subscribe``) treats both alike: an open, unmodified
document reloads, one with unsaved changes is left alone and the user is told.
"""

from __future__ import annotations

import os
from typing import Any

# An identifier (a URI by jupyter_events' rules), not an address that serves the schema.
SCHEMA_ID = "https://nbsession.dev/events/file_written/v1"

SCHEMA: dict[str, Any] = {
    "$id": SCHEMA_ID,
    "version": "1",
    "title": "Files written by nbsession's tools",
    "personal-data": True,
    "description": (
        "A tool of an agent session wrote a file under the server's root without going "
        "through the contents manager; `path` is its API path (relative to root_dir)."
    ),
    "type": "object",
    "required": ["action", "path"],
    "properties": {
        "action": {"enum": ["save"], "description": "What happened: the file was written."},
        "path": {"type": "string", "description": "The file's API path."},
    },
}


def register(event_logger: Any) -> None:
    """Register the schema on the server's event logger (once: a second host is harmless).

    Must run before a browser subscribes: a subscriber listens to the schemas registered when
    its socket opens, which is why the extension does it while it loads."""
    if SCHEMA_ID not in event_logger.schemas.schema_ids:
        event_logger.register_event_schema(SCHEMA)


def api_path(root_dir: str, os_path: str) -> str | None:
    """``os_path`` as an API path under ``root_dir`` (``/``-separated), or None outside it."""
    root = os.path.realpath(root_dir)
    where = os.path.realpath(os_path)
    if os.path.commonpath([root, where]) != root or where == root:
        return None
    return os.path.relpath(where, root).replace(os.sep, "/")


def emit_written(event_logger: Any, root_dir: str, os_path: str) -> None:
    """Announce that a tool wrote ``os_path`` (nothing for a file outside the root, which
    JupyterLab cannot have open). Call it on the server's event loop: listeners run as tasks."""
    path = api_path(root_dir, os_path)
    if path is not None:
        event_logger.emit(schema_id=SCHEMA_ID, data={"action": "save", "path": path})
