"""Glorot & Bengio Figs. 3–4 at reduced scale: the logged statistics of each layer."""

from lab10.experiments import glorot_training_saturation


def test_training_saturation_reads_the_logged_statistics_of_each_layer(mnist_dir):
  r = glorot_training_saturation.run(data_dir=mnist_dir, width=64, depth=3, n_train=500, log_every=10)
  assert list(r.data["panels"]) == ["tanh, standard init", "tanh, normalized init", "softsign, standard init",
                                    "softsign, normalized init"]
  lines = r.data["panels"]["tanh, standard init"]
  steps, p98 = lines["layer 1: 98th percentile of |h|"]
  assert steps == [0, 10, 20, 30, 40] and len(lines) == 6  # stats.jsonl: steps 0, 10, ... of the 50-step epoch
  assert r.claims["tanh_standard_layer1_p98_init"] == p98[0] and r.claims["tanh_standard_layer1_p98_final"] == p98[-1]
  assert all(0 < v < 1 for v in p98)  # |tanh| < 1
  # At init standard init narrows the activations with depth (Glorot Fig. 6); normalized init much less.
  assert r.claims["tanh_standard_layer3_p98_init"] < 0.5 * r.claims["tanh_standard_layer1_p98_init"]
  assert r.claims["tanh_normalized_layer3_p98_init"] > 0.6 * r.claims["tanh_normalized_layer1_p98_init"]
