"""The one exception type the CLI turns into a one-line message and exit code 2."""


class StyleStudyError(ValueError):
    """Bad input from the user: the message is one line that says what to do."""


class StudyError(StyleStudyError):
    """A study file is invalid; the message names file, line and key."""
