"""The one exception type for mistakes a user can fix.

A user's mistake (bad params key, missing file, vocab too large) must stop the stage with one
clear line naming the key/file and what to do -- never a traceback. Bugs still raise normally.
The stage runner that turns it into that line is lib/core/stage.py.
"""
from __future__ import annotations


class UserError(Exception):
    """A problem in the user's inputs or configuration; the message says what to do."""
