"""What the analysis reads: the ratings, the participant flow and the viewing conditions."""
