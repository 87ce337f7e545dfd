"""One error hierarchy for everything Strata tells a user.

Every error says what was wrong and what to do about it, in one line, so the CLI
and the API can show it as it is instead of a traceback.
"""


class StrataError(Exception):
    """Root of every error Strata raises on purpose."""

    #: Exit code of the ``strata`` command for this kind of error.
    exit_code = 1


class ConfigError(StrataError):
    """A setting or URL is wrong."""

    exit_code = 2


class InputError(StrataError, ValueError):
    """A file, mapping or argument given by the user cannot be used."""

    exit_code = 2


class NotFound(StrataError, LookupError):
    """Something named by the user does not exist."""

    exit_code = 3


class ImportRefused(InputError):
    """An import was refused as a whole; nothing was written."""
