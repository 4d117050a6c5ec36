"""OpenAI's CLIP ``.pt`` (TorchScript or state_dict) as our ``clip`` encoder: key conversion checked
against an independent forward pass of OpenAI's text tower, tokenizer built from the BPE merges."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch
from torch import nn

from emomotion.errors import ConfigError
from emomotion.text import TextEncoderSpec, build_text_encoder
from emomotion.text.openai_clip import BPE_FILE

MERGES = ["w a", "wa l", "wal k", "walk s</w>", "p e", "pe r", "per s", "pers o", "perso n</w>", "a n"]
WIDTH, LAYERS, EMBED, CONTEXT = 128, 2, 32, 77
VOCAB = 512 + len(MERGES) + 2


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(WIDTH, WIDTH // 64)
        self.ln_1, self.ln_2 = nn.LayerNorm(WIDTH), nn.LayerNorm(WIDTH)
        self.mlp = nn.ModuleDict({"c_fc": nn.Linear(WIDTH, 4 * WIDTH), "c_proj": nn.Linear(4 * WIDTH, WIDTH)})


class OpenAIText(nn.Module):
    """OpenAI's text-tower parameter names (the vision tower is irrelevant here)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.token_embedding = nn.Embedding(VOCAB, WIDTH)
        self.positional_embedding = nn.Parameter(torch.randn(CONTEXT, WIDTH, generator=g) * 0.01)
        self.transformer = nn.Module()
        self.transformer.resblocks = nn.Sequential(*[Block() for _ in range(LAYERS)])
        self.ln_final = nn.LayerNorm(WIDTH)
        self.text_projection = nn.Parameter(torch.randn(WIDTH, EMBED, generator=g) * WIDTH**-0.5)
        for p in self.parameters():
            if p.dim() == 1:
                p.data.normal_(0, 0.1, generator=g).add_(1.0 if p.shape[0] == WIDTH else 0.0)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """OpenAI's encode_text, written out: causal attention, QuickGELU, EOT token, projection."""
        x = self.token_embedding(ids) + self.positional_embedding[: ids.shape[1]]  # (B, L, W)
        causal = torch.full((ids.shape[1], ids.shape[1]), float("-inf")).triu(1)
        for block in self.transformer.resblocks:
            h = block.ln_1(x).transpose(0, 1)
            x = x + block.attn(h, h, h, attn_mask=causal, need_weights=False)[0].transpose(0, 1)
            h = block.mlp["c_fc"](block.ln_2(x))
            x = x + block.mlp["c_proj"](h * torch.sigmoid(1.702 * h))
        x = self.ln_final(x)
        return x[torch.arange(ids.shape[0]), ids.argmax(-1)] @ self.text_projection


def write_bpe(folder: Path) -> None:
    with gzip.open(folder / BPE_FILE, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(["#version: 0.2", *MERGES]) + "\n")


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("scripted", [True, False], ids=["torchscript", "state_dict"])
def test_openai_clip_file_matches_openai_forward(tmp_path, scripted):
    reference = OpenAIText().eval()
    path = tmp_path / "ViT-B-32.pt"
    if scripted:
        torch.jit.save(torch.jit.trace(reference, torch.tensor([[VOCAB - 2, 5, VOCAB - 1]])), str(path))
    else:
        torch.save(reference.state_dict(), path)
    write_bpe(tmp_path)
    encoder = build_text_encoder(TextEncoderSpec("clip", str(path)))
    assert encoder.dim == EMBED
    ids = encoder.tokenizer("a person walks")["input_ids"]
    assert ids[0] == VOCAB - 2 and ids[-1] == VOCAB - 1  # <|startoftext|> ... <|endoftext|>
    assert ids[1:-1] == [
        ord("a") - 33 + 256,
        512 + MERGES.index("perso n</w>"),
        512 + MERGES.index("walk s</w>"),
    ]
    with torch.no_grad():
        expected = reference(torch.tensor([ids]))[0]
    got = encoder.encode(["a person walks"]).sentence[0]
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()


def test_openai_clip_errors(tmp_path):
    path = tmp_path / "ViT-B-32.pt"
    torch.save(OpenAIText().state_dict(), path)
    with pytest.raises(ConfigError, match=BPE_FILE):
        build_text_encoder(TextEncoderSpec("clip", str(path)))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="not a CLIP checkpoint"):
        build_text_encoder(TextEncoderSpec("clip", str(bad)))
    torch.save({"w": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="lacks token_embedding"):
        build_text_encoder(TextEncoderSpec("clip", str(tmp_path / "other.pt")))
