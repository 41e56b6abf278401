"""The Colab notebook runs top to bottom on CPU, offline, at QUICK scale, and says what it should."""

import nbformat
import pytest

from conftest import ROOT

NOTEBOOK = ROOT / "scripts" / "colab_tpu.ipynb"


def _text(cell) -> str:
  out = []
  for o in cell.get("outputs", []):
    out.append(o.get("text", "") or "".join(o.get("data", {}).get("text/plain", "")))
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
