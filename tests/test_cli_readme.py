"""The README after ``make demo``: its command-line examples print what they show,
and what its seed example imports is what ``make demo`` installs."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from .console_docs import ROOT, mismatches, read_steps, run_steps

README = ROOT / "README.md"


def cli_section() -> str:
    text = README.read_text()
    return text[text.index("## The command line") : text.index("## Examples")]


def test_the_cli_examples_print_what_they_show_after_the_demo(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'ssshelf.db'}"
    demo = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "bookmarks.py")],
        env={"SSSHELF_URL": store, "PATH": ""},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr
    # `. .venv/bin/activate` is what puts `ssshelf` on PATH; the runner does that itself.
    steps = [s for s in read_steps(cli_section()) if "activate" not in s.command]
    assert len(steps) == 4
    # From a directory of its own (export writes backup.jsonl there), with the
    # repository importable as the README's `--manager examples.…` needs.
    outputs = run_steps(
        steps, tmp_path, cwd=tmp_path, env={"SSSHELF_URL": store, "PYTHONPATH": str(ROOT)}
    )
    wrong = mismatches(steps, outputs)
    assert not wrong, "\n\n".join(wrong)
    assert all(outputs), "every example prints something"
    assert len((tmp_path / "backup.jsonl").read_text().splitlines()) == 299


def test_make_demo_installs_what_the_seed_example_imports() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    imported: set[str] = set()
    for block in blocks:
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    third_party = sorted(imported - set(sys.stdlib_module_names) - {"ssshelf"})
    assert third_party == ["simpleflake"]

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    installed = {
        _name(r) for r in project["dependencies"] + project["optional-dependencies"]["demo"]
    }
    distributions = packages_distributions()
    for module in third_party:
        assert {_name(d) for d in distributions[module]} & installed, module

    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("$(STAMP): pyproject.toml", 1)[1].split("\n\n", 1)[0]
    assert "pip install" in recipe and "'.[demo]'" in recipe, recipe
    assert re.search(r"^demo: \$\(STAMP\)$", makefile, flags=re.M)


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
