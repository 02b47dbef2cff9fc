"""The one table that maps errors to messages and exit codes, and the wrapper every command runs in."""

from __future__ import annotations

import functools
import os
import signal
import sys
from typing import Any, Callable

import typer

from vdeblur.errors import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, OutOfMemoryError, VdeblurError

STATE = {"debug": False}


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def error_exit(exc: BaseException) -> tuple[str, int]:
    """The error table: exception -> (one line for stderr, exit code)."""
    if isinstance(exc, VdeblurError):
        return f"vdeblur: {exc.label}: {exc}", exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return "vdeblur: interrupted; no output was left behind", EXIT_INTERRUPTED
    if isinstance(exc, MemoryError):
        return f"vdeblur: {OutOfMemoryError.label}: {exc or 'an allocation failed'}", OutOfMemoryError.exit_code
    return (
        f"vdeblur: internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
        1,
    )


def handles_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command body; turn every failure into one stderr line and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        prev = signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except BrokenPipeError:  # stdout closed by the reader (`| head`): stop quietly, as cat does
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(EXIT_BROKEN_PIPE) from None
        except BaseException as exc:  # noqa: BLE001 - the whole point
            if STATE["debug"] and not isinstance(exc, KeyboardInterrupt):
                raise
            line, code = error_exit(exc)
            print(line, file=sys.stderr)
            raise typer.Exit(code) from None
        finally:
            signal.signal(signal.SIGTERM, prev)

    return wrapper
