"""A run's inputs: files and directories expanded to (input, output) pairs, checked so that no
output overwrites an input."""

from __future__ import annotations

import os
from typing import Callable

from vdeblur.errors import InputError, OutputError, UsageError

#: file names a directory is searched for (hidden files, such as vdeblur's own partial files, are not)
VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mov .mkv .webm .avi .mts .m2ts .ts .mpg .mpeg .wmv .flv .3gp .ogv .mxf .y4m .nut .dv".split()
)


def several(inputs: list[str]) -> bool:
    """Several inputs, or a directory: the output is then a directory."""
    return len(inputs) > 1 or (len(inputs) == 1 and os.path.isdir(inputs[0]))


def expand_inputs(inputs: list[str], output: str, warn: Callable[[str], None] = lambda m: None) -> list[tuple[str, str]]:
    """(input, output) pairs. One file: ``output`` is the output file. Several inputs or a
    directory: ``output`` is a directory; each file keeps its name (and, from a directory, its
    path below it). Directories are searched recursively for video file names; the output
    directory is not searched (a re-run into ``clips/restored`` does not restore its outputs).
    No output may be one of the inputs (paths resolved, symlinks and hard links included):
    that is a usage error, raised before anything is written."""
    if not inputs:
        raise UsageError("no input given")
    if not several(inputs):
        return [(inputs[0], output)]
    if output == "-":
        raise UsageError("several inputs need -o DIRECTORY, not '-'")
    what = "a directory input" if len(inputs) == 1 else "several inputs"
    if os.path.exists(output) and not os.path.isdir(output):
        raise UsageError(f"{what} need -o DIRECTORY; {output} is a file")
    if not os.path.exists(output) and os.path.splitext(output)[1].lower() in VIDEO_EXTENSIONS:
        raise UsageError(f"{what} need -o DIRECTORY; {output} names a video file")
    out_real = os.path.realpath(output)
    pairs: list[tuple[str, str]] = []
    for inp in inputs:
        if inp == "-":
            raise UsageError("'-' (stdin) cannot be one of several inputs")
        if os.path.isdir(inp):
            found = []
            for root, dirs, files in os.walk(inp):
                keep = []
                for d in sorted(dirs):
                    if d.startswith("."):
                        continue
                    if os.path.realpath(os.path.join(root, d)) == out_real:
                        warn(f"{os.path.join(root, d)} is the output directory: its files are not inputs")
                        continue
                    keep.append(d)
                dirs[:] = keep
                for f in sorted(files):
                    if not f.startswith(".") and os.path.splitext(f)[1].lower() in VIDEO_EXTENSIONS:
                        found.append(os.path.join(root, f))
            if not found:
                raise InputError(f"no video files in {inp} (looked for {', '.join(sorted(VIDEO_EXTENSIONS))})")
            pairs += [(f, os.path.join(output, os.path.relpath(f, inp))) for f in found]
        else:
            pairs.append((inp, os.path.join(output, os.path.basename(inp))))
    _check_pairs(pairs, output)
    return pairs


def _file_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _check_pairs(pairs: list[tuple[str, str]], output: str) -> None:
    """Two inputs written to one output, or an output that is an input of the run: usage errors."""
    by_path = {os.path.realpath(inp): inp for inp, _ in pairs}
    by_id = {k: inp for inp, k in ((i, _file_id(i)) for i, _ in pairs) if k is not None}
    seen: dict[str, str] = {}
    for inp, out in pairs:
        key = os.path.realpath(out)
        if key in seen:
            raise UsageError(f"{seen[key]} and {inp} would both be written to {out}")
        seen[key] = inp
        other = by_path.get(key) or by_id.get(_file_id(out) or (-1, -1))
        if other is not None:
            raise UsageError(f"the output {out} (of {inp}) is the input {other}: choose another -o")


def make_dirs(pairs: list[tuple[str, str]]) -> None:
    """The output folders of several inputs."""
    for _, out in pairs:
        d = os.path.dirname(os.path.abspath(out))
        try:
            os.makedirs(d, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot make the output folder {d}: {e.strerror or e}") from e
