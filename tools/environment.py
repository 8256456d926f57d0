"""Write environment.yml (conda / Binder) from pyproject.toml's dependencies and the dev extra.

Usage: python tools/environment.py
"""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = """\
# Conda / Binder environment for the course; the same dependencies as pyproject.toml
# (written by tools/environment.py; a test keeps the two lists in agreement). The last entry
# installs mlmcourse itself.
name: mlmcourse
channels:
  - conda-forge
dependencies:
  - python>=3.10
  - pip
  - pip:
"""


def main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    seen = list(dict.fromkeys(wanted))
    body = "".join(f"      - {d}\n" for d in seen) + "      - -e .\n"
    (ROOT / "environment.yml").write_text(HEADER + body)


if __name__ == "__main__":
    main()
