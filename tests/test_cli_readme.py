"""What the README's seed example imports is what ``make demo`` installs.  (Its
console blocks, the command line's among them, run as written in
``tests/test_readme_as_written.py``.)"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

from .console_docs import ROOT

README = ROOT / "README.md"


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
