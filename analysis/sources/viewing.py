"""Viewing conditions in the report: at which scale the images were really shown.

From the export's viewing columns (``shown_width``, ``shown_height``, ``device_pixel_ratio``,
``image_width``, ``image_height``, ``viewport``): the share of shown images laid out at one image
pixel per CSS pixel and at one per device pixel (within half a pixel), the device pixel ratios
and the viewports; the study's display mode from the export's ``display`` column (exports made
before it existed give none).  Ratings exported before the size columns existed give no viewing line.
"""

from __future__ import annotations

import pandas as pd

from stylestudy.analysis.render.document import Section
from stylestudy.evalserver.export import VIEWING_SIZE_COLUMNS

VIEWING_COLUMNS = tuple(VIEWING_SIZE_COLUMNS)  # the sizes it computes with; one home: evalserver.export
TOLERANCE_PX = 0.5


def viewing_summary(rows: pd.DataFrame) -> dict | None:
    """Counts over the rows with a recorded size (practice included: it is what participants saw)."""
    if any(c not in rows.columns for c in VIEWING_COLUMNS):
        return None
    frame = rows[list(VIEWING_COLUMNS) + (["viewport"] if "viewport" in rows.columns else [])].copy()
    for c in VIEWING_COLUMNS:
        frame[c] = pd.to_numeric(frame[c], errors="coerce")
    frame = frame.dropna(subset=list(VIEWING_COLUMNS))
    if frame.empty:
        return None
    css = ((frame["shown_width"] - frame["image_width"]).abs() <= TOLERANCE_PX) & \
          ((frame["shown_height"] - frame["image_height"]).abs() <= TOLERANCE_PX)
    dpr = frame["device_pixel_ratio"]
    device = ((frame["shown_width"] * dpr - frame["image_width"]).abs() <= TOLERANCE_PX) & \
             ((frame["shown_height"] * dpr - frame["image_height"]).abs() <= TOLERANCE_PX)
    viewports = frame["viewport"].dropna().astype(str) if "viewport" in frame.columns else pd.Series(dtype=str)
    return {
        "images": len(frame), "at_css_pixels": int(css.sum()), "at_device_pixels": int(device.sum()),
        "device_pixel_ratios": sorted({float(v) for v in dpr}),
        "viewports": int(viewports[viewports != ""].nunique()),
    }


def display_modes(rows: pd.DataFrame) -> list[str]:
    """The display mode(s) the export names (one per study; [] for an export without the column)."""
    if "display" not in rows.columns:
        return []
    return sorted({str(v) for v in rows["display"].dropna() if str(v).strip()})


def viewing_line(rows: pd.DataFrame) -> str:
    """One sentence for the report, or "" when the export has no viewing columns."""
    s = viewing_summary(rows)
    if s is None:
        return ""
    n = s["images"]
    ratios = ", ".join(f"{r:g}" for r in s["device_pixel_ratios"])
    modes = display_modes(rows)
    mode = f"display mode {', '.join(modes)}; " if modes else ""
    return (f"Viewing: {mode}of {n} images shown, {100 * s['at_css_pixels'] / n:.0f}% at 1:1 (one image pixel per CSS "
            f"pixel) and {100 * s['at_device_pixels'] / n:.0f}% at one image pixel per device pixel; device pixel "
            f"ratio(s) {ratios}; {s['viewports']} distinct window size(s).")


def section(rows: pd.DataFrame) -> Section | None:
    """The viewing line as a report section; None for an export without viewing columns."""
    line = viewing_line(rows)
    return Section("Viewing conditions", [line]) if line else None
