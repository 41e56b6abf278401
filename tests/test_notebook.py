"""The Colab notebook runs top to bottom on CPU, offline, at QUICK scale, and says what it should."""

import nbformat
import pytest

from conftest import ROOT, made_once

NOTEBOOK = ROOT / "scripts" / "colab_tpu.ipynb"


def _text(cell) -> str:
  out = []
  for o in cell.get("outputs", []):
    data = o.get("data", {})
    out.append(o.get("text", "") or "".join(data.get("text/markdown", "") or data.get("text/plain", "")))
    out.append("\n")
  return "".join(out)


def _run(overrides: str, workdir, upto: str | None = None) -> nbformat.NotebookNode:
  """Executes the notebook with `overrides` injected after its parameters cell (papermill-style); with `upto`, only
  the cells up to the first whose source holds it."""
  nbclient = pytest.importorskip("nbclient")
  nb = nbformat.read(NOTEBOOK, as_version=4)
  if upto is not None:
    nb.cells = nb.cells[:next(i for i, c in enumerate(nb.cells) if upto in c.source) + 1]
  params = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
  nb.cells.insert(params + 1, nbformat.v4.new_code_cell(overrides))
  client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                   resources={"metadata": {"path": str(workdir)}})
  try:
    client.execute()
  except nbclient.exceptions.CellExecutionError:
    pass  # the caller reads the error from the cell's outputs
  return nb


def _overrides(mnist_dir, run_folder) -> str:
  return f"REPO_URL = {str(ROOT)!r}\nQUICK = True\nDATA_DIR = {str(mnist_dir)!r}\nRUN_FOLDER = {str(run_folder)!r}"


@pytest.fixture(scope="session")
def executed(mnist_dir, tmp_path_factory, worker_id):
  # REPO_URL = the checkout: the notebook imports lab10 from it in place and installs nothing.
  def execute(path):
    nbformat.write(_run(_overrides(mnist_dir, tmp_path_factory.mktemp("notebook-runs")),
                        tmp_path_factory.mktemp("notebook")), path)

  return nbformat.read(made_once(tmp_path_factory, worker_id, "executed.ipynb", execute), as_version=4)


def _lines(executed):
  return [l for c in executed.cells if c.cell_type == "code" for l in _text(c).splitlines()]


def test_notebook_form_is_the_first_cell_and_starts_empty():
  first = nbformat.read(NOTEBOOK, as_version=4).cells[0]
  assert "parameters" in first.metadata.get("tags", [])
  assert 'REPO_URL = ""  #@param {type:"string"}' in first.source.splitlines()


def test_notebook_without_a_url_stops_in_one_line(tmp_path):
  nb = _run("QUICK = True", tmp_path)
  errors = [(i, o) for i, c in enumerate(nb.cells) for o in c.get("outputs", []) if o.output_type == "error"]
  assert len(errors) == 1
  i, error = errors[0]
  assert [l for l in "".join(error.traceback).splitlines() if l.strip()] == [
      "Set REPO_URL in the first cell to the URL of your clone of lab10 "
      "(e.g. https://github.com/<you>/lab10.git), then Run all again."]
  # "Run all" stops there: no later cell ran, and the failing cell printed nothing else.
  assert all(c.get("execution_count") is None for c in nb.cells[i + 1:] if c.cell_type == "code")
  assert [o.output_type for o in nb.cells[i].outputs] == ["error"]


def test_notebook_refuses_a_jax_older_than_lab10_allows_in_one_line(tmp_path):
  import re
  fake = ("import importlib.metadata as m\n_version = m.version\n"
          "m.version = lambda d: '0.4.35' if d == 'jax' else _version(d)\n")
  nb = _run(fake + f"REPO_URL = {str(ROOT)!r}\nQUICK = True", tmp_path)
  errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
  assert len(errors) == 1 and [l for l in "".join(errors[0].traceback).splitlines() if l.strip()] == [
      "This runtime's JAX 0.4.35 is older than lab10 needs (jax >= 0.7.0): choose the latest runtime version "
      "(Runtime → Change runtime type), then Run all again."]
  lower = re.search(r'"jax>=([0-9.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
  assert f'MIN_JAX = "{lower}"' in NOTEBOOK.read_text().replace('\\"', '"')  # the notebook's bound is pyproject's


def test_notebook_uses_the_checkout_it_was_given(executed):
  assert f"lab10 from {ROOT / 'lab10'}" in _lines(executed)


def test_notebook_installs_no_jax():
  # Colab's TPU runtime has JAX for its TPU preinstalled; a reinstall would replace it.
  source = "\n".join(c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells)
  assert "jax[" not in source and "-U" not in source.split() and "--upgrade" not in source


def test_notebook_warns_when_it_got_a_cpu(executed):
  text = "".join(_text(c) for c in executed.cells if c.cell_type == "code")
  assert "backend: cpu" in text and "WARNING: no TPU here, running on CPU" in text


def test_notebook_trains_the_preset(executed):
  line = next(l for l in _lines(executed) if l.startswith("lab10-4-deep: test accuracy"))
  assert float(line.split()[3]) > 0.9


def test_notebook_shows_the_per_layer_statistics_table(executed):
  lines = _lines(executed)
  assert any(l.startswith("step ") and "statistics of 4 hidden layers" in l for l in lines)
  table = [l for l in lines if l.startswith("| dense_")]
  assert [l.split("|")[1].strip() for l in table] == ["dense_0", "dense_1", "dense_2", "dense_3"]
  assert all(float(l.split("|")[2]) > 0 for l in table)  # Var[h] of a trained ReLU layer


def test_notebook_init_probe_shows_he_flat_and_xavier_halving(executed):
  lines = _lines(executed)
  he = next(l for l in lines if l.startswith("He (Var 2/n): E[z²] layer 10 / layer 1 ="))
  xavier = next(l for l in lines if l.startswith("Xavier (Var 1/n): E[z²] layer 10 / layer 1 ="))
  ratio = lambda line: float(line.split("=")[1].split(",")[0])
  assert 0.3 < ratio(he) < 3 and ratio(xavier) < 2.0**-9 * 4


def test_notebook_draws_each_figure_once(executed):
  images = [sum("image/png" in o.get("data", {}) for o in c.get("outputs", [])) for c in executed.cells
            if c.cell_type == "code"]
  drawing = [c for c in executed.cells if c.cell_type == "code" and "plotting." in c.source and "display(fig)" in c.source]
  assert len(drawing) == 2
  assert [n for n in images if n] == [1, 1]  # the variance-vs-depth and the deep-ReLU figures, once each


def test_notebook_deep_relu_comparison_reports_both_inits(executed):
  lines = _lines(executed)
  assert any(l.startswith("He (Var 2/n): training error") for l in lines)
  assert any(l.startswith("Xavier (Var 1/n): ‖∂L/∂W_1‖ at init") for l in lines)


def test_notebook_run_again_reads_the_finished_run_in_its_run_folder(executed, mnist_dir, tmp_path):
  # RUN_FOLDER outlives the runtime: "Run all" again (after a preempted runtime, say) resumes each run from its last
  # checkpoint, here a finished one, which is read instead of trained again.
  overrides = executed.cells[1].source
  assert "RUN_FOLDER = " in overrides
  again = _run(overrides, tmp_path, upto="train.fit(")
  lines = [l for c in again.cells if c.cell_type == "code" for l in _text(c).splitlines()]
  assert any("holds a finished run of 1 epochs: nothing to resume" in l for l in lines), lines
  accuracy = [l for l in lines if l.startswith("lab10-4-deep: test accuracy")]
  assert accuracy == [l for l in _lines(executed) if l.startswith("lab10-4-deep: test accuracy")]


def test_notebook_with_a_drive_folder_outside_colab_stops_in_one_line(tmp_path):
  nb = _run(f"REPO_URL = {str(ROOT)!r}\nQUICK = True\nRUN_FOLDER = '/content/drive/MyDrive/lab10'", tmp_path)
  errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
  assert len(errors) == 1 and [l for l in "".join(errors[0].traceback).splitlines() if l.strip()] == [
      "RUN_FOLDER /content/drive/MyDrive/lab10 is on Google Drive, which only a Colab runtime mounts: leave "
      "RUN_FOLDER empty or give a folder of this machine, then Run all again."]
