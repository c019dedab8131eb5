"""Reads stored ratings; Table 1 layout, statistics, figures and report."""
