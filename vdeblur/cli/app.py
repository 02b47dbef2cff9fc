"""The Typer app and its global options; the error table is in cli/errors.py."""

from __future__ import annotations

import typer

from vdeblur import __version__
from vdeblur.cli.errors import STATE, handles_errors

def _plain_type_labels() -> None:
    """Typer's help prints a type label beside each parameter, written for programmers: <bool>
    beside every flag and <list[str]> beside a repeatable option or an argument taking several
    values. Flags show no label; several values show the element's label and '...'."""
    from typer.core import TyperArgument, TyperOption

    if getattr(TyperOption, "_vdeblur_labels", False) or not hasattr(TyperOption, "display_type_rich"):
        return
    option_label, argument_label = TyperOption.display_type_rich, TyperArgument.display_type_rich

    def plain(label: str | None, several: bool) -> str | None:
        if label and label.startswith("<list[") and label.endswith("]>"):
            label, several = f"<{label[6:-2]}>", True
        elif label and label.endswith("]>...") and label.startswith("<list["):
            label, several = f"<{label[6:-5]}>", True
        if label and several and not label.endswith("..."):
            label += "..."
        return label

    def option_type(self, ctx):  # type: ignore[no-untyped-def]
        if getattr(self, "is_flag", False) or getattr(self, "count", False):
            return None
        return plain(option_label(self, ctx), getattr(self, "multiple", False))

    def argument_type(self, ctx):  # type: ignore[no-untyped-def]
        return plain(argument_label(self, ctx), self.nargs != 1)

    TyperOption.display_type_rich = option_type  # type: ignore[method-assign]
    TyperArgument.display_type_rich = argument_type  # type: ignore[method-assign]
    TyperOption._vdeblur_labels = True  # type: ignore[attr-defined]


_plain_type_labels()

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
