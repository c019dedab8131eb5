"""A stimulus PNG in other bytes with the same pixels, for hidden repeats.

A hidden repeat (``[protocol] repeats``) shows a condition a second time; served as the same
file, its bytes would be those of its first showing, and a participant's script that hashes
every image would find it.  ``reencoded`` writes the pixels again at another zlib level (the
stored files are written at Pillow's default, 6), so the bytes differ and the pixels do not.
"""

from __future__ import annotations

import io

LEVELS = (9, 1, 0)  # tried in turn until the bytes differ (a tiny image may compress alike at two levels)


def reencoded(png: bytes) -> bytes:
    """``png``'s pixels as a PNG whose bytes differ from ``png``'s."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        image.load()
        for level in LEVELS:
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", compress_level=level)
            if buffer.getvalue() != png:
                return buffer.getvalue()
    raise ValueError("could not re-encode the image into other bytes")
