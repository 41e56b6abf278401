"""lab10.progress: how long the pieces of an epoch are, and a run's bars and lines."""

from lab10 import progress


def test_pace_times_the_second_probe_piece_and_then_runs_one_second_pieces_or_whole_epochs(monkeypatch):
  clock = [0.0]
  monkeypatch.setattr(progress.time, "perf_counter", lambda: clock[0])

  def lengths(per_step: float, steps: int = 550, align: int = 1) -> list[int]:
    """The piece lengths of two epochs at ``per_step`` seconds a step."""
    pace, out = progress.Pace(steps, align=align), []
    for _ in range(2):
      start = 0
      while start < steps:
        out.append(min(pace(start), steps - start))
        start += out[-1]
        clock[0] += out[-1] * per_step + (5.0 if len(out) == 1 else 0)  # the first piece also compiles
    return out

  # 1/32-epoch probes: the first compiles, the second is timed; 1/8 s a step → 8-step pieces from then on.
  assert lengths(0.125) == [18, 18] + [8] * 64 + [2] + [8] * 68 + [6]
  assert lengths(0.125, align=3)[:4] == [18, 18, 9, 9]  # multiples of --log_stats_every
  assert lengths(0.125, steps=20) == [1, 1, 18, 20]  # a 2.5 s epoch: whole, once the probe has timed it
  assert lengths(0.001) == [18, 18, 514, 550]  # a 0.55 s epoch runs whole
  assert lengths(1.0, align=1000) == [550, 550]  # statistics of step 0 only: whole epochs



def test_time_left_counts_the_first_epoch_without_its_compiling_piece(monkeypatch, capsys):
  clock = [0.0]
  monkeypatch.setattr(progress.time, "perf_counter", lambda: clock[0])
  with progress.Epochs(4, steps_per_epoch=100, verbose=True) as shown:
    clock[0] += 30.0 + 2.0   # the first piece, 20 steps: 30 s compiling + 20 × 0.1 s
    shown.step(20)
    clock[0] += 8.0          # 80 steps at 0.1 s
    shown.step(100)
    shown.done(1, "first")
    clock[0] += 10.0
    shown.step(100)
    shown.done(2, "second")
  lines = capsys.readouterr().out.splitlines()
  # Epoch 1 took 40 s; without compiling it would have taken 10 s: 3 epochs left ≈ 30 s, then 2 × 10 s.
  assert lines[0].endswith("40.0s, elapsed 00:40, left 00:30"), lines[0]
  assert lines[1].endswith("10.0s, elapsed 00:50, left 00:20"), lines[1]
