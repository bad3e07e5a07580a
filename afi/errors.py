"""The errors AFI raises on purpose. The CLI turns each into one line and an exit code."""


class AfiError(Exception):
    """A failure the user can act on; the message names the problem and the fix. Exit code 1."""

    exit_code = 1


class UsageError(AfiError):
    """Bad input: a flag, a value, a file the user named. Exit code 2."""

    exit_code = 2


class NotFoundError(AfiError):
    """A named thing (run, dataset, variant, file) does not exist. Exit code 1."""
