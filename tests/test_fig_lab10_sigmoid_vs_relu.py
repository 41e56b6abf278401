"""The lab's sigmoid-vs-ReLU gradient norms at reduced scale."""

from lab10.experiments import lab10_sigmoid_vs_relu


def test_sigmoid_gradient_vanishes_toward_input_relu_does_not(mnist_dir):
  r = lab10_sigmoid_vs_relu.run(data_dir=mnist_dir, width=128, steps=100, every=50, n_train=2000)
  sigmoid, relu = r.claims["sigmoid_grad_ratio_at_init"], r.claims["relu_grad_ratio_at_init"]
  assert sigmoid < 1e-2 and relu > 0.1, (sigmoid, relu)
  assert r.claims["sigmoid_grad_ratio_median"] < 0.1 * r.claims["relu_grad_ratio_median"]
  assert r.claim_text["sigmoid_grad_ratio_at_init"] == \
      "sigmoid + Xavier, SGD momentum, lr 0.01: ‖∂L/∂W_1‖ / ‖∂L/∂W_8‖ at init"
  # The same sigmoid net from the same init under Adam: the same gradient ratio at init, then it moves.
  assert r.claims["sigmoid_adam_grad_ratio_at_init"] == sigmoid
  assert r.claims["sigmoid_adam_grad_ratio_median"] > 1.5 * r.claims["sigmoid_grad_ratio_median"]
  assert list(r.data["panels"]) == ["sigmoid + Xavier, SGD momentum, lr 0.01", "relu + Xavier, SGD momentum, lr 0.01",
                                    "sigmoid + Xavier, Adam, lr 0.001"]
