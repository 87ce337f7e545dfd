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


class BadRequest(InputError):
    """A request the API cannot read at all (malformed JSON, an invalid call): HTTP 400."""


class ImportRefused(InputError):
    """An import was refused as a whole; nothing was written."""


class Unauthorized(StrataError):
    """No valid credentials: sign in, or send the right key."""

    exit_code = 4


class Forbidden(StrataError, PermissionError):
    """Signed in, but the role does not allow this."""

    exit_code = 4


class Conflict(StrataError):
    """The request clashes with what is stored (a name taken, a job already running)."""


class TooManyRequests(StrataError):
    """Slow down: too many requests or failed sign-ins; ``retry_after`` says how long."""

    def __init__(self, message: str, *, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


class PlanLimit(StrataError):
    """The workspace's plan does not allow this (a limit reached or a feature not included).

    Its message names the limit, the numbers and the plan that allows it; nothing was
    stored. HTTP 402 (see :mod:`strata.plans`).
    """

    exit_code = 5


class PayloadTooLarge(InputError):
    """A request body over its documented limit."""
