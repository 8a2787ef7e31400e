"""Exceptions for user mistakes: the command-line tools print their message as one line, without a traceback.

Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(ValueError):
    """A mistake the user can fix (an option, a file, missing data); its message names what to change."""


class ConfigError(UserError):
    """A bad, missing or impossible option; the message names the option (e.g. `dataset.heldout_users`)."""


class DataError(UserError):
    """Data that cannot be read or split as configured; the message names the file (and line) or option."""


class MissingDataError(DataError, FileNotFoundError):
    """Raw data that is not where the config says and cannot be downloaded (offline, or no public copy)."""


def find_user_error(error: BaseException) -> UserError | None:
    """The UserError behind `error` (itself, or its cause: Hydra wraps errors raised while instantiating)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, UserError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
