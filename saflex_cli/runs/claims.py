"""Claims: how several workers on one results folder never run the same run twice.

A worker claims a run by creating the folder OUT/claims/<family>/<run name>.claim with mkdir,
which is exclusive on local and network filesystems alike (flock is not, on NFS), and puts an
owner file in it (host, pid, start, heartbeat, a token). A heartbeat thread rewrites the owner
file; a claim is stale when its heartbeat is older than the TTL, or at once when its owner was
a process of this host that no longer exists. A stale claim is taken over by renaming it to a
tombstone named after the stale owner's token: two workers racing for the same stale claim
rename onto the same tombstone, and the second rename fails, so only one wins. A worker stopped
by SIGTERM or SIGINT releases its claims before it ends, and a release removes the folders it
leaves empty, so a refused or stopped command leaves no trace under claims/.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from ..errors import SaflexError
from ..store.files import atomic_write_text, host, pid_alive

TTL_S = 600.0  # a claim whose heartbeat is this old belongs to a lost worker (clocks via NTP)
HEARTBEAT_S = 30.0
OWNERLESS_GRACE_S = 60.0  # a claim folder without an owner file: its claimer died right after mkdir
OWNER = "owner.json"
_HELD: set["Claim"] = set()  # this process's claims, released at once if the job is preempted or stopped
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_PREVIOUS: dict[int, object] = {}  # the handlers _catch_signals replaced, put back by _restore_signals


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

    def _make(self) -> bool:
        """mkdir of the claim: True if made here, False if it exists. A release elsewhere may
        remove the then empty family folder between the two mkdirs: it is made again."""
        while True:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                os.mkdir(self.path)
                return True
            except FileExistsError:
                return False
            except FileNotFoundError:
                continue

    def _take(self) -> bool:
        """Make the claim folder, or take it over from a stale owner."""
        if self._make():
            return True
        stale = self._stale_token()
        if stale is None:
            return False
        if stale != "gone":
            try:
                os.rename(self.path, self.folder / f".{self.path.name}.stale-{stale}")
            except OSError:  # another worker took it over first
                return False
        return self._make()

    def acquire(self) -> bool:
        _hold(self)  # stop signals are caught before the claim exists, so none can strand it
        if not self._take():
            _let_go(self)
            return False
        self._write_owner()
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
        """Remove the claim, and the family and claims folders it leaves empty. Safe to re-enter
        from a signal handler: the claim stays in _HELD until it is gone."""
        self._stop.set()
        # A stop signal can arrive while acquire() is still starting the heartbeat (its handler then
        # runs inside Thread.start): a thread not yet started has nothing to join, and sees the stop.
        if self._thread is not None and self._thread.ident is not None:
            self._thread.join()
        if self.held():
            (self.path / OWNER).unlink(missing_ok=True)
            _remove_empty(self.path, self.folder, self.folder.parent)
        _let_go(self)


def _remove_empty(*folders: Path) -> None:
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (another claim, a tombstone), or gone already
            return


def release_held() -> None:
    for claim in list(_HELD):
        claim.release()


def _hold(claim: Claim) -> None:
    if not _HELD:
        _catch_signals()
    _HELD.add(claim)


def _let_go(claim: Claim) -> None:
    _HELD.discard(claim)
    if not _HELD:
        _restore_signals()


def _catch_signals() -> None:
    """While claims are held, SIGTERM and SIGINT release them first, then act as they did: a
    stopped worker leaves no claim for others to wait out. Only the default handlers are wrapped
    (a handler someone installed, e.g. submitit's, stays theirs), and only the main thread may."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in STOP_SIGNALS:
        previous = signal.getsignal(signum)
        if previous in (signal.SIG_DFL, signal.default_int_handler):
            _PREVIOUS[signum] = previous
            signal.signal(signum, _release_then_stop)


def _restore_signals() -> None:
    if threading.current_thread() is threading.main_thread():
        for signum, previous in _PREVIOUS.items():
            signal.signal(signum, previous)
        _PREVIOUS.clear()


def _release_then_stop(signum, frame) -> None:
    previous = _PREVIOUS.get(signum, signal.SIG_DFL)
    release_held()  # restores the previous handlers once the last claim is gone
    if previous is signal.default_int_handler:
        raise KeyboardInterrupt
    os.kill(os.getpid(), signum)  # the default action again: the process ends as the signal says


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
