"""The README's test command is the one CI runs, verbatim (a fresh clone runs what CI ran)."""

from __future__ import annotations

import re

from helpers import REPO


def readme_test_command() -> str:
    """The `pytest ...` line of the README's setup block, without its trailing comment."""
    lines = [ln.split("#")[0].strip() for ln in (REPO / "README.md").read_text().splitlines()]
    commands = [ln for ln in lines if re.match(r"^(python -m )?pytest\b", ln)]
    assert len(commands) == 1, f"the README should show one test command, found {commands}"
    return commands[0]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = [ln.strip() for ln in (REPO / ".ci" / "run").read_text().splitlines()]
    assert readme_test_command() in ci, f".ci/run does not run the README's {readme_test_command()!r}"


def test_test_modules_do_not_import_the_tests_package():
    """`from tests.x import` needs the repo root on sys.path: true under `python -m pytest`, false
    under plain `pytest`; the README's command must collect on a fresh clone."""
    for f in sorted((REPO / "tests").glob("*.py")):
        bad = re.findall(r"^\s*(?:from|import) tests\b.*$", f.read_text(), flags=re.M)
        assert not bad, f"{f.name}: {bad[0].strip()} (use `from helpers import ...`)"
