"""man/vdeblur.1 and completions/ are generated from the CLI and committed: they must be current."""

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vdeblur.cli import docs
from vdeblur.cli.app import app
from vdeblur.errors import EXIT_CODES

REPO = Path(__file__).resolve().parents[1]


def test_committed_man_page_and_completions_are_current():
    assert docs.main(["--check"]) == 0, "run `python -m vdeblur.cli.docs` and commit the result"


def test_man_page_lists_every_command_option_and_exit_code():
    page = docs.man_page()
    root = docs._root()
    for path, cmd in docs._walk(root, [])[1:]:
        if hasattr(cmd, "commands"):
            continue
        assert f".SS vdeblur {' '.join(path)}" in page
        for p in cmd.params:
            if p.param_type_name == "option" and not p.hidden:
                assert docs._opt(p.opts[0]) in page, (path, p.opts)
    for code, _ in EXIT_CODES:
        assert f"\\fB{code}\\fR" in page


def test_readme_exit_codes_match_the_errors_module():
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## Exit codes"):].split("\n\n")[1]
    codes = [int(m) for m in re.findall(r"^\| (\d+) \|", table, flags=re.M)]
    assert codes == [c for c, _ in EXIT_CODES]


@pytest.mark.parametrize("shell", docs.SHELLS)
def test_completion_scripts_call_back_into_vdeblur(shell):
    script = docs.completion(shell)
    assert "_VDEBLUR_COMPLETE" in script and "vdeblur" in script


def test_completion_candidates_come_from_the_cli():
    r = CliRunner().invoke(app, [], prog_name="vdeblur",
                           env={"_VDEBLUR_COMPLETE": "complete_bash", "COMP_WORDS": "vdeblur cla", "COMP_CWORD": "1"})
    assert r.stdout.split() == ["classify"]
    r = CliRunner().invoke(app, [], prog_name="vdeblur",
                           env={"_VDEBLUR_COMPLETE": "complete_bash", "COMP_WORDS": "vdeblur bench --noi", "COMP_CWORD": "2"})
    assert r.stdout.split() == ["--noisy"]
