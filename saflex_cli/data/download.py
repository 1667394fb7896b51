"""Downloads that survive flaky hosts: timeout, retries, a resumable partial file, several
mirrors, an MD5 check and an atomic move. Offline mode names the file to place and where. A
host that cannot be reached at all (no DNS name, no route, connection refused) is not retried:
the command says so at once instead of after minutes of backoff.

The partial file (<name>.part) is kept between attempts and runs, and continued with an HTTP
Range request where the server allows it. A lock file (<name>.lock, created exclusively) keeps
two grid workers from writing the same partial file; a lock whose process is gone is broken.
"""
from __future__ import annotations

import errno
import hashlib
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..errors import SaflexError
from ..store.files import fsync_dir, host, pid_alive

CHUNK = 1 << 20
RETRIES = 3
BACKOFF_S = 2.0


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def offline() -> bool:
    return os.environ.get("SAFLEX_OFFLINE", "") not in ("", "0")


def _append_from(url: str, part: Path, timeout: float) -> None:
    """Continue `part` from its current size (restart it if the server ignores the Range)."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # nothing left to send: the partial file is whole
            return
        raise
    resumed = response.status == 206
    length = response.headers.get("Content-Length")
    expected = (have if resumed else 0) + int(length) if length is not None else None
    with response, open(part, "ab" if resumed else "wb") as out:
        for block in iter(lambda: response.read(CHUNK), b""):
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    if expected is not None and part.stat().st_size < expected:  # kept, and continued by the retry
        raise ConnectionError(f"connection cut at {part.stat().st_size} of {expected} bytes")


class _Lock:
    def __init__(self, path: Path, wait_s: float):
        self.path, self.wait_s = path, wait_s

    def __enter__(self):
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                os.write(fd, f"{host()} {os.getpid()}".encode())
                os.close(fd)
                return self
            except FileExistsError:
                try:
                    owner_host, pid = self.path.read_text().split()
                    if owner_host == host() and not pid_alive(int(pid)):
                        self.path.unlink(missing_ok=True)
                        continue
                except (OSError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    raise SaflexError(f"{self.path} is held by another download for too long; if none is "
                                      f"running, delete it and retry") from None
                time.sleep(1.0)

    def __exit__(self, *exc):
        self.path.unlink(missing_ok=True)


class _Unreachable(Exception):
    """The host has no address, no route, or refuses the connection: no retry can change that."""


def unreachable_reason(error: OSError) -> str | None:
    """Why a host cannot be reached at all, or None for what a retry may fix (timeouts, cut connections)."""
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(reason, (socket.gaierror, ConnectionRefusedError)) or \
            getattr(reason, "errno", None) in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return reason.strerror or str(reason)
    return None


def _from_url(url: str, part: Path, md5: set[str] | None, timeout: float, retries: int, backoff_s: float) -> str | None:
    """Fill `part` from one URL, retrying with backoff; None once it holds accepted content, else why not."""
    error = None
    for attempt in range(retries):
        if attempt:
            time.sleep(backoff_s * 2 ** (attempt - 1))
        try:
            _append_from(url, part, timeout)
        except urllib.error.HTTPError as http:
            error = f"{url}: {http}"
            if http.code < 500:
                return error  # not there: the next mirror
            continue
        except OSError as failure:  # URLError is one: timeouts, cut connections, unreachable hosts
            reason = unreachable_reason(failure)
            if reason is not None:
                raise _Unreachable(reason) from None
            error = f"{url}: {failure}"
            continue
        if md5 and (checksum := md5sum(part)) not in md5:
            part.unlink()
            return f"{url}: MD5 {checksum} is no known release"  # this host serves other content
        return None
    return error


def download(urls: list[str], destination: Path, md5: set[str] | None, *, timeout: float = 60.0,
             retries: int = RETRIES, backoff_s: float = BACKOFF_S) -> Path:
    """Fetch `destination` from the first URL that yields content with an accepted MD5; a host that
    cannot be reached at all is tried once and named once."""
    destination = Path(destination)
    place_hint = f"place the file at {destination} yourself (from {' or '.join(urls)})"
    if offline():
        raise SaflexError(f"{destination.name} is missing and offline mode is on (--offline / SAFLEX_OFFLINE): "
                          f"{place_hint}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    part = destination.with_name(destination.name + ".part")
    errors, unreachable = [], set()
    with _Lock(destination.with_name(destination.name + ".lock"), wait_s=timeout * retries * len(urls) * 4):
        if destination.exists() and (not md5 or md5sum(destination) in md5):
            return destination  # another worker fetched it while we waited for the lock
        for url in urls:
            server = urllib.parse.urlsplit(url).netloc
            if server in unreachable:
                continue
            try:
                error = _from_url(url, part, md5, timeout, retries, backoff_s)
            except _Unreachable as reason:
                unreachable.add(server)
                errors.append(f"could not reach {server} ({reason})")
                continue
            if error is None:
                os.replace(part, destination)
                fsync_dir(destination.parent)
                return destination
            errors.append(error)
    raise SaflexError(f"could not download {destination.name}: {'; '.join(errors)}; {place_hint}")
