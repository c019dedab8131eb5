"""``stylestudy fetch-images``: get a study's input images and verify their SHA-256.

Downloads use urllib (one file, one GET: no need for a heavier client).  A file whose hash does
not match is never kept.  When the study lists no hash for an image, the hash of what was
fetched is written into the study file, so later runs verify against it.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import urllib.request
from pathlib import Path

from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.engine.study.files import file_sha256
from stylestudy.engine.study.studyfile import load_study

USER_AGENT = "stylestudy-fetch-images/0.1 (research tool; +https://doi.org/10.5909/JBE.2020.25.6.980)"


def _download(url: str, dest: Path, timeout: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(dest, "wb") as fh:
            shutil.copyfileobj(response, fh)
    except OSError as exc:  # URLError, HTTPError, timeouts are all OSErrors
        raise StyleStudyError(f"cannot download {url} ({exc}); check the network or use --from DIR") from None


def fetch_images(study_path: str | Path, source_dir: str | Path | None = None, timeout: float = 60.0) -> list[str]:
    """Fetch every file image of the study that is missing or unverified; returns report lines."""
    study = load_study(study_path)
    study_file = study.folder / "study.toml"
    report, recorded = [], {}
    for name, src in study.images.items():
        if src.path.startswith("skimage:"):
            report.append(f"{name}: bundled with scikit-image ({src.path})")
            continue
        dest = study.image_path(name)
        if dest.is_file() and src.sha256 and file_sha256(dest) == src.sha256:
            report.append(f"{name}: already present, SHA-256 verified")
            continue
        local = Path(source_dir) / Path(src.path).name if source_dir else None
        if local is None and not src.url:
            raise StyleStudyError(f"image {name} has no url in {study_file}; put it at {dest} or use --from DIR")
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp", delete=False) as tmp:
            tmp_path = Path(tmp.name)
        try:
            if local is not None:
                if not local.is_file():
                    raise StyleStudyError(f"image {name}: {local} not found; check --from")
                shutil.copyfile(local, tmp_path)
            else:
                _download(src.url, tmp_path, timeout)
            digest = file_sha256(tmp_path)
            if src.sha256 and digest != src.sha256:
                raise StyleStudyError(
                    f"image {name}: SHA-256 {digest} does not match the study's {src.sha256}; the source changed - "
                    "check it and update the hash in the study file if it is the right image"
                )
            tmp_path.replace(dest)
        finally:
            tmp_path.unlink(missing_ok=True)
        if not src.sha256:
            recorded[name] = digest
        report.append(f"{name}: {'copied' if local else 'downloaded'} to {dest}, SHA-256 {digest}")
    if recorded and study.image_folder:  # a bundled study is read-only: it lists every hash already
        report.append(f"bundled study {study.name}: copy it out (stylestudy init-study) to record new hashes")
    elif recorded:
        _record_hashes(study_file, recorded)
        report.append(f"recorded {len(recorded)} SHA-256 value(s) in {study_file}")
    return report


def _record_hashes(study_file: Path, hashes: dict[str, str]) -> None:
    """Insert ``sha256 = ...`` under each ``[images.files.NAME]`` header that lacks one."""
    lines = study_file.read_text(encoding="utf-8").splitlines(keepends=True)
    out = []
    for line in lines:
        out.append(line)
        m = re.match(r"^\s*\[images\.files\.([A-Za-z0-9_\-]+)\]", line)
        if m and m.group(1) in hashes:
            out.append(f'sha256 = "{hashes[m.group(1)]}"\n')
    study_file.write_text("".join(out), encoding="utf-8")
