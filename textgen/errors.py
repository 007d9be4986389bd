"""One base class for errors caused by the user's input (bad flags, data, files).

The CLI prints them as one line and exits 2; the app shows them as a message. Anything else is a
bug and keeps its stack trace.
"""


class TextgenError(Exception):
    """An error whose message tells the user what to change."""


class DataError(TextgenError):
    """A dataset is missing, not prepared, corrupted or unknown."""
