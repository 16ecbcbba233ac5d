"""Scratch files for memory-mapped arrays, named after the process that owns them.

A process killed outright (SIGKILL, the out-of-memory killer) runs no cleanup, so its scratch
files would pile up in the temp folder, each as large as a data set. Every name carries the
host and pid of its creator; each new scratch file first removes the files of processes of
this host that no longer run.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

_PREFIX = "pixelheal-"
# pixelheal-<kind>-<host>-<pid>-<tempfile's random part><suffix>
_NAME = re.compile(r"pixelheal-(?P<kind>[a-z_]+)-(?P<host>[A-Za-z0-9]*)-(?P<pid>\d+)-[a-z0-9_]+(\.[a-z0-9]+)?")


def _host() -> str:
    """This machine's name, reduced to the characters a scratch name allows."""
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32]


def _is_running(pid: int) -> bool:
    """Whether process ``pid`` exists (on this host); conservative: True when it cannot tell."""
    try:
        os.kill(pid, 0)  # signal 0: checks existence, delivers nothing
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, owned by another user
        return True
    return True


def remove_dead_leftovers(folder: str | Path) -> list[Path]:
    """Delete the scratch files in ``folder`` whose creator (a process of this host) has ended."""
    if os.name != "posix":  # os.kill(pid, 0) terminates the process on Windows
        return []
    host, removed = _host(), []
    for path in Path(folder).glob(f"{_PREFIX}*"):
        match = _NAME.fullmatch(path.name)
        # Another host's pids mean nothing here (a temp folder shared between containers).
        if match is None or match["host"] != host or _is_running(int(match["pid"])):
            continue
        try:
            size = path.stat().st_size
            path.unlink()
        except OSError:  # removed meanwhile by another process's sweep
            continue
        logger.info("Removed %s (%.1f MB), left behind by ended process %s", path, size / 1e6, match["pid"])
        removed.append(path)
    return removed


def scratch_file(kind: str, suffix: str = ".npy") -> Path:
    """A new empty file ``pixelheal-<kind>-<host>-<pid>-<random><suffix>`` in the temp folder.

    Dead processes' leftovers there are removed first. The caller deletes the file when done
    (also on failure); only a killed process leaves it, for the next call to remove.
    """
    if not re.fullmatch(r"[a-z_]+", kind):
        raise ValueError(f"kind: scratch file kinds are lower-case letters and '_', got {kind!r}")
    folder = tempfile.gettempdir()
    remove_dead_leftovers(folder)
    handle, name = tempfile.mkstemp(prefix=f"{_PREFIX}{kind}-{_host()}-{os.getpid()}-", suffix=suffix, dir=folder)
    os.close(handle)
    return Path(name)
