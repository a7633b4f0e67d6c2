"""How the package is declared: an install prints no deprecation banner.

setuptools (from 77) prints a banner on every build while ``project.license``
is a TOML table; the SPDX string it asks for ends up as the
``License-Expression`` field of the installed metadata.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_license_is_an_spdx_expression() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"
    assert not any(c.startswith("License ::") for c in project["project"].get("classifiers", []))
    requires = project["build-system"]["requires"]
    setuptools = [r for r in requires if r.startswith("setuptools")]
    found = re.fullmatch(r"setuptools>=(\d+)(\.\d+)*", setuptools[0]) if setuptools else None
    assert found is not None and int(found.group(1)) >= 77, requires  # first to read SPDX strings


def test_the_installed_metadata_carries_the_expression() -> None:
    metadata = importlib.metadata.metadata("ssshelf")
    assert metadata["License-Expression"] == "MIT"
    assert metadata["License"] is None  # the deprecated free-text field
