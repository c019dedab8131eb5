"""Objective metrics of a run's stimuli against their references (``stylestudy metrics``).

This package file stays torch-free: the analysis reads ``metrics.csv`` with ``ID_COLUMNS``."""

ID_COLUMNS = ["image_id", "condition_id", "method", "item"]  # then one column per metric
