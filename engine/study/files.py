"""File helpers every stage shares: atomic writes and content hashes (pure Python, no torch).

The server and the analysis install without torch, so what they share with the engine lives
here rather than in the engine's image or weight modules.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

DIRECTORY_MODE = 0o755  # run folders: a server under another account reads the stimuli; only the owner writes


def make_dirs(path: str | os.PathLike, mode: int = DIRECTORY_MODE) -> None:
    """``path`` and its missing parents, each with ``mode`` whatever the umask (``mkdir`` alone
    would give 0777 under umask 000)."""
    missing = []
    folder = Path(path)
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode)
        except FileExistsError:  # made at the same moment by another process: its mode stays
            continue
        os.chmod(folder, mode)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, mode: int | None = None) -> None:
    """Write to a temp file beside ``path`` then rename, so a crash never leaves a partial file.
    The file is private (0600) unless ``mode`` says otherwise (stimuli and manifests: 0644)."""
    path = Path(path)
    make_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
