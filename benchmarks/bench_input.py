"""What the input rules cost: the JSON gate of every request body and the store's encoding rule.

- ``parse_json`` (UTF-8, NaN, number length, and when the text could need it a walk for depth
  and lone surrogates) against a bare ``json.loads``, on a run body, on a ~1 MiB recovery
  import (the walk runs: it has more than 64 brackets) and on one full of escaped emoji
  (surrogate pairs: the walk runs and checks every string);
- ``session.storable`` (encode, read back) for one appended item, which every message of a
  turn pays, and for a 3,000-item session, which a fork or an import pays once (SQLite runs
  it on its worker thread, off the event loop).

    python benchmarks/bench_input.py      # ~5 s on 2 cores
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from _util import fmt, header, median, ratio, table

from nbsession.server.base import parse_json
from nbsession.session import Item, Session, storable, user_message


def timed(call: Callable[[], Any], repeat: int) -> float:
    """Median seconds of ``call`` over ``repeat`` rounds of a few calls each."""
    rounds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(5):
            call()
        rounds.append((time.perf_counter() - start) / 5)
    return median(rounds)


def main() -> None:
    header("bench_input.py", "medians of repeated rounds")
    items = [
        {
            "message": {
                "id": str(i),
                "agentName": "root",
                "message": {
                    "role": "assistant",
                    "content": "x" * 200,
                    "usage": {"input_tokens": i},
                },
            }
        }
        for i in range(3000)
    ]
    bodies = {
        "run body (one message)": json.dumps(
            {"messages": [{"role": "user", "content": "list the files"}]}
        ).encode(),
        "recovery import, 3,000 items": json.dumps(
            {"recovery_version": 1, "messages": items}
        ).encode(),
        "same, every text with emoji": json.dumps({"recovery_version": 1, "messages": items})
        .replace("xxxx", "\\ud83d\\ude00")
        .encode(),
    }
    rows = []
    for name, body in bodies.items():
        repeat = 400 if len(body) < 1000 else 10
        bare = timed(lambda body=body: json.loads(body), repeat)
        gated = timed(lambda body=body: parse_json(body), repeat)
        rows.append(
            [
                name,
                fmt(len(body) / 1024),
                f"{bare * 1e3:.3f}",
                f"{gated * 1e3:.3f}",
                ratio(gated, bare),
            ]
        )
    table("The JSON gate", ["body", "KiB", "json.loads ms", "parse_json ms", "ratio"], rows)

    item = Item(message=user_message("hello " * 50))
    session = Session.model_validate({"messages": items})
    rows = [
        ["one appended item", f"{timed(lambda: storable(item), 400) * 1e6:.1f} us"],
        [
            "a 3,000-item session (fork, import)",
            f"{timed(lambda: storable(session), 3) * 1e3:.1f} ms",
        ],
    ]
    table("The store's encoding rule (session.storable)", ["write", "time"], rows)


if __name__ == "__main__":
    main()
