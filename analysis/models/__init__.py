"""The linear mixed model of ratings."""
