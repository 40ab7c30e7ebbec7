"""The one exception type that reaches users as a one-line message instead of a traceback."""


class IsrnetError(Exception):
    """A problem the user can fix: the message names the file and what to do next."""
