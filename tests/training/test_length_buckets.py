"""Length bucketing: every item once per epoch, batches of similar length, the same order in every
process and after a resume; replay draws fixed per epoch with their lengths known. (A bucketed
fine-tune with replay resuming exactly: tests/training/test_finetune.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from emomotion.data.dataset import DatasetConfig, MotionDataset
from emomotion.errors import ConfigError
from emomotion.training.config import TrainConfig
from emomotion.training.finetune import ReplayDataset
from emomotion.training.sampler import EpochSampler


def _sampler(lengths, rank=0, world=1, buckets=4, batch=8, epoch=3, start=0):
    s = EpochSampler(len(lengths), seed=5, rank=rank, world=world, batch_size=batch, buckets=buckets)
    s.lengths, s.epoch, s.start = lengths, epoch, start
    return s


def _spread(order: list[int], lengths: np.ndarray, batch: int) -> float:
    full = len(order) // batch * batch
    batches = np.asarray(order[:full]).reshape(-1, batch)
    return float(np.mean(lengths[batches].max(1) - lengths[batches].min(1)))


@pytest.fixture
def lengths() -> np.ndarray:
    return np.random.default_rng(0).integers(20, 197, size=203)


def test_each_item_once_and_batches_of_similar_length(lengths):
    plain, bucketed = list(_sampler(lengths, buckets=0)), list(_sampler(lengths, buckets=8))
    assert len(bucketed) == len(plain) == 203
    assert sorted(bucketed) == list(range(203))  # a permutation: nothing repeated, nothing lost
    assert _spread(bucketed, lengths, 8) < 0.25 * _spread(plain, lengths, 8)
    assert list(_sampler(lengths, buckets=8)) == bucketed  # a pure function of (seed, epoch)
    assert list(_sampler(lengths, buckets=8, epoch=4)) != bucketed
    # padding to each batch's longest clip: what a step computes on
    full = np.asarray(bucketed[:200]).reshape(-1, 8)
    padded = lengths[full].max(1).sum() * 8
    plain_padded = lengths[np.asarray(plain[:200]).reshape(-1, 8)].max(1).sum() * 8
    assert padded < 0.75 * plain_padded


def test_processes_share_one_order_and_resume_mid_epoch(lengths):
    whole = _sampler(lengths, world=2).order()
    ranks = [list(_sampler(lengths, rank=r, world=2)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 101
    for step in range(len(lengths) // 16):
        a, b = (set(r[step * 8 : (step + 1) * 8]) for r in ranks)
        assert a | b == set(whole[step * 16 : (step + 1) * 16].tolist()) and not a & b
    for r in (0, 1):  # resuming after 5 steps reads the rest of the same order
        assert list(_sampler(lengths, rank=r, world=2, start=5 * 16)) == ranks[r][5 * 8 :]


def test_wrong_number_of_lengths_is_an_error(lengths):
    sampler = _sampler(lengths)
    sampler.lengths = lengths[:-1]
    with pytest.raises(ValueError, match="lengths"):
        list(sampler)
    with pytest.raises(ConfigError, match="length_buckets"):
        TrainConfig(length_buckets=-1)


def test_replay_draws_are_fixed_per_epoch_and_their_lengths_known(synthetic_train_set):
    primary = MotionDataset(DatasetConfig(synthetic_train_set, max_frames=40))
    replay = MotionDataset(DatasetConfig(synthetic_train_set, max_frames=60, seed=1))
    mixed = ReplayDataset(primary, replay, ratio=0.5, seed=3)
    mixed.set_epoch(2)
    draws = mixed.draws.copy()
    lengths = mixed.item_lengths()
    assert len(lengths) == len(mixed)
    assert [mixed[i].motion.shape[0] for i in range(len(mixed))] == lengths.tolist()
    mixed.set_epoch(3)
    assert not np.array_equal(mixed.draws, draws)
    other = ReplayDataset(primary, replay, ratio=0.5, seed=3)
    other.reseed(99)  # another process: its own crops, the same draws
    other.set_epoch(2)
    assert np.array_equal(other.draws, draws)


def test_cli_refuses_a_bucket_count_out_of_range(synthetic_train_set, tmp_path, capsys):
    from emomotion.cli import main

    out = tmp_path / "run"
    code = main(
        ["train", "mdm", "--data", str(synthetic_train_set), "--out", str(out), "--length-buckets", "-1"]
    )
    assert code == 2 and "--length-buckets must be in [0, 10000], got -1" in capsys.readouterr().err
    assert not out.exists()
