"""The README's commands are the ones CI runs."""

from conftest import ROOT


def test_ci_runs_the_readme_install_and_test_commands():
  readme = (ROOT / "README.md").read_text()
  ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith(("#", "set ", "cd "))]
  assert ci == ['python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[dev]"', "python -m pytest"]
  for line in ci:
    assert f"\n{line}\n" in readme, f"README does not show {line!r}"


def test_readme_flags_exist():
  import re

  from lab10 import config, sweep

  readme = (ROOT / "README.md").read_text()
  flags = set(re.findall(r"`--([a-z_]+)", readme))
  known = {f.name for f in __import__("dataclasses").fields(config.Config)}
  # scripts/sweep.py adds the swept values and --distributed (scripts/train.py has --distributed too).
  known |= {a.dest for a in sweep.parser("")._actions}
  assert flags <= known, f"README names flags that do not exist: {flags - known}"


def test_nothing_refers_to_the_folder_beside_the_repository():
  # lab10 stands alone: MNIST is bundled and the papers are cited in full, not pointed at beside it.
  outside = "../" + "shared"
  files = [ROOT / "README.md", ROOT / "pyproject.toml", ROOT / ".ci" / "run"]
  for folder in ("lab10", "scripts", "tests", "figures"):
    files += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".md", ".json", ".ipynb", ".toml")]
  hits = [str(p.relative_to(ROOT)) for p in files if outside in p.read_text()]
  assert not hits, f"{outside} is named in {hits}"
