"""Ratings on a scale: paired tests, MOS per method, rater checks, multiple comparisons, rank groups."""
