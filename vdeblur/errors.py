"""Error kinds. Each kind has one exit code; the CLI maps them in one table (cli/app.py).

| code | kind            | meaning                                                            |
|------|-----------------|--------------------------------------------------------------------|
| 0    | -               | success                                                            |
| 1    | InternalError   | a bug in vdeblur (please report it, run with --debug)              |
| 2    | UsageError      | bad options: unknown method, bad --psf, conflicting flags           |
| 3    | InputError      | input missing, not a video, no video stream, empty, bad reference  |
| 4    | OutputError     | output exists (no --force), equals input, cannot be written        |
| 5    | WeightsError    | weights missing, corrupt, or sha256 mismatch                       |
| 6    | DamagedInputError | input was damaged: output written from the frames that decoded, the lost count said |
| 7    | -               | several inputs with --keep-going: one or more failed (each file's result says why) |
| 8    | ClusterError    | the Ray cluster failed: a worker or node died, or the cluster was lost |
| 9    | OutOfMemoryError | a frame did not fit in memory even in the smallest tiles           |
| 130  | -               | interrupted (Ctrl-C / SIGTERM); no partial output (segments kept for --resume) |
| 141  | -               | stdout closed by its reader (e.g. `| head`); nothing printed       |
"""

from __future__ import annotations


class VdeblurError(Exception):
    """Base of every error vdeblur reports to a user as one line."""

    exit_code = 1
    label = "error"


class InternalError(VdeblurError):
    exit_code = 1
    label = "internal error"


class UsageError(VdeblurError):
    exit_code = 2
    label = "usage error"


class InputError(VdeblurError):
    exit_code = 3
    label = "input error"


class OutputError(VdeblurError):
    exit_code = 4
    label = "output error"


class WeightsError(VdeblurError):
    exit_code = 5
    label = "weights error"


class DamagedInputError(VdeblurError):
    """Raised after a run finished on a damaged input: the output holds every frame that decoded."""

    exit_code = 6
    label = "damaged input"


class ClusterError(VdeblurError):
    """A Ray worker or node died, or the cluster went away (finished segments are kept)."""

    exit_code = 8
    label = "cluster error"


class OutOfMemoryError(VdeblurError):
    """A frame did not fit in memory even after falling back to the smallest tiles (or the
    process ran out of memory elsewhere): not a bug, a machine too small for the job."""

    exit_code = 9
    label = "out of memory"


EXIT_SOME_FAILED = 7  # several inputs, --keep-going: at least one failed
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: stdout was closed by its reader

#: (code, meaning) for the man page and README; a test keeps README's table in step with it.
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (0, "success"),
    (InternalError.exit_code, "internal error (a bug: --debug shows the traceback)"),
    (UsageError.exit_code, "usage: bad option, unknown method, bad --psf"),
    (InputError.exit_code, "input: missing, not a video, no video stream, empty, bad reference or dataset"),
    (OutputError.exit_code, "output: exists without --force, is the input, cannot be written"),
    (WeightsError.exit_code, "weights: missing, corrupt, sha256 mismatch, or made for another variant"),
    (DamagedInputError.exit_code, "damaged input: the output holds every frame that decoded; stderr says how many were lost"),
    (EXIT_SOME_FAILED, "several inputs with --keep-going: one or more failed; each file's result says why"),
    (ClusterError.exit_code, "cluster: a Ray worker or node died, or the cluster was lost; finished segments are kept for --resume"),
    (OutOfMemoryError.exit_code, "out of memory: a frame did not fit even in the smallest tiles (try --tile 128, --batch 1, or a machine with more memory)"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C, SIGTERM); no partial output (a segmented run keeps its finished segments for --resume)"),
    (EXIT_BROKEN_PIPE, "stdout closed by its reader; nothing printed"),
)
