"""Command-line values checked where they enter (pure Python): argparse ``type=`` callables
that reject a value with the allowed range, and a parser whose errors are one line.

Engine-level checks that need more than the value (an image too small for the requested layers,
weights that do not match the layers) live with the engine; these catch what the value alone
shows, before any work starts.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that names the option and points at --help."""

    def error(self, message: str):  # noqa: ANN201 - argparse's signature
        # a renamed option's group (add_renamed_option) holds one visible option: say it plainly
        message = re.sub(r"^one of the arguments (\S+) is required$", r"the following arguments are required: \1",
                         message)
        print(f"{self.prog}: error: {message} (see: {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer in [low, high]."""
    allowed = f"an integer from {low} to {high}" if high is not None else f"an integer ≥ {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def number(positive: bool = False, low: float | None = None) -> Callable[[str], float]:
    """A finite number; ``positive``: > 0; ``low``: ≥ low."""
    allowed = "a finite number > 0" if positive else (f"a finite number ≥ {low:g}" if low is not None
                                                      else "a finite number")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}") from None
        if not math.isfinite(value) or (positive and value <= 0) or (low is not None and value < low):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


def weights(text: str) -> list[float]:
    """Comma-separated layer weights: finite, ≥ 0, not all zero."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated numbers like 0.2,0.2,0.2,0.2,0.2; got {text!r}") \
            from None
    if not values or any(not math.isfinite(v) or v < 0 for v in values) or not any(values):
        raise argparse.ArgumentTypeError(f"must be finite numbers ≥ 0, not all zero; got {text!r}")
    return values


def integers(low: int) -> Callable[[str], list[int]]:
    """Comma-separated integers, each ≥ low."""
    one = integer(low)

    def parse(text: str) -> list[int]:
        values = [one(v) for v in text.split(",") if v.strip()]
        if not values:
            raise argparse.ArgumentTypeError(f"must be comma-separated integers ≥ {low}, got {text!r}")
        return values

    parse.__name__ = "integers"
    return parse


PORT = integer(1, 65535)


def batch_size(text: str) -> str:
    """'auto' or a positive integer (kept as text: generation reads both)."""
    if text != "auto" and not (text.isdigit() and int(text) > 0):
        raise argparse.ArgumentTypeError(f"must be 'auto' or an integer ≥ 1, got {text!r}")
    return text


def decimals(text: str) -> tuple[int, int]:
    """Two integers 0..6: decimals of the mean and of the standard deviation."""
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) <= 6 for p in parts):
        raise argparse.ArgumentTypeError(f"must be two integers from 0 to 6 like 1,2; got {text!r}")
    return int(parts[0]), int(parts[1])


class DeprecatedAlias(argparse.Action):
    """An old spelling of an option, kept so that scripts keep working: it stores into the new
    option's value and says, in one line on stderr, what to write instead."""

    def __init__(self, option_strings: list[str], dest: str, new: str, **kwargs) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ANN001 - argparse's
        print(f"{parser.prog}: {option_string} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_renamed_option(parser: argparse.ArgumentParser, new: str, old: tuple[str, ...], *, required: bool = False,
                       **kwargs) -> None:
    """``new`` with its old spellings ``old`` as deprecated aliases (hidden from --help; listed
    in the generated CLI reference). ``required``: one of them must be given."""
    dest = new.lstrip("-").replace("-", "_")
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument(new, dest=dest, **kwargs)
    group.add_argument(*old, dest=dest, action=DeprecatedAlias, new=new, help=argparse.SUPPRESS,
                       metavar=kwargs.get("metavar"), type=kwargs.get("type"))


def add_out_option(parser: argparse.ArgumentParser, help: str, *, required: bool = False, default=None,  # noqa: A002
                   metavar: str = "PATH") -> None:
    """The one output flag, ``--out``; ``-o``/``--output`` (the spelling of 0.2) still work."""
    add_renamed_option(parser, "--out", ("-o", "--output"), required=required, default=default, metavar=metavar,
                       help=help)
