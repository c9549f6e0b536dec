"""Errors that end a command with one clear message instead of a traceback."""

# The exit status of a command that failed with a SlipwayError. Not 1: CI acts on the 1 of a
# verdict (a failed gate or canary, drift found), and an error must never read as one.
ERROR_EXIT = 2


class SlipwayError(Exception):
    """A failure the user can fix: bad params, bad data, a refused release. Exit status 2."""


class ParamsError(SlipwayError):
    """``params.yaml`` is missing a key or holds a value of the wrong kind."""


class DataError(SlipwayError):
    """The input data cannot be used as it is."""
