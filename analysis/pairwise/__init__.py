"""Pairwise preferences: scales, ties, separation, agreement, headline tests, adaptive simulation."""
