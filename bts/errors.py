"""The base class of errors that are the user's to fix (a missing or malformed file, a checkpoint of another model,
a bad config value): the entry points print them as one line instead of a traceback (``bts.cli``)."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the input, stated completely by its message (the file or key, and what was expected)."""
