"""Importing official-layout MDM checkpoints (built here with the official key names and shapes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from emomotion.checkpoint import load_checkpoint
from emomotion.cli import main
from emomotion.errors import CheckpointError
from emomotion.models.condition import MotionCondition
from emomotion.models.mdm import MDM, preset
from emomotion.text.base import TextEmbedding


def official(
    tmp_path: Path, *, arch: str = "trans_enc", ema: bool = False, text_dim: int = 512
) -> tuple[Path, MDM]:
    torch.manual_seed(0)
    cfg = preset(
        "tiny", num_heads=4, text_dim=text_dim, arch=arch, memory="tokens" if text_dim == 768 else "sentence"
    )
    model = MDM(cfg).eval()
    state = dict(model.state_dict())
    state["clip_model.token_embedding.weight"] = torch.randn(10, 4)  # the official files carry CLIP
    path = tmp_path / "model000600000.pt"
    torch.save({"model": {k: v + 1 for k, v in state.items()}, "model_avg": state} if ema else state, path)
    (tmp_path / "args.json").write_text(
        json.dumps(
            {
                "arch": arch,
                "latent_dim": 64,
                "layers": 2,
                "cond_mask_prob": 0.1,
                "dataset": "humanml",
                "diffusion_steps": 50,
                "noise_schedule": "cosine",
                "text_encoder_type": "bert" if text_dim == 768 else "clip",
            }
        )
    )
    np.save(tmp_path / "Mean.npy", np.zeros(263, dtype=np.float32))
    np.save(tmp_path / "Std.npy", np.ones(263, dtype=np.float32))
    return path, model


def cond(dim: int) -> MotionCondition:
    g = torch.Generator().manual_seed(5)
    return MotionCondition(
        TextEmbedding(
            torch.randn(2, dim, generator=g),
            torch.randn(2, 4, dim, generator=g),
            torch.ones(2, 4, dtype=torch.bool),
        )
    )


@pytest.mark.parametrize(
    ("arch", "ema", "dim"), [("trans_enc", False, 512), ("trans_enc", True, 512), ("trans_dec", False, 768)]
)
def test_import_reproduces_the_official_model(tmp_path, arch, ema, dim):
    path, model = official(tmp_path, arch=arch, ema=ema, text_dim=dim)
    out = tmp_path / "imported.safetensors"
    assert main(["import", "mdm", str(path), "--stats", str(tmp_path), "--out", str(out)]) == 0
    ckpt = load_checkpoint(out)
    assert ckpt.step == 600000 and ckpt.extra["diffusion"] == {"steps": 50, "schedule": "cosine"}
    assert ckpt.text_encoder.name == ("distilbert" if dim == 768 else "clip")
    assert not any(k.startswith("clip_model") for k in ckpt.model_state)
    ours = ckpt.build_model()
    x, t = torch.randn(2, 12, 263), torch.tensor([3, 40])
    torch.testing.assert_close(ours(x, t, cond(dim)), model(x, t, cond(dim)))


def test_import_errors(tmp_path, capsys):
    path, _ = official(tmp_path)
    (tmp_path / "args.json").unlink()
    assert (
        main(["import", "mdm", str(path), "--stats", str(tmp_path), "--out", str(tmp_path / "o.safetensors")])
        == 2
    )
    assert "args.json not found" in capsys.readouterr().err
    (tmp_path / "bad.pt").write_bytes(b"not torch")
    (tmp_path / "args.json").write_text("{}")
    from emomotion.importers.mdm import import_mdm

    with pytest.raises(CheckpointError, match="weights-only"):
        import_mdm(tmp_path / "bad.pt", tmp_path / "o.safetensors", stats=tmp_path)
