"""Exceptions for user mistakes: the command-line tools print their message as one line, without a traceback.

Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys


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


def exit_status(error: BaseException) -> int:
    """For a tool's `except`: print a user's mistake behind `error` as one `error:` line on stderr and return the
    exit status 2; re-raise anything else (a bug keeps its traceback)."""
    mistake = find_user_error(error)
    if mistake is None:
        raise error
    print(f"error: {mistake}", file=sys.stderr)
    return 2


def composition_error(error: BaseException) -> ConfigError | None:
    """Hydra's error composing the config from the command line, as one ConfigError line; None for any other.

    `model=multvae` (no such preset) names the options to choose from; an override Hydra's parser rejects
    (`dataset.reader.sep=,`) says how to quote it; the rest is Hydra's message on one line, without the
    config search path it appends.
    """
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException

    if isinstance(error, MissingConfigException) and error.options and "/" in (error.missing_cfg_file or ""):
        group, name = error.missing_cfg_file.rsplit("/", 1)
        return ConfigError(f"{group}={name}: no such option; choose one of {', '.join(error.options)}")
    if isinstance(error, OverrideParseException):
        key, _, value = error.override.partition("=")
        return ConfigError(f"{error.override}: Hydra cannot parse this override; quote a value holding , ; spaces "
                           f"or brackets so that Hydra receives the quotes: \"{key}='{value}'\"")
    if isinstance(error, ConfigCompositionException):
        key = getattr(error.__cause__, "full_key", None)  # OmegaConf's "not in struct": a misspelt option
        if str(error).startswith("Could not override") and key:
            return ConfigError(f"{key}: no such option; check its spelling (`python train.py --cfg job` prints "
                               "every option)")
        text = str(error).split("Config search path")[0]
        return ConfigError(" ".join(line.strip() for line in text.splitlines() if line.strip()))
    return None
