"""What a figure is: the paper result it mirrors, how our setting differs, what was tried and rejected, its
scales, its run, its checks and its drawing — one ``Figure`` per module of ``lab10/experiments/``.

A run returns a ``Result``: ``data`` (JSON-serialisable; the keyword arguments of the figure's ``draw``), ``claims``
(the measured numbers behind its statements, by short identifier), ``claim_text`` (what each identifier measures),
``setting`` (the scale, in words) and, for a figure with a table, ``table`` (its rows). Nothing here draws or
writes files: ``scripts/make_figures.py`` runs, draws and saves.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable

_CLAIM_ID = re.compile(r"[A-Za-z0-9_.\-]+")


@dataclasses.dataclass
class Result:
  data: dict                  # keyword arguments of the figure's draw; JSON-serialisable
  claims: dict[str, float]    # measured numbers that back the figure's statements, by short identifier
  claim_text: dict[str, str]  # what each claim measures, in words, by the same identifiers
  setting: str                # the scale and settings, one paragraph
  table: list[dict] = dataclasses.field(default_factory=list)  # rows of the figure's table, if it has one (CSV)

  def __post_init__(self):
    bad = [k for k in self.claims if not _CLAIM_ID.fullmatch(k)]
    if bad or self.claims.keys() != self.claim_text.keys():
      raise ValueError(f"claim identifiers must be short names, each with a text: {bad or set(self.claims)}")

  @classmethod
  def of(cls, data: dict, claims: dict[str, tuple[float, str]], setting: str, table: list[dict] = ()) -> Result:
    """A ``Result`` from ``claims = {identifier: (value, text)}``."""
    return cls(data, {k: v for k, (v, _) in claims.items()}, {k: t for k, (_, t) in claims.items()}, setting,
               list(table))


@dataclasses.dataclass(frozen=True)
class Check:
  """One statement of a figure, in words and as a test of its measured numbers (``holds(claims)``):
  figures/README.md states ``text``, and the figure's tests assert ``holds`` on the committed JSON."""
  text: str
  holds: Callable[[dict[str, float]], bool]


class Skipped(Exception):
  """A figure cannot be made here (e.g. its input file is absent); the message says why."""


@dataclasses.dataclass(frozen=True)
class Figure:
  """Everything one figure claims, runs, checks and draws.

  ``run(**kwargs) -> Result`` at full scale with its defaults; ``quick`` and ``long`` are the keyword overrides of
  ``make_figures.py --scale quick`` and ``--scale long``. ``run`` may also take ``data_dir`` (the MNIST folder) and
  ``out`` (the folder the figure is written to, for a figure that keeps files of its own there); make_figures
  passes those it names. ``draw(**result.data)`` returns a matplotlib Figure."""
  name: str
  mirrors: str                    # the paper result: citation, figure or table, the paper's numbers
  differences: tuple[str, ...]    # how our setting differs from the paper's: data, architecture, budget, metric
  rejected: tuple[str, ...]       # settings tried and rejected, each with why
  caveats: tuple[str, ...]        # what else a reader of the figure must know
  run: Callable[..., Result]
  draw: Callable
  checks: tuple[Check, ...]
  quick: dict = dataclasses.field(default_factory=dict)
  long: dict = dataclasses.field(default_factory=dict)

  def statement(self) -> dict:
    """The figure's statement as plain data: what its JSON records and figures/README.md prints."""
    return {"mirrors": self.mirrors, "differences": list(self.differences), "rejected": list(self.rejected),
            "caveats": list(self.caveats), "checks": [c.text for c in self.checks]}

  def failed_checks(self, claims: dict) -> list[str]:
    """The texts of the checks that ``claims`` (as saved: null for NaN) do not satisfy."""
    numbers = {k: math.nan if v is None else v for k, v in claims.items()}
    failed = []
    for check in self.checks:
      try:
        if not check.holds(numbers):
          failed.append(check.text)
      except KeyError as e:  # data written before the claim existed
        failed.append(f"{check.text} (no claim {e})")
    return failed
