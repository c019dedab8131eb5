"""Stimulus production: ``generate`` (plan -> execute locally or on Ray -> write), the paper's
figures, the claims measured on stimuli, the benchmark and ``inspect``."""
