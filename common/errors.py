"""One user-error type and the one way every CLI reports it.

A `UserError` is a problem the user can fix from the message alone (bad config, bad input file, a
service that is not there): the CLI prints `error: <message>` (one line per problem) and exits 1, with
no traceback. Anything else is a bug in the code or a library and keeps its full traceback.

    from common.errors import UserError, reporting_user_errors

    def main():
        with reporting_user_errors():
            run()
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

EXIT_USER_ERROR = 1


class UserError(Exception):
    """A problem the user can fix from the message alone; reported in one line, no traceback.

    Modules subclass it for their own family of errors (DataError, PublishError, ...); a message of
    several lines is several problems, one per line."""


def message(err: BaseException) -> str:
    """`error: ...` lines for the console: each problem on one line, whitespace runs folded."""
    lines = [" ".join(line.split()) for line in str(err).splitlines() if line.strip()]
    return "\n".join(f"error: {line}" for line in lines or [type(err).__name__])


@contextmanager
def reporting_user_errors() -> Iterator[None]:
    """Turn a UserError into `error: ...` on stderr and exit code 1; let every other exception through."""
    try:
        yield
    except UserError as err:
        print(message(err), file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


def interruptible() -> None:
    """Make Ctrl-C (SIGINT) interrupt this process even when it was started with SIGINT ignored.

    A job started in the background by a non-interactive shell (`python -m rl.train ... &` in a script, a
    nohup wrapper) inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler: `kill -INT`
    (and the launcher passing a SIGTERM on as Ctrl-C) would do nothing, and training would run on instead of
    saving and printing the resume command. The CLIs whose interrupt is documented call this first."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
