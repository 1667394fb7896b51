"""Downloads with a timeout, an MD5 check and an atomic move; offline mode names the file to place."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

from ..errors import SaflexError

CHUNK = 1 << 20


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def offline() -> bool:
    return os.environ.get("SAFLEX_OFFLINE", "") not in ("", "0")


def download(urls: list[str], destination: Path, md5: set[str] | None, *, timeout: float = 60.0) -> Path:
    """Fetch the first URL that answers into `destination`; refuse content with the wrong MD5."""
    destination = Path(destination)
    place_hint = f"place the file at {destination} yourself (from {urls[0]})"
    if offline():
        raise SaflexError(f"{destination.name} is missing and SAFLEX_OFFLINE is set: {place_hint}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                shutil.copyfileobj(response, out, CHUNK)
            if md5 and md5sum(Path(tmp)) not in md5:
                raise ValueError("MD5 mismatch")
            os.replace(tmp, destination)
            return destination
        except (OSError, ValueError) as error:
            errors.append(f"{url}: {error}")
        finally:
            Path(tmp).unlink(missing_ok=True)
    raise SaflexError(f"could not download {destination.name} ({'; '.join(errors)}): {place_hint}")
