"""One process of a distributed MDM training run, started by ``torchrun`` from test_distributed.py.

``first OUT DATA``: the CLI's ``train mdm`` into OUT/full (recording, per process, the items it read
and its final weights), then the same run into OUT/cut, stopped after 10 of its 20 steps as an
interruption would. ``resume OUT DATA``: the CLI resumes OUT/cut (in new processes, as after a kill).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import torch

from emomotion.cli import main
from emomotion.data.dataset import MotionDataset
from emomotion.training import mdm


def cli_args(data: Path, out: Path) -> list[str]:
    return ["train", "mdm", "--data", str(data), "--preset", "tiny", "--steps", "20", "--batch-size", "8",
            "--emotion-conditioning", "--diffusion-steps", "50", "--out", str(out)]  # fmt: skip


def run_first(out: Path, data: Path, rank: int) -> None:
    seen: list[int] = []
    runs: list[mdm.MDMRun] = []
    read, loop, run_mdm = MotionDataset.__getitem__, mdm.train_loop, mdm.run_mdm

    def recording_getitem(self, index):
        seen.append(int(index))
        return read(self, index)

    def keeping_loop(step, *args, **kwargs):
        path = loop(step, *args, **kwargs)
        torch.save(step.model.state_dict(), out / f"weights.rank{rank}.pt")
        return path

    def keeping_run(run, **kwargs):
        runs.append(run)
        return run_mdm(run, **kwargs)

    MotionDataset.__getitem__ = recording_getitem
    mdm.train_loop, mdm.run_mdm = keeping_loop, keeping_run
    assert main(cli_args(data, out / "full")) == 0
    MotionDataset.__getitem__, mdm.train_loop = read, loop
    (out / f"seen.rank{rank}.json").write_text(json.dumps(seen))
    run_mdm(dataclasses.replace(runs[0], out=out / "cut"), stop_after=10)


if __name__ == "__main__":
    mode, out, data = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    if mode == "first":
        run_first(out, data, int(os.environ["RANK"]))
    else:
        sys.exit(main([*cli_args(data, out / "cut"), "--resume"]))
