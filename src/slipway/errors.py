"""Errors that end a command with one clear message instead of a traceback."""


class SlipwayError(Exception):
    """A failure the user can fix: bad params, bad data, a refused release. Exit status 1."""


class ParamsError(SlipwayError):
    """``params.yaml`` is missing a key or holds a value of the wrong kind."""


class DataError(SlipwayError):
    """The input data cannot be used as it is."""
