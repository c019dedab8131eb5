"""Objective metrics of a run's stimuli against their references (``stylestudy metrics``)."""
