"""Flask app for the timed, randomized rating study."""
