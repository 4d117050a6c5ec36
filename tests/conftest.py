"""Shared fixtures: the real third-party data beside the checkout (../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EMOMOTION_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def shared_path(*parts: str) -> Path:
    """Path under ../shared/data; skips the test with a clear reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"../shared/data not found ({path}): real-data test skipped")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ../shared/data folder (tests using it skip when it is absent)."""
    return shared_path()


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny models run faster on one thread, and far faster when the machine's two cores are busy. The
    environment says so too, so that CLI commands run in-process (which set torch's threads from it) and
    the processes tests launch keep one thread."""
    previous, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    yield
    torch.set_num_threads(previous)
    if env is None:
        os.environ.pop("OMP_NUM_THREADS")
    else:
        os.environ["OMP_NUM_THREADS"] = env


def build_synthetic(out: Path) -> Path:
    """The small synthetic training set most model tests share: walk and knock in every emotion,
    all clips in the train split."""
    from emomotion.data.build import BuildConfig, build_dataset
    from emomotion.data.splits import SplitConfig

    build_dataset(
        BuildConfig(
            source="synthetic",
            out=out,
            seed=0,
            split=SplitConfig(ratios=(1.0, 0.0, 0.0)),
            options={"actions": ["walk", "knock"], "seconds": (2.5, 4.0)},
        )
    )
    return out


@pytest.fixture(scope="session")
def synthetic_train_set(tmp_path_factory) -> Path:
    """:func:`build_synthetic`, built once per test session (tests only read it)."""
    return build_synthetic(tmp_path_factory.mktemp("synthetic_train_set"))
