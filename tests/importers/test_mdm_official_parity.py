"""Imported official MDM checkpoints against a reference written here after the official
``model/mdm.py`` forward (GuyTevet/motion-diffusion-model): its [bs, njoints, nfeats, frames] layout,
``mask_frames`` from args.json (False by default: padded frames take part in attention), and CLIP
prompts of 20 tokens between the start and end tokens, zero-padded to 77."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from emomotion.checkpoint import load_checkpoint
from emomotion.cli import main
from emomotion.models.condition import MotionCondition
from emomotion.models.mdm import MDMConfig
from emomotion.text import build_text_encoder
from emomotion.text.base import TextEmbedding
from tests.text.test_openai_clip import VOCAB, OpenAIText, write_bpe

LATENT, FF, LAYERS, HEADS, FEATS = 64, 128, 2, 4, 263


class OfficialMDM(nn.Module):
    """The official module names, and its forward for HumanML3D features with a CLIP text embedding."""

    def __init__(self, arch: str, emb_trans_dec: bool, text_dim: int, mask_frames: bool) -> None:
        super().__init__()
        self.arch, self.emb_trans_dec, self.mask_frames = arch, emb_trans_dec, mask_frames
        self.input_process = nn.Module()
        self.input_process.poseEmbedding = nn.Linear(FEATS, LATENT)
        self.sequence_pos_encoder = nn.Module()
        position = torch.arange(5000, dtype=torch.float32)[:, None]
        div = torch.exp(torch.arange(0, LATENT, 2).float() * (-np.log(10000.0) / LATENT))
        pe = torch.zeros(5000, LATENT)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(position * div), torch.cos(position * div)
        self.sequence_pos_encoder.register_buffer("pe", pe[:, None, :])  # (max_len, 1, d)
        if arch == "trans_enc":
            layer = nn.TransformerEncoderLayer(LATENT, HEADS, FF, 0.1, activation="gelu")
            self.seqTransEncoder = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        else:
            layer = nn.TransformerDecoderLayer(LATENT, HEADS, FF, 0.1, activation="gelu")
            self.seqTransDecoder = nn.TransformerDecoder(layer, LAYERS)
        self.embed_timestep = nn.Module()
        self.embed_timestep.time_embed = nn.Sequential(
            nn.Linear(LATENT, LATENT), nn.SiLU(), nn.Linear(LATENT, LATENT)
        )
        self.embed_text = nn.Linear(text_dim, LATENT)
        self.output_process = nn.Module()
        self.output_process.poseFinal = nn.Linear(LATENT, FEATS)

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, y: dict) -> torch.Tensor:
        """x: [bs, 263, 1, frames]; y: text_embed [1, bs, text_dim], mask [bs, 1, 1, frames]."""
        bs, njoints, nfeats, nframes = x.shape
        pe = self.sequence_pos_encoder.pe
        time_emb = self.embed_timestep.time_embed(pe[timesteps]).permute(1, 0, 2)  # [1, bs, d]
        emb = self.embed_text(y["text_embed"]) + time_emb  # emb_policy 'add'
        x = self.input_process.poseEmbedding(x.permute(3, 0, 1, 2).reshape(nframes, bs, njoints * nfeats))
        frames_mask = None
        if self.mask_frames and y["mask"].shape[-1] > 1:
            frames_mask = torch.logical_not(y["mask"][..., :nframes].squeeze(1).squeeze(1))
            if self.emb_trans_dec or self.arch == "trans_enc":
                frames_mask = torch.cat([torch.zeros((bs, 1), dtype=torch.bool), frames_mask], dim=1)
        if self.arch == "trans_enc":
            xseq = torch.cat((emb, x), axis=0)
            xseq = xseq + pe[: xseq.shape[0]]
            output = self.seqTransEncoder(xseq, src_key_padding_mask=frames_mask)[1:]
        else:
            xseq = torch.cat((time_emb, x), axis=0) if self.emb_trans_dec else x
            xseq = xseq + pe[: xseq.shape[0]]
            output = self.seqTransDecoder(tgt=xseq, memory=emb, tgt_key_padding_mask=frames_mask)
            if self.emb_trans_dec:
                output = output[1:]
        output = self.output_process.poseFinal(output).reshape(nframes, bs, njoints, nfeats)
        return output.permute(1, 2, 3, 0)  # [bs, 263, 1, frames]


def write_official(folder: Path, model: OfficialMDM, text_dim: int, **args: object) -> Path:
    state = {k: v for k, v in model.state_dict().items() if not k.endswith(".pe")}
    state["clip_model.token_embedding.weight"] = torch.randn(10, 4)  # official files carry CLIP
    path = folder / "model000200000.pt"
    torch.save(state, path)
    base = {"arch": model.arch, "emb_trans_dec": model.emb_trans_dec, "latent_dim": LATENT, "layers": LAYERS,
            "dataset": "humanml", "diffusion_steps": 1000, "noise_schedule": "cosine", "text_encoder_type": "clip"}  # fmt: skip
    (folder / "args.json").write_text(json.dumps({**base, **args}))
    np.save(folder / "Mean.npy", np.zeros(FEATS, dtype=np.float32))
    np.save(folder / "Std.npy", np.ones(FEATS, dtype=np.float32))
    return path


def imported(folder: Path, path: Path, *extra: str):
    out = folder / "imported.safetensors"
    assert main(["import", "mdm", str(path), "--stats", str(folder), "--out", str(out), *extra]) == 0
    return load_checkpoint(out)


@pytest.mark.parametrize(
    ("arch", "emb_trans_dec", "mask_frames"),
    [
        ("trans_enc", False, None),
        ("trans_dec", True, None),
        ("trans_dec", False, None),
        ("trans_enc", False, True),
    ],
)
def test_padded_batch_matches_the_official_forward(tmp_path, arch, emb_trans_dec, mask_frames):
    torch.manual_seed(0)
    official = OfficialMDM(arch, emb_trans_dec, 512, bool(mask_frames)).eval()
    args = {} if mask_frames is None else {"mask_frames": mask_frames}  # absent: the official default
    ckpt = imported(tmp_path, write_official(tmp_path, official, 512, **args))
    assert ckpt.config["mask_frames"] is bool(mask_frames)
    ours = ckpt.build_model()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 20, FEATS, generator=g)  # (B, T, 263)
    lengths = torch.tensor([20, 13, 6])
    mask = torch.arange(20)[None] < lengths[:, None]  # (B, T) True on real frames
    t = torch.tensor([0, 500, 999])
    text = torch.randn(3, 512, generator=g)
    with torch.no_grad():
        got = ours(
            x,
            t,
            MotionCondition(TextEmbedding(text, text[:, None], torch.ones(3, 1, dtype=torch.bool))),
            mask,
        )
        y = {"text_embed": text[None], "mask": mask[:, None, None, :]}
        expected = official(x.permute(0, 2, 1)[:, :, None], t, y)[:, :, 0].permute(0, 2, 1)  # (B, T, 263)
    assert (got - expected).abs().max() <= 1e-5
    if not mask_frames:  # padding is attended: the real frames of a padded clip depend on it
        with torch.no_grad():
            masked = ours.__class__(MDMConfig(**{**ckpt.config, "mask_frames": True}))
            masked.load_state_dict(ours.state_dict())
            cond = MotionCondition(TextEmbedding(text, text[:, None], torch.ones(3, 1, dtype=torch.bool)))
            assert (masked.eval()(x, t, cond, mask)[2, :6] - got[2, :6]).abs().max() > 1e-3


def test_our_models_keep_masking_padding():
    assert MDMConfig().mask_frames is True
    assert MDMConfig(**{k: v for k, v in MDMConfig().__dict__.items() if k != "mask_frames"}).mask_frames


def test_clip_prompt_keeps_20_tokens_and_the_encoder_path_is_absolute(tmp_path, monkeypatch):
    clip = OpenAIText().eval()
    (tmp_path / "clip").mkdir()
    torch.save(clip.state_dict(), tmp_path / "clip" / "ViT-B-32.pt")
    write_bpe(tmp_path / "clip")
    official = OfficialMDM("trans_enc", False, 32, False).eval()
    path = write_official(tmp_path, official, 32)
    monkeypatch.chdir(tmp_path)
    ckpt = imported(tmp_path, path, "--text-encoder-path", os.path.join("clip", "ViT-B-32.pt"))
    assert ckpt.text_encoder.path == str(tmp_path / "clip" / "ViT-B-32.pt")
    monkeypatch.chdir(tmp_path.parent)  # the checkpoint works from any directory
    encoder = build_text_encoder(ckpt.text_encoder)
    a = ord("a") - 33 + 256  # the token of "a"
    twenty, longer = " ".join(["a"] * 20), " ".join(["a"] * 25)
    assert encoder.spec.max_length == 22
    for prompt in (twenty, longer):  # the 20 tokens kept whole; more cut to 20, as the encoder truncates
        ids = encoder.tokenizer(prompt, truncation=True, max_length=encoder.spec.max_length)["input_ids"]
        assert ids == [VOCAB - 2, *[a] * 20, VOCAB - 1]
    ids = torch.zeros(1, 77, dtype=torch.long)  # clip.tokenize(context_length=22) padded with zeros to 77
    ids[0, :22] = torch.tensor([VOCAB - 2, *[a] * 20, VOCAB - 1])
    with torch.no_grad():
        expected = clip(ids)[0]
    for prompt in (twenty, longer):
        got = encoder.encode([prompt]).sentence[0]
        assert (got - expected).abs().max() <= 1e-5


def test_generate_gives_an_imported_model_its_text_encoder(tmp_path, monkeypatch, capsys):
    (tmp_path / "clip").mkdir()
    torch.save(OpenAIText().state_dict(), tmp_path / "clip" / "ViT-B-32.pt")
    write_bpe(tmp_path / "clip")
    ckpt = imported(tmp_path, write_official(tmp_path, OfficialMDM("trans_enc", False, 32, False).eval(), 32))
    assert ckpt.text_encoder.path is None  # imported without one
    monkeypatch.chdir(tmp_path)
    given = load_checkpoint(ckpt.path, text_encoder_path="clip/ViT-B-32.pt")
    assert given.text_encoder.path == str(tmp_path / "clip" / "ViT-B-32.pt")
    args = ["generate", "--model", str(ckpt.path), "--text", "a person walks", "--length", "2", "--sampler",
            "ddim", "--steps", "2", "--format", "npy", "--out", "gen"]  # fmt: skip
    assert main(args) == 2 and "clip" in capsys.readouterr().err
    assert main([*args, "--text-encoder-path", "clip/ViT-B-32.pt"]) == 0
    assert list((tmp_path / "gen").rglob("*.npy"))
