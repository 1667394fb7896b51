"""Atomic writes for the results folder: a file is either its old content or its new one.

Each write goes to a unique temp file in the same folder (so `os.replace` is a rename on one
filesystem), is flushed and fsynced, then replaces the target; the folder is fsynced so the
rename survives a power cut. Temp names carry host and pid, so a later sweep can remove the
leftovers of a killed process without touching a live writer's file.
"""
from __future__ import annotations

import errno
import os
import socket
import tempfile
from pathlib import Path
from typing import Callable

from ..errors import SaflexError

TEMP_SUFFIX = ".tmp"
NO_SPACE = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


class DiskFull(SaflexError):
    """A write failed for lack of space (or a file-size limit); what was there is intact."""


def host() -> str:
    return socket.gethostname().replace(".", "_")


def _owner_tag() -> str:
    return f"{host()}~{os.getpid()}~"


def writable_folder(folder: Path) -> None:
    """Refuse a results folder that is a file or cannot be written, without creating anything."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise SaflexError(f"--out {folder} is a file, not a folder: give a folder for the results")
    existing = next(p for p in (folder, *folder.absolute().parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise SaflexError(f"--out {folder}: {existing} is not writable by this user; give a folder you can write to")


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some filesystems do not let a folder be opened; the rename still happened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _Guarded:
    """Passes writes through and keeps the OSError that a C++ writer (torch.save) would turn
    into an opaque RuntimeError, so a full disk is still reported as one."""

    def __init__(self, handle):
        self._handle, self.error = handle, None

    def write(self, data):
        try:
            return self._handle.write(data)
        except OSError as error:
            self.error = error
            raise

    def __getattr__(self, name):
        return getattr(self._handle, name)


def atomic_write(path: Path, write: Callable[[object], None], *, binary: bool = False) -> None:
    """Call write(handle) on a temp file beside `path`, then put it in place in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_owner_tag()}", suffix=TEMP_SUFFIX)
    guarded = None
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; results are meant to be read by the group
        with os.fdopen(fd, "wb" if binary else "w") as handle:
            guarded = _Guarded(handle)
            write(guarded)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        error = guarded.error if guarded is not None and guarded.error is not None else error
        if isinstance(error, OSError) and error.errno in NO_SPACE:
            raise DiskFull(f"could not write {path}: {os.strerror(error.errno)}; the previous version of the "
                           f"file is intact: free space (or raise the file-size limit) and rerun to resume") from None
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text))


def append_line(path: Path, line: str) -> None:
    """Append one line in a single write (O_APPEND): readers never see half of it, and concurrent
    writers' lines never interleave (for lines shorter than a pipe buffer, as on every local disk)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (line.rstrip("\n") + "\n").encode())
    except OSError as error:
        if error.errno in NO_SPACE:
            raise DiskFull(f"could not append to {path}: {os.strerror(error.errno)}; free space and rerun") from None
        raise
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def dead_owner(name: str) -> bool:
    """True for a temp file written by a process of this host that no longer exists."""
    parts = name.split("~")
    if len(parts) < 3 or not parts[0].endswith(host()) or not parts[1].isdigit():
        return False
    return not pid_alive(int(parts[1]))


def sweep_temp_files(folder: Path) -> int:
    """Remove temp files left in `folder` (recursively) by killed processes of this host."""
    removed = 0
    for tmp in Path(folder).rglob(f".*{TEMP_SUFFIX}"):
        if dead_owner(tmp.name):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed
