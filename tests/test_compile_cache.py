"""lab10.compile_cache: where the persistent compilation cache lives, how it is turned off, that its writes are
atomic, and that results are bit-identical with and without it."""

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from lab10 import compile_cache

WHERE = ("import json, jax; from lab10 import compile_cache; path = compile_cache.enable(); "
         "jax.jit(lambda x: x * 2 + 1)(jax.numpy.ones(3)).block_until_ready(); "
         "print(json.dumps([None if path is None else str(path), jax.config.jax_compilation_cache_dir]))")


def _where(tmp_path, **env) -> tuple:
  base = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE", compile_cache.ENV))}
  done = subprocess.run([sys.executable, "-c", WHERE], env={**base, "XDG_CACHE_HOME": str(tmp_path / "xdg"), **env},
                        capture_output=True, text=True, timeout=120, cwd=ROOT)
  assert done.returncode == 0, done.stderr
  return tuple(json.loads(done.stdout.splitlines()[-1]))


def test_the_cache_is_in_the_user_cache_folder_by_default_and_filled(tmp_path):
  path, jax_dir = _where(tmp_path)
  assert path == jax_dir == str(tmp_path / "xdg" / "lab10" / "jax")
  assert any(p.name.endswith("-cache") for p in (tmp_path / "xdg" / "lab10" / "jax").iterdir())


def test_the_variable_moves_or_turns_off_the_cache_and_a_users_own_jax_cache_is_kept(tmp_path):
  assert _where(tmp_path, LAB10_COMPILATION_CACHE=str(tmp_path / "mine")) == (str(tmp_path / "mine"),) * 2
  assert _where(tmp_path, LAB10_COMPILATION_CACHE="off") == (None, None)
  assert not (tmp_path / "xdg").exists()
  own = str(tmp_path / "own")
  assert _where(tmp_path, JAX_COMPILATION_CACHE_DIR=own, LAB10_COMPILATION_CACHE="off") == (own, own)


def test_an_entry_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
  from jax._src import lru_cache

  compile_cache.enable()  # the tests' own cache folder is kept; JAX's put is made atomic
  cache = lru_cache.LRUCache(str(tmp_path), max_size=-1)
  cache.put("a", b"x" * 1000)
  assert (tmp_path / "a-cache").read_bytes() == b"x" * 1000 and cache.get("a") == b"x" * 1000

  def killed(*args):
    raise KeyboardInterrupt  # a process stopped between writing and renaming

  monkeypatch.setattr(os, "replace", killed)
  with pytest.raises(KeyboardInterrupt):
    cache.put("b", b"y" * 1000)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["a-cache"]  # no entry b, no temporary file
  assert cache.get("b") is None


def test_temporary_files_of_killed_processes_are_removed_once_stale(tmp_path):
  stale, fresh = tmp_path / ".k-cache.123.tmp", tmp_path / ".j-cache.456.tmp"
  for f in (stale, fresh):
    f.write_bytes(b"half")
  old = time.time() - 2 * compile_cache.STALE_TMP_S
  os.utime(stale, (old, old))
  compile_cache._remove_stale_tmp(tmp_path)
  assert not stale.exists() and fresh.exists()


def test_results_are_bit_identical_without_the_cache_cold_and_warm(tmp_path):
  base = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE", compile_cache.ENV))}
  flags = ["--dataset", "synthetic", "--width", "16", "--depth", "2", "--epochs", "2", "--batch_size", "50",
           "--log_stats_every", "5"]
  results = {}
  for name, cache in (("off", "off"), ("cold", str(tmp_path / "cache")), ("warm", str(tmp_path / "cache"))):
    done = subprocess.run([sys.executable, "scripts/train.py", *flags, "--workdir", str(tmp_path / name)], cwd=ROOT,
                          env={**base, compile_cache.ENV: cache}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    run = tmp_path / name
    metrics = [{k: v for k, v in json.loads(line).items() if k != "time"}
               for line in (run / "metrics.jsonl").read_text().splitlines()]
    results[name] = (json.loads((run / "summary.json").read_text())["params_sha256"], metrics,
                     (run / "stats.jsonl").read_text())
  assert any((tmp_path / "cache").glob("*-cache"))  # the cold run wrote the programs the warm one read
  assert results["off"] == results["cold"] == results["warm"]
