"""Rendering: figures embedded in self-contained pages, the ranking figure."""
