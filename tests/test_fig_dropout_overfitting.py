"""Dropout and overfitting at reduced scale."""

import pytest

from lab10.experiments import dropout_overfitting


def test_dropout_narrows_the_generalisation_gap(mnist_dir):
  r = dropout_overfitting.run(data_dir=mnist_dir, n_train=1000, epochs=10, width=256, seeds=(0, 1))
  without, with_dropout = r.claims["no_dropout_accuracy_gap"], r.claims["dropout_accuracy_gap"]
  assert without > with_dropout > 0, (without, with_dropout)
  assert r.claims["no_dropout_final_train_accuracy_mean"] > 0.97
  x, mean = r.data["panels"]["accuracy"]["no dropout: test"]
  low, high = r.data["bands"]["accuracy"]["no dropout: test"]
  assert x == list(range(1, 11)) and all(lo <= m <= hi for lo, m, hi in zip(low, mean, high))
  assert mean[-1] == pytest.approx(r.claims["no_dropout_final_test_accuracy_mean"])
