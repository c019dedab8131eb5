"""Do objective metrics agree with the participants? (``analyze ... --metrics FILE``, ITU-T P.1401)."""
