"""The README's commands are the ones CI runs, and everything it names exists."""

import dataclasses
import re

from conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_ci_runs_the_readme_install_and_test_commands():
  ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith(("#", "set ", "cd "))]
  assert ci == ['python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[dev]"', "python -m pytest -n 2",
                "bash .ci/lowest"]
  for line in ci:
    assert f"\n{line}\n" in README, f"README does not show {line!r}"


def _flags_of(script: str) -> set[str]:
  """The flags scripts/<script> accepts: its own add_argument calls, plus Config's where it parses those."""
  from lab10 import flags

  source = (ROOT / "scripts" / script).read_text()
  found = set(re.findall(r'add_argument\(\s*"--([a-z_]+)"', source))
  if "flags.sweep_parser(" in source:
    found |= {a.dest for a in flags.sweep_parser("")._actions}
  elif "flags.parser(" in source:
    found |= {a.dest for a in flags.add_distributed(flags.parser(""))._actions}
  return found


def test_readme_commands_run_scripts_that_exist_with_their_flags():
  commands = re.findall(r"python scripts/([a-z_]+\.py)([^\n`#]*)", README)
  assert len({script for script, _ in commands}) >= 7
  for script, args in commands:
    assert (ROOT / "scripts" / script).exists(), f"README runs scripts/{script}, which does not exist"
    unknown = set(re.findall(r"--([a-z_]+)", args)) - _flags_of(script)
    assert not unknown, f"README runs scripts/{script} with flags it does not have: {unknown}"


def test_readme_flags_exist():
  # A flag named in the prose (`--flag`) is one that some script accepts; Config's fields are train.py's.
  from lab10 import config

  flags = set(re.findall(r"`--([a-z_]+)", README))
  known = {f.name for f in dataclasses.fields(config.Config)}
  for script in (ROOT / "scripts").glob("*.py"):
    known |= _flags_of(script.name)
  assert flags <= known, f"README names flags that do not exist: {flags - known}"


def test_readme_links_and_paths_exist():
  links = [l.split("#")[0] for l in re.findall(r"\]\(([^)\s]+)\)", README) if not l.startswith(("http", "#"))]
  assert "figures/lab10_sigmoid_vs_relu.png" in links  # the picture on the first screen
  # and every file of the repository it names in backticks
  named = re.findall(r"`((?:lab10|scripts|tests|figures)/[\w./-]*)`", README)
  missing = [p for p in links + named if not (ROOT / p).exists()]
  assert not missing, f"README names missing files: {missing}"


def test_readme_colab_section_reinstalls_no_jax_and_has_no_placeholder_badge():
  # Colab's TPU runtime has JAX for its TPU; there is no public URL of this repository for a badge to open.
  assert "jax[tpu]" not in README and "colab-badge" not in README and "YOUR-ACCOUNT" not in README
  assert "REPO_URL" in README


def test_nothing_refers_to_the_folder_beside_the_repository():
  # lab10 stands alone: MNIST is bundled and the papers are cited in full, not pointed at beside it.
  outside = "../" + "shared"
  files = [ROOT / "README.md", ROOT / "pyproject.toml", ROOT / ".ci" / "run"]
  for folder in ("lab10", "scripts", "tests", "figures"):
    files += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".md", ".json", ".ipynb", ".toml")]
  hits = [str(p.relative_to(ROOT)) for p in files if outside in p.read_text()]
  assert not hits, f"{outside} is named in {hits}"
