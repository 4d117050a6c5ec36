"""Distributed training under torchrun (2 CPU processes, gloo): the processes read different items,
end with identical weights, process 0 alone writes, and a run killed and resumed with 2 processes
equals an uninterrupted one bit for bit; resuming with another number of processes is refused."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import emomotion
from emomotion.checkpoint import load_checkpoint, load_train_state
from emomotion.cli import main

WORKER = Path(__file__).with_name("distributed_worker.py")
SRC = Path(emomotion.__file__).parents[1]


def torchrun(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(WORKER), *args]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]


@pytest.fixture(scope="module")
def runs(synthetic_train_set, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("distributed")
    torchrun("first", str(out), str(synthetic_train_set))
    torchrun("resume", str(out), str(synthetic_train_set))
    return out


def rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv") as fh:
        return list(csv.DictReader(fh))


def test_one_writer_and_samples_over_all_processes(runs):
    full = runs / "full"
    assert sorted(p.name for p in full.iterdir()) == [
        "metrics.csv",
        "step00000020.rank1.train.pt",
        "step00000020.safetensors",
        "step00000020.train.pt",
    ]
    metrics = rows(full)
    assert [(r["step"], r["samples"]) for r in metrics] == [("10", "160"), ("20", "320")]  # 8 x 2 a step
    ckpt = load_checkpoint(full)
    assert ckpt.step == 20 and load_train_state(ckpt.path)["world_size"] == 2
    ckpt.build_model()


def test_processes_read_different_items_and_end_with_the_same_weights(runs):
    seen = [json.loads((runs / f"seen.rank{r}.json").read_text()) for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 20 * 8
    for step in range(20):
        a, b = (set(s[step * 8 : (step + 1) * 8]) for s in seen)
        assert len(a) == len(b) == 8 and not a & b, step  # one step's batches never overlap
    w0, w1 = (torch.load(runs / f"weights.rank{r}.pt", weights_only=True) for r in (0, 1))
    assert w0.keys() == w1.keys()
    for key in w0:
        assert torch.equal(w0[key], w1[key]), key
    saved = load_checkpoint(runs / "full").model_state
    assert all(torch.equal(saved[k], w0[k]) for k in saved)


def test_killed_and_resumed_equals_uninterrupted(runs):
    assert (runs / "cut" / "step00000010.rank1.train.pt").exists()
    a, b = load_checkpoint(runs / "full"), load_checkpoint(runs / "cut")
    assert a.step == b.step == 20
    for key, value in a.model_state.items():
        assert torch.equal(value, b.model_state[key]), key
    for key, value in a.ema_state.items():
        assert torch.equal(value, b.ema_state[key]), key
    assert [r["loss"] for r in rows(runs / "full")] == [r["loss"] for r in rows(runs / "cut")]


def test_resuming_with_another_number_of_processes_is_refused(runs, synthetic_train_set, capsys):
    from tests.training.distributed_worker import cli_args

    code = main([*cli_args(synthetic_train_set, runs / "cut"), "--resume", "--steps", "30"])
    assert code == 2
    assert "saved by 2 process(es) and is resumed by 1" in capsys.readouterr().err
