"""Drawing in the house style for the tests: the ``draw`` fixture and readers of what a figure shows."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from lab10 import plotting  # noqa: E402

nan = float("nan")


@pytest.fixture
def draw():
  """Call a drawing function in the house style; close every figure it made afterwards."""
  figures = []

  def call(function, *args, **kwargs):
    with plotting.style():
      fig = function(*args, **kwargs)
    assert isinstance(fig, Figure)
    figures.append(fig)
    return fig

  yield call
  for fig in figures:
    plotting.close(fig)


def legend_entries(fig) -> list[str]:
  """The entries of the figure's one legend; no panel has a legend of its own."""
  assert [ax for ax in fig.axes if ax.get_legend() is not None] == [] and len(fig.legends) == 1
  return [t.get_text() for t in fig.legends[0].get_texts()]


def colour(ax, label: str):
  return next(line.get_color() for line in ax.lines if line.get_label() == label)


def texts(ax) -> dict[str, str]:
  """Each cell's text → its colour."""
  return {t.get_text(): t.get_color() for t in ax.texts}
