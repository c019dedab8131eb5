"""Pieces of the HTML reports: every report is one self-contained file, so figures are embedded."""

from __future__ import annotations

import base64
import html
from pathlib import Path


def embed_png(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}"></figure>'
