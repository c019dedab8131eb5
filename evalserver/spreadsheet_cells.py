"""CSV cells that a spreadsheet cannot run: formula injection neutralised, reversibly.

A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula
to Excel, LibreOffice and Google Sheets (OWASP, "CSV Injection"); an external id like
``=cmd|'/C calc'!A0`` would run on the researcher's machine.  Such a cell is written with a
leading apostrophe, which spreadsheets show as text and do not display.  A cell that already
starts with an apostrophe gets one more, so reading back (``restore``: drop one leading
apostrophe) gives every original value exactly.  Numeric cells (a negative number is not a
formula) are written as they are.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"


def neutralise(text: str) -> str:
    """The text as a cell no spreadsheet evaluates."""
    return ESCAPE + text if text.startswith(FORMULA_STARTS + (ESCAPE,)) else text


def restore(cell):
    """The original value of a cell ``neutralise`` wrote (anything not a string passes)."""
    return cell[1:] if isinstance(cell, str) and cell.startswith(ESCAPE) else cell
