"""Claims: how several workers on one results folder never run the same run twice.

A worker claims a run by creating the folder OUT/claims/<family>/<run name>.claim with mkdir,
which is exclusive on local and network filesystems alike (flock is not, on NFS), and puts an
owner file in it (host, pid, start, heartbeat, a token). A heartbeat thread rewrites the owner
file; a claim is stale when its heartbeat is older than the TTL, or at once when its owner was
a process of this host that no longer exists. A stale claim is taken over by renaming it to a
tombstone named after the stale owner's token: two workers racing for the same stale claim
rename onto the same tombstone, and the second rename fails, so only one wins.
"""
from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from .errors import SaflexError
from .files import atomic_write_text, host, pid_alive

TTL_S = 600.0  # a claim whose heartbeat is this old belongs to a lost worker (clocks via NTP)
HEARTBEAT_S = 30.0
OWNERLESS_GRACE_S = 60.0  # a claim folder without an owner file: its claimer died right after mkdir
OWNER = "owner.json"
_HELD: set["Claim"] = set()  # this process's claims, released at once if the job is preempted


def claims_folder(out: Path) -> Path:
    return Path(out) / "claims"


class Claim:
    def __init__(self, out: Path, family: str, name: str, *, ttl: float = TTL_S, heartbeat: float = HEARTBEAT_S):
        self.folder = claims_folder(out) / family
        self.path = self.folder / f"{name}.claim"
        self.ttl, self.heartbeat = ttl, heartbeat
        self.token = uuid.uuid4().hex
        self.started = datetime.now(timezone.utc).isoformat()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _owner(self) -> dict | None:
        try:
            return json.loads((self.path / OWNER).read_text())
        except (OSError, ValueError):
            return None

    def _write_owner(self) -> None:
        atomic_write_text(self.path / OWNER, json.dumps({
            "host": host(), "pid": os.getpid(), "started": self.started, "heartbeat": time.time(),
            "token": self.token}))

    def _stale_token(self) -> str | None:
        """The token naming the tombstone of a stale claim; None while the claim is alive."""
        owner = self._owner()
        if owner is None:
            try:
                age = time.time() - self.path.stat().st_mtime
            except FileNotFoundError:
                return "gone"
            return f"ownerless-{int(self.path.stat().st_mtime)}" if age > OWNERLESS_GRACE_S else None
        dead = owner.get("host") == host() and not pid_alive(int(owner.get("pid", -1)))
        if dead or time.time() - float(owner.get("heartbeat", 0)) > self.ttl:
            return str(owner.get("token"))
        return None

    def acquire(self) -> bool:
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(self.path)
        except FileExistsError:
            stale = self._stale_token()
            if stale is None:
                return False
            if stale != "gone":
                try:
                    os.rename(self.path, self.folder / f".{self.path.name}.stale-{stale}")
                except OSError:  # another worker took it over first
                    return False
            try:
                os.mkdir(self.path)
            except FileExistsError:
                return False
        self._write_owner()
        _HELD.add(self)
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat {self.path.name}")
        self._thread.start()
        return True

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            if not self.held():
                return
            try:
                self._write_owner()
            except (OSError, SaflexError):
                pass  # a missed beat (the disk may be full); the TTL allows many

    def held(self) -> bool:
        """Still ours: checked before a record is written, in case a slow worker was taken over."""
        owner = self._owner()
        return owner is not None and owner.get("token") == self.token

    def release(self) -> None:
        _HELD.discard(self)
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.held():
            (self.path / OWNER).unlink(missing_ok=True)
            try:
                self.path.rmdir()
            except OSError:
                pass


def release_held() -> None:
    for claim in list(_HELD):
        claim.release()


def sweep_claims(out: Path) -> None:
    """Once every run is recorded: remove tombstones, claims of lost workers (killed between
    writing a record and releasing its claim) and empty folders."""
    folder = claims_folder(out)
    if not folder.is_dir():
        return
    for tombstone in folder.glob("*/.*.stale-*"):
        shutil.rmtree(tombstone, ignore_errors=True)
    for path in folder.glob("*/*.claim"):
        claim = Claim(out, path.parent.name, path.name[: -len(".claim")])
        if claim._stale_token() not in (None, "gone"):
            shutil.rmtree(path, ignore_errors=True)
    for family in folder.iterdir():
        if family.is_dir() and not any(family.iterdir()):
            family.rmdir()
    if not any(folder.iterdir()):
        folder.rmdir()
