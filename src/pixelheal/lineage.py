"""Lineage of persisted artefacts: what each file was made from, so stale combinations are refused.

Beside every file a pipeline writes lies a small record, `<file>.lineage.json`, holding:
- `content`: a stamp of the file's bytes as written. A record whose stamp no longer matches its
  file (the file was replaced afterwards, e.g. by a run killed between the two writes) is void.
- `fingerprint`: a hash of the recipe — node, dataset, the node's parameter values and the
  fingerprints of the datasets it read; a node that reads no tracked dataset (a source, such as
  ingestion) adds its own content stamp, as its real input lies outside the pipelines. The same
  parameters and upstream give the same fingerprint, so rerunning a pipeline unchanged keeps
  everything downstream valid.
- `made_from`: for each dataset the node read, its fingerprint and content stamp at that time.

A dataset still is what a record says it was made from when either its fingerprint (same recipe)
or its content stamp (same bytes) is unchanged. A file without a valid record (made before lineage
existed) is identified by its content alone; a record naming a file that no longer exists is not
checked. Nothing here imports Kedro: the hook in `pixelheal.lineage_hooks` maps dataset names to
files and decides what to do with a stale input.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixelheal.storage import write_atomically

logger = logging.getLogger(__name__)

SUFFIX = ".lineage.json"
FORMAT = 1
_BLOCK = 1 << 20  # 1 MiB
_FULL_HASH_LIMIT = 256 * _BLOCK  # larger files are sampled: a full read of a multi-GB array per check is too slow
_SAMPLES = 64


def sidecar_path(path: str | Path) -> Path:
    """Where the lineage record of the file at `path` lives."""
    path = Path(path)
    return path.with_name(path.name + SUFFIX)


def content_stamp(path: str | Path) -> str:
    """A stamp of the file's bytes: sha256 of all of them, or of its size and 64 evenly spaced 1 MiB blocks."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as f:
        if size <= _FULL_HASH_LIMIT:
            for block in iter(lambda: f.read(_BLOCK), b""):
                digest.update(block)
            return f"sha256:{digest.hexdigest()}"
        step = (size - _BLOCK) / (_SAMPLES - 1)  # first block at 0, last one ending at the end of the file
        for i in range(_SAMPLES):
            f.seek(round(i * step))
            digest.update(f.read(_BLOCK))
    return f"sampled-sha256:{digest.hexdigest()}"


@dataclass(frozen=True)
class Origin:
    """What an input dataset was when a node read it: its fingerprint (None without a record) and content."""

    fingerprint: str | None
    content: str

    def identity(self) -> str:
        return self.fingerprint or f"content:{self.content}"


@dataclass(frozen=True)
class Record:
    """The lineage record of one persisted dataset."""

    dataset: str
    node: str
    fingerprint: str
    content: str
    params: dict[str, Any] = field(default_factory=dict)
    made_from: dict[str, Origin] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        made_from = {name: {"fingerprint": o.fingerprint, "content": o.content} for name, o in self.made_from.items()}
        return {
            "format": FORMAT,
            "dataset": self.dataset,
            "node": self.node,
            "fingerprint": self.fingerprint,
            "content": self.content,
            "params": self.params,
            "made_from": made_from,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown lineage format {data.get('format')!r}")
        made_from = {name: Origin(o["fingerprint"], o["content"]) for name, o in data["made_from"].items()}
        return cls(
            data["dataset"], data["node"], data["fingerprint"], data["content"], data.get("params", {}), made_from
        )


def fingerprint(
    node: str, dataset: str, params: Mapping[str, Any], made_from: Mapping[str, Origin], content: str | None = None
) -> str:
    """The recipe hash of `dataset` as written by `node`; deterministic for the same parameters and inputs.

    `content` is the output's own stamp, given for a source node: its real input lies outside the pipelines.
    """
    recipe = {
        "node": node,
        "dataset": dataset,
        "params": dict(params),
        "made_from": {name: origin.identity() for name, origin in made_from.items()},
        "content": content,
    }
    # default=repr: parameter values are plain YAML types; anything else still hashes by its value's text
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, default=repr).encode()).hexdigest()


def write_record(path: str | Path, record: Record) -> None:
    """Write the record of the file at `path` beside it, atomically."""
    text = json.dumps(record.to_json(), indent=2, sort_keys=True, default=repr)
    write_atomically(sidecar_path(path), lambda tmp: tmp.write_text(text + "\n"))


@dataclass(frozen=True)
class Stale:
    """`dataset` was made from another `made_from` than the one there is now."""

    dataset: str
    made_from: str


@dataclass(frozen=True)
class Staleness:
    """The stale pairs found (first is reported) and every dataset that has to be made again, in order."""

    pairs: list[Stale]
    datasets: list[str]


class Lineage:
    """Reads records and content stamps of the tracked datasets; `locate` maps a name to its file or None.

    Stamps are cached per file state (size, mtime, inode), so one run hashes each file once.
    """

    def __init__(self, locate: Callable[[str], Path | None]) -> None:
        self._locate = locate
        self._stamps: dict[tuple[str, int, int, int], str] = {}

    def path(self, name: str) -> Path | None:
        path = self._locate(name)
        return path if path is not None and path.is_file() else None

    def stamp(self, path: Path) -> str:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
        if key not in self._stamps:
            self._stamps[key] = content_stamp(path)
        return self._stamps[key]

    def origin(self, name: str) -> Origin | None:
        """What `name` holds now; None when it is not a tracked file or the file does not exist."""
        path = self.path(name)
        if path is None:
            return None
        record = self.record(name)
        return Origin(record.fingerprint if record else None, self.stamp(path))

    def record(self, name: str) -> Record | None:
        """The valid record of `name`: None when there is none, it is unreadable, or the file changed since."""
        path = self.path(name)
        if path is None or not sidecar_path(path).is_file():
            return None
        sidecar = sidecar_path(path)
        try:
            record = Record.from_json(json.loads(sidecar.read_text()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            logger.warning("Ignoring the unreadable lineage record %s: %s", sidecar, error)
            return None
        return record if record.content == self.stamp(path) else None

    def stale(self, names: Iterable[str], remade: Iterable[str] = ()) -> Staleness | None:
        """Whether the datasets `names` (and what they were made from) still belong together.

        Datasets in `remade` are about to be written again, so they and what was made from them
        are not judged yet. Returns None when everything checks out.
        """
        walk = _Walk(self, frozenset(remade))
        for name in names:
            walk.visit(name)
        if not walk.pairs:
            return None
        return Staleness(walk.pairs, [name for name, stale in walk.verdicts.items() if stale])

    def made_from(self, names: Iterable[str]) -> dict[str, Origin]:
        """The origins of the inputs `names` that are tracked files now, in order."""
        found = {name: self.origin(name) for name in names}
        return {name: origin for name, origin in found.items() if origin is not None}

    def write(self, name: str, node: str, params: Mapping[str, Any], made_from: Mapping[str, Origin]) -> None:
        """Record what the just-written dataset `name` was made from; nothing when it is not a tracked file."""
        path = self.path(name)
        if path is None:
            return
        content = self.stamp(path)
        recipe = fingerprint(node, name, params, made_from, content=None if made_from else content)
        write_record(path, Record(name, node, recipe, content, dict(params), dict(made_from)))


class _Walk:
    """A depth-first walk through the records, collecting stale pairs and a verdict per dataset."""

    def __init__(self, lineage: Lineage, remade: frozenset[str]) -> None:
        self.lineage, self.remade = lineage, remade
        self.pairs: list[Stale] = []
        self.verdicts: dict[str, bool] = {}

    def visit(self, name: str) -> bool:
        """True when `name` is stale: made from something that changed, directly or further up."""
        if name in self.verdicts or name in self.remade:
            return self.verdicts.get(name, False)
        self.verdicts[name] = False  # guards against a cycle of hand-edited records
        record = self.lineage.record(name)
        stale = False
        for source, then in (record.made_from if record else {}).items():
            if source in self.remade:
                continue
            now = self.lineage.origin(source)
            if now is not None and not _same(then, now):
                self.pairs.append(Stale(name, source))
                stale = True
            stale = self.visit(source) or stale
        self.verdicts[name] = stale
        return stale


def _same(then: Origin, now: Origin) -> bool:
    return then.content == now.content or (then.fingerprint is not None and then.fingerprint == now.fingerprint)
