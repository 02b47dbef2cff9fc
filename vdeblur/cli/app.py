"""The Typer app and its global options; the error table is in cli/errors.py."""

from __future__ import annotations

import typer

from vdeblur import __version__
from vdeblur.cli.errors import STATE, handles_errors

app = typer.Typer(
    name="vdeblur",
    help="Remove motion blur and noise from videos.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"vdeblur {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for internal errors."),
) -> None:
    """Remove motion blur and noise from videos."""
    STATE["debug"] = debug


def _register() -> None:
    from vdeblur.cli import bench, classify, demo, methods, run, synth, train, weights

    app.command("run")(handles_errors(run.run))
    app.command("classify")(handles_errors(classify.classify))
    app.command("demo")(handles_errors(demo.demo))
    app.command("methods")(handles_errors(methods.methods))
    app.command("bench")(handles_errors(bench.bench))
    app.command("synth")(handles_errors(synth.synth))
    app.command("train")(handles_errors(train.train))
    app.add_typer(weights.app, name="weights")


_register()


def main() -> None:
    app()
