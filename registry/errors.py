"""The errors the registry raises on purpose; the CLI turns each into one line and exit code 1."""


class RegistryError(Exception):
    """A registry failure the user can act on; the message names the problem and the fix."""

    exit_code = 1


class NotFound(RegistryError):
    """A named row (run, dataset, variant, experiment, checkpoint) does not exist."""


class RunNotFound(NotFound):
    """No run has this id or name."""


class DuplicateName(RegistryError):
    """A unique name is already taken by a different row."""


class InvalidTransition(RegistryError):
    """A run cannot move from its current state to the requested one."""


class SchemaOutOfDate(RegistryError):
    """The database schema is not at the revision this code expects."""


class DatabaseUnavailable(RegistryError):
    """The database URL is malformed, or the server cannot be reached or refuses us."""


class ReadOnlyViolation(RegistryError):
    """A read-only query tried to change something, or was not a single query."""
