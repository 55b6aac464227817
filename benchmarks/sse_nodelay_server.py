"""A/B helper for bench_sse.py: ``jupyter nbsession`` with TCP_NODELAY on SSE responses.

Tornado leaves Nagle's algorithm on while a response body is being written (it only turns it
off in ``finish()``), so each small SSE flush that follows an unacknowledged one waits for the
client's delayed ACK (up to ~40 ms on Linux). This launcher wraps the handlers' ``send_events``
to set TCP_NODELAY first, without touching the package, so the effect can be measured:

    python benchmarks/bench_sse.py --server-cmd "python benchmarks/sse_nodelay_server.py"

Diagnostic only: it patches the server in its own process and is not part of nbsession.
"""

from __future__ import annotations

from typing import Any


def main() -> None:
    from nbsession.server import handlers
    from nbsession.server.app import main as launch

    original = handlers.send_events

    async def send_events(handler: Any, *args: Any, **kwargs: Any) -> Any:
        handler.request.connection.stream.set_nodelay(True)
        return await original(handler, *args, **kwargs)

    handlers.send_events = send_events
    launch()


if __name__ == "__main__":
    main()
