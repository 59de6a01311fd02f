"""The one exception type for bad input.

Every stage raises :class:`InputError` for problems a user can fix (a missing file, a
malformed row, an unknown item, a config key that does not exist).  The CLI runner
(:func:`minionerec.cli.run_stage`) turns it into one clear line on stderr and exit code 2,
instead of a traceback from deep inside a library.
"""

from __future__ import annotations


class InputError(Exception):
    """A user-fixable problem with an input file, a config or an argument.

    The message should name the file (and row/line where there is one) and say how to fix it.
    """


def where(path: object, line: int | None = None) -> str:
    """Format ``path`` (and a 1-based ``line``) for error messages: ``file.csv:12``."""
    return f"{path}:{line}" if line is not None else f"{path}"
