"""What ``serve`` checks in a run directory before it answers anyone.

A server that starts on a bad run directory fails later, on participants: a 500 on every page
(``image_seconds = "five"``), a truncated schedule (``complete: false``), a secret served as an
image (a stimulus ``path`` of ``admin_token``), or altered stimuli no one notices.  So every
problem found here is one line (``StyleStudyError``: the CLI exits 2) naming the file and what
to do, and nothing is served:

* the manifest's ``protocol`` is checked as strictly as a study file's ``[protocol]``;
* a run whose generation did not finish (``complete: false``) is refused unless allowed;
* every stimulus is a PNG file inside the run directory (links followed), not one of the
  server's own files, whose bytes match the SHA-256 the manifest recorded;
* every reference image the protocol shows (``references``) likewise: an import's
  ``style_image``/``content_image`` is a PNG inside the run's ``references/`` folder (links
  followed, no dot file) whose SHA-256 is the one recorded (``<kind>_image_sha256``; a manifest
  made before that field: the file name, the first 20 hex digits of its SHA-256); a generated
  run's is an image inside the run's ``inputs/`` or the study folder it names.

The run's private files are private: the SQLite ratings database is created 0600 (SQLite gives
its WAL and shared-memory files the same mode) and the secrets are 0600 (``evalserver.keys``);
stimuli and the manifest are written 0644 by generate and import, so a server under another
account can read them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.engine.study.manifest import StudyManifest
from stylestudy.engine.study.studyfile import protocol_from_record
from stylestudy.evalserver.viewing import reference_file

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
SERVER_FILES = ("manifest.json", "admin_token", "ratings.sqlite")  # and every dot file (.session_key, .url_key)


def checked_manifest(run_dir: str | Path, allow_incomplete: bool = False) -> StudyManifest:
    """The run's manifest, after every check above; StyleStudyError (one line) otherwise."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise StyleStudyError(f"{run_dir} is not a run directory; give the folder 'stylestudy generate' or "
                              "'stylestudy import' wrote")
    manifest = StudyManifest.load(run_dir)
    protocol_from_record(manifest.study.get("protocol", {}), manifest.source, manifest.methods)
    if not manifest.complete and not allow_incomplete:
        raise StyleStudyError(f"{manifest.source} says generation did not finish (complete: false), so some "
                              "trials would be missing; finish it (re-run stylestudy generate) or serve it anyway "
                              "with --allow-incomplete")
    for conditions in manifest.images.values():
        _check_stimulus(manifest, conditions[0].path, conditions[0].sha256)
    checked: set[str] = set()
    for condition in manifest.conditions:
        for kind in manifest.protocol.references:
            relative = reference_file(manifest, condition, kind)
            if relative and relative not in checked:
                _check_reference(manifest, condition, kind, relative)
                checked.add(relative)
    return manifest


def _check_reference(manifest: StudyManifest, condition, kind: str, relative: str) -> None:  # noqa: ANN001
    """A reference image is checked as strictly as a stimulus (see the module docstring)."""
    where = f"{manifest.source}: {kind} reference {relative}"
    fix = "re-run stylestudy import" if manifest.imported else "re-run stylestudy generate"
    if manifest.imported:
        roots = [(manifest.run_dir / "references").resolve()]
    else:
        roots = [(manifest.run_dir / "inputs").resolve(), Path(manifest.study.get("folder", "") or "/nonexistent").resolve()]
    path = (manifest.run_dir / relative).resolve()
    root = next((r for r in roots if path.is_relative_to(r) and path != r), None)
    if root is None:
        raise StyleStudyError(f"{where} is not inside {' or '.join(map(str, roots))}; references must be images "
                              f"there ({fix})")
    if any(part.startswith(".") for part in path.relative_to(root).parts):
        raise StyleStudyError(f"{where} is a hidden (dot) file; a reference must be an image ({fix})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StyleStudyError(f"{where} cannot be read ({exc.strerror}); {fix}") from None
    if not data.startswith(PNG_SIGNATURE) and not (not manifest.imported and data.startswith(JPEG_SIGNATURE)):
        raise StyleStudyError(f"{where} is not a PNG image; {fix}")
    if manifest.imported:
        digest = hashlib.sha256(data).hexdigest()
        recorded = condition.get(f"{kind}_image_sha256")
        if recorded is None and not (path.suffix == ".png" and len(path.stem) == 20 and digest.startswith(path.stem)) \
                or recorded is not None and digest != recorded:
            raise StyleStudyError(f"{where} has changed since it was made (its SHA-256 is not the one recorded); "
                                  f"restore it or {fix}")


def _check_stimulus(manifest: StudyManifest, relative: str, sha256: str) -> None:
    root = manifest.run_dir.resolve()
    path = (root / relative).resolve()
    where = f"{manifest.source}: stimulus {relative}"
    if not path.is_relative_to(root):
        raise StyleStudyError(f"{where} leads outside the run directory {root}; stimuli must be files inside it "
                              "(re-run stylestudy generate or import)")
    inner = path.relative_to(root)
    if any(part.startswith(".") for part in inner.parts) or inner.parts[0].startswith(SERVER_FILES):
        raise StyleStudyError(f"{where} is one of the server's own files; a stimulus must be an image "
                              "(re-run stylestudy generate or import)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StyleStudyError(f"{where} cannot be read ({exc.strerror}); re-run stylestudy generate or import") \
            from None
    if not data.startswith(PNG_SIGNATURE):
        raise StyleStudyError(f"{where} is not a PNG image; re-run stylestudy generate or import")
    if hashlib.sha256(data).hexdigest() != sha256:
        raise StyleStudyError(f"{where} has changed since it was made (its SHA-256 is not the one recorded); "
                              "restore it or re-run stylestudy generate or import")


def private_sqlite_file(url: str) -> None:
    """Create the SQLite database file of ``url`` (if it is one and missing) readable only by
    its owner; an empty file is an empty SQLite database."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == prefix or url.startswith(prefix + ":memory:"):
        return
    path = Path(url[len(prefix):].split("?", 1)[0])
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise StyleStudyError(f"cannot create the ratings database {path} ({exc.strerror}); make its folder "
                              "writable or give --db") from None
