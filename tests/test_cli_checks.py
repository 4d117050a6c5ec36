"""Bad option values: exit 2 and one line naming the option, before any work is done."""

from __future__ import annotations

import time

import numpy as np
import pytest

from emomotion.cli import main
from emomotion.limits import MAX_PROMPT_CHARS

CASES = [
    ("train mdm --data {tmp} --out {out} --lr nan", "--lr"),
    ("train mdm --data {tmp} --out {out} --lr inf", "--lr"),
    ("train mdm --data {tmp} --out {out} --lr -1e-4", "--lr"),
    ("train mdm --data {tmp} --out {out} --lr 0", "--lr"),
    ("train mdm --data {tmp} --out {out} --steps 0", "--steps"),
    ("train mdm --data {tmp} --out {out} --batch-size -2", "--batch-size"),
    ("train mdm --data {tmp} --out {out} --ema 1", "--ema"),
    ("train mdm --data {tmp} --out {out} --diffusion-steps 0", "--diffusion-steps"),
    ("train mdm --data {tmp} --out {out} --steps nan", "--steps"),
    ("train mdm --data /nonexistent --out {out}", "--data: folder not found"),
    ("train vq --data {tmp} --out {out} --window 0", "--window"),
    ("train mmm --data {tmp} --vq /nonexistent --out {out}", "--vq"),
    ("train evaluator --data {tmp} --out {out} --save-every 0", "--save-every"),
    ("finetune mdm --from {tmp} --data {tmp} --out {out} --replay-ratio 1.5", "--replay-ratio"),
    ("finetune mdm --from {tmp} --data {tmp} --out {out} --lora-alpha nan", "--lora-alpha"),
    ("finetune mmm --from {tmp} --data {tmp} --out {out} --patience -1", "--patience"),
    ("generate --model {tmp} --out {out} --text hi --guidance nan", "--guidance"),
    ("generate --model {tmp} --out {out} --text hi --guidance -1", "--guidance"),
    ("generate --model {tmp} --out {out} --text hi --length inf", "--length"),
    ("generate --model {tmp} --out {out} --text hi --length 0", "--length"),
    ("generate --model {tmp} --out {out} --text hi --steps 0", "--steps"),
    ("generate --model {tmp} --out {out} --text hi --num 0", "--num"),
    ("generate --model {tmp} --out {out} --text hi --intensity 3.5", "--intensity"),
    ("generate --model {tmp} --out {out} --text hi --temperature nan", "--temperature"),
    ("generate --model {tmp} --out {out} --text hi --eta 2", "--eta"),
    ("generate --model {tmp} --out {out} --text hi --emotion-guidance-scale -1", "--emotion-guidance-scale"),
    ("generate --model {tmp} --out {out} --text hi --emotion-guidance /nonexistent", "--emotion-guidance"),
    ("restyle {tmp}/j.npy --model {tmp} --emotion Joy --out {out} --strength 1.5", "--strength"),
    ("restyle {tmp}/j.npy --model /nonexistent --emotion Joy --out {out}", "--model"),
    ("generate --model {tmp} --out {out} --text hi --top-k 0", "--top-k"),
    ("generate --model {tmp} --out {out} --text " + "x" * (MAX_PROMPT_CHARS + 1), "--text"),
    ("generate --model /nonexistent --out {out} --text hi", "--model"),
    ("eval --model {tmp} --data {tmp} --evaluator {tmp} --out {out} --reps 0", "--reps"),
    ("eval --model {tmp} --data /nonexistent --evaluator {tmp} --out {out}", "--data"),
    ("diagnose mmm --model {tmp} --data {tmp} --out {out} --guidance inf", "--guidance"),
    ("serve --model {tmp} --port 70000", "--port"),
    ("serve --model /nonexistent", "--model"),
    ("demo --out {out} --scale 0", "--scale"),
    ("study run {tmp}/none.toml --out {out}", "CONFIG"),
    ("convert {tmp}/none.bvh --to joints", "SOURCE"),
    ("convert {tmp}/j.npy --to joints --fps 0", "--fps"),
    ("data build bvh --input {tmp} --out {out} --workers 0", "--workers"),
    ("data build synthetic --out {out} --captions 0", "--captions"),
    ("data merge {tmp} /nonexistent --out {out}", "INPUTS"),
    ("import mdm {tmp}/none.pt --out {out}/o.safetensors --stats {tmp}", "MODEL"),
    ("import mmm --vq {tmp}/none.pt --trans {tmp}/none.pt --stats {tmp} --out {out}/o", "--vq"),
]


@pytest.mark.parametrize(("command", "option"), CASES)
def test_bad_value_is_one_line_naming_the_option(tmp_path, capsys, command, option):
    out = tmp_path / "out"
    (tmp_path / "j.npy").write_bytes(b"")  # an input that exists, for the cases about another option
    args = command.format(tmp=tmp_path, out=out).split()
    start = time.perf_counter()
    rc = main(args)
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert option in err, err
    assert elapsed < 2.0 and not out.exists()  # refused before loading or writing anything


def test_usage_errors_are_one_line_too(capsys):
    assert main(["train", "mdm", "--steps", "many", "--data", ".", "--out", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--steps" in err[0] and "emomotion train mdm --help" in err[0]


def test_convert_refuses_a_one_frame_features_file(tmp_path, capsys):
    np.save(tmp_path / "f.npy", np.zeros((1, 263), np.float32))
    assert main(["convert", str(tmp_path / "f.npy"), "--to", "bvh", "--out", str(tmp_path / "o.bvh")]) == 2
    err = capsys.readouterr().err.strip()
    assert "at least 2 frames" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.bvh").exists()


def test_import_of_a_non_checkpoint_is_one_line(tmp_path, capsys):
    (tmp_path / "model.pt").write_bytes(b"not a checkpoint" * 10)
    (tmp_path / "args.json").write_text("{}")
    rc = main(
        ["import", "mdm", str(tmp_path / "model.pt"), "--stats", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "not a loadable weights-only torch checkpoint: " in err
    assert len(err) < 200, err  # the verdict, not torch's paragraphs
