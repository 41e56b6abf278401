"""The Colab notebook runs top to bottom on CPU, offline, at QUICK scale, and says what it should."""

import nbformat
import pytest

from conftest import ROOT

NOTEBOOK = ROOT / "scripts" / "colab_tpu.ipynb"


def _text(cell) -> str:
  out = []
  for o in cell.get("outputs", []):
    data = o.get("data", {})
    out.append(o.get("text", "") or "".join(data.get("text/markdown", "") or data.get("text/plain", "")))
    out.append("\n")
  return "".join(out)


@pytest.fixture(scope="module")
def executed(mnist_dir, tmp_path_factory):
  nbclient = pytest.importorskip("nbclient")
  nb = nbformat.read(NOTEBOOK, as_version=4)
  params = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
  # papermill-style: an injected cell after the parameters overrides them.
  nb.cells.insert(params + 1, nbformat.v4.new_code_cell(
      f"QUICK = True\nINSTALL = False\nDATA_DIR = {str(mnist_dir)!r}"))
  workdir = tmp_path_factory.mktemp("notebook")
  nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                          resources={"metadata": {"path": str(workdir)}}).execute()
  return nb


def test_notebook_warns_when_it_got_a_cpu(executed):
  text = "".join(_text(c) for c in executed.cells if c.cell_type == "code")
  assert "backend: cpu" in text and "WARNING: no TPU here, running on CPU" in text


def test_notebook_trains_the_preset(executed):
  line = next(l for c in executed.cells for l in _text(c).splitlines() if l.startswith("lab10-4-deep: test accuracy"))
  assert float(line.split()[3]) > 0.9


def _lines(executed):
  return [l for c in executed.cells if c.cell_type == "code" for l in _text(c).splitlines()]


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
  assert sum("image/png" in o.get("data", {}) for c in executed.cells for o in c.get("outputs", [])) >= 2


def test_notebook_deep_relu_comparison_reports_both_inits(executed):
  lines = _lines(executed)
  assert any(l.startswith("He (Var 2/n): training loss") for l in lines)
  assert any(l.startswith("Xavier (Var 1/n): ‖∂L/∂W_1‖ at init") for l in lines)
