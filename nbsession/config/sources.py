"""The agent sources a server offers: YAML files in a directory plus the bundled defaults.

Each file is parsed once and kept until its ``(mtime_ns, size)`` changes, so listing agents on
every request costs a directory scan, not a YAML parse; the scan itself is throttled by
``refresh_interval`` (SPEC 7). Sources are looked up by id in the scanned set only, so an id
can never reach a file outside the directories.

A file that stops loading after it once loaded (a broken edit, a file being rewritten) keeps
serving its last good version, with a warning in the log and its problem in the listing, until
it loads again, as docker-agent's source loader keeps its last good read. A file that never
loaded is listed with its problem and refused when used.
"""

from __future__ import annotations

import builtins
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AgentInvalid, AgentSourceUnavailable, UnknownAgent
from .agents import TeamConfig, load_team, source_id_for

log = logging.getLogger("nbsession.config")

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "agents"

_SUFFIXES = (".yaml", ".yml")
_FORBIDDEN_ID_CHARS = frozenset("/\\\0")


_LoadError = AgentInvalid | AgentSourceUnavailable


@dataclass(frozen=True)
class AgentSourceInfo:
    """One row of ``GET /api/agents``: a source summed up by its root agent.

    ``error`` is why the file does not load as it is now: with an empty description when it
    never loaded, with its last good version's fields when that is what is served.
    """

    name: str
    description: str
    multi: bool
    commands: list[str]
    error: str | None = None
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "multi": self.multi,
            "commands": list(self.commands),
        }
        if self.error is not None:  # extra fields: docker-agent's clients ignore them
            row["error"] = self.error
        if self.warnings:  # what the file asks for that nbsession ignores
            row["warnings"] = list(self.warnings)
        return row


@dataclass
class _Entry:
    """A scanned file and, once asked for, what parsing it gave (a team or its error), with
    the team an earlier version of the same file gave, served while this one is broken."""

    path: Path
    stamp: tuple[int, int]
    team: TeamConfig | None = None
    error: AgentInvalid | None = None
    last_good: TeamConfig | None = None


def _is_plain_id(source_id: str) -> bool:
    """Whether an id could name a file directly in a directory: no separator (of any OS), no
    NUL, no dot-name. Lookups only ever hit scanned files; this refuses the rest up front."""
    return (
        bool(source_id)
        and not source_id.startswith(".")
        and not _FORBIDDEN_ID_CHARS.intersection(source_id)
    )


class SourceLoader:
    """Finds, parses and caches agent sources; safe to share between threads."""

    def __init__(
        self,
        agents_dir: str | os.PathLike[str] | None = None,
        *,
        refresh_interval: float = 0.0,
        include_bundled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Earlier directories win: a user's file shadows the bundled one of the same id.
        self._dirs = [Path(agents_dir)] if agents_dir is not None else []
        if include_bundled:
            self._dirs.append(BUNDLED_DIR)
        self._refresh_interval = refresh_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._scanned_at: float | None = None

    def ids(self) -> list[str]:
        with self._lock:
            self._refresh()
            return sorted(self._entries)

    def get(self, source_id: str) -> TeamConfig:
        """The parsed source (its last good version while its file is broken); `UnknownAgent`
        when there is no such file, `AgentInvalid` when it never loaded,
        `AgentSourceUnavailable` when it cannot be read."""
        if not _is_plain_id(source_id):
            raise UnknownAgent(source_id, "not a valid agent source id")
        with self._lock:
            self._refresh()
            entry = self._entries.get(source_id)
            if entry is None:
                raise UnknownAgent(source_id, "no such agent source")
            team, problem = self._load(entry)
            if team is None:
                assert problem is not None
                raise problem.with_traceback(None)
            return team

    def list(self) -> builtins.list[AgentSourceInfo]:
        """Every source, sorted by name; one that does not load is listed with its ``error``
        rather than hidden, and never hides the others."""
        infos = []
        with self._lock:
            self._refresh()
            for source_id in sorted(self._entries):
                team, problem = self._load(self._entries[source_id])
                error = None if problem is None else problem.message
                if team is None:
                    infos.append(AgentSourceInfo(source_id, "", False, [], error))
                    continue
                root = team.agent(None)
                infos.append(
                    AgentSourceInfo(
                        name=source_id,
                        description=root.description,
                        multi=team.multi,
                        commands=sorted(root.commands),
                        error=error,
                        warnings=team.warnings,
                    )
                )
        return infos

    def _refresh(self) -> None:
        """Re-list the directories and re-stat the files, at most once per interval; an
        entry whose stamp is unchanged keeps its parsed team."""
        now = self._clock()
        if self._scanned_at is not None and now - self._scanned_at < self._refresh_interval:
            return
        entries: dict[str, _Entry] = {}
        for directory in self._dirs:
            for path, stamp in self._scan(directory):
                source_id = source_id_for(path)
                if source_id in entries:
                    continue
                old = self._entries.get(source_id)
                if old is not None and old.path == path and old.stamp == stamp:
                    entries[source_id] = old
                elif old is not None and old.path == path:  # edited: remember what worked
                    entries[source_id] = _Entry(path, stamp, last_good=old.team or old.last_good)
                else:
                    entries[source_id] = _Entry(path, stamp)
        self._entries = entries
        self._scanned_at = now

    @staticmethod
    def _scan(directory: Path) -> Iterator[tuple[Path, tuple[int, int]]]:
        """The YAML files directly in ``directory`` with their stamps, ``.yaml`` before
        ``.yml`` so the pair ``x.yaml`` / ``x.yml`` resolves the same way every time.
        Hidden files (editor back-ups) are skipped; a missing directory has no files."""
        try:
            names = os.listdir(directory)
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            log.warning("Cannot list agent directory %s: %s", directory, exc)
            return
        candidates = [
            name for name in names if name.endswith(_SUFFIXES) and not name.startswith(".")
        ]
        for name in sorted(
            candidates, key=lambda name: (source_id_for(name), name.endswith(".yml"))
        ):
            path = directory / name
            try:
                info = path.stat()
            except OSError:
                continue  # removed between the listing and now
            if stat.S_ISREG(info.st_mode):
                yield path, (info.st_mtime_ns, info.st_size)

    @staticmethod
    def _load(entry: _Entry) -> tuple[TeamConfig | None, _LoadError | None]:
        """The team to serve and why the file does not load as it is now (None when it does).

        Parsed on first use; a parse error is kept too, so a broken file is reported once per
        change rather than on every listing. A read error is not kept: fixing a file's
        permissions does not change its stamp.
        """
        if entry.team is not None:
            return entry.team, None
        if entry.error is not None:
            return entry.last_good, entry.error
        try:
            # Messages may reach a client: they name the file as it is in agents_dir (sources
            # sit directly in their directory, so by its file name), never by a server path.
            entry.team = load_team(entry.path, name=entry.path.name)
            return entry.team, None
        except AgentInvalid as exc:
            entry.error = exc
            problem: _LoadError = exc
        except AgentSourceUnavailable as exc:
            problem = exc
        if entry.last_good is not None:
            log.warning(
                "Agent source %s does not load; its last good version is served until it is "
                "fixed: %s",
                entry.path,
                problem.message,
            )
        else:
            log.warning("Agent source %s does not load: %s", entry.path, problem.message)
        return entry.last_good, problem
