"""Official MMM checkpoints (exitudio/MMM layout, tiny sizes built here) import into one ``mmm``
checkpoint: sizes read off the weights, the VQ taken from the VQ file, a differing VQ copy reported,
weights placed where the official code uses them."""

from __future__ import annotations

import logging
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from emomotion.checkpoint import load_checkpoint
from emomotion.errors import CheckpointError
from emomotion.importers.mmm import import_mmm

K, C, W, DEPTH, DOWN = 32, 8, 16, 3, 2  # codebook, code dim, VQ width, ResNet depth, downsamplings
D, CLIP, BLOCK, LAYERS, LOCAL, HEADS = 32, 12, 11, 3, 1, 4  # transformer sizes


def conv(out: int, inp: int, k: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        "weight": torch.randn(out, inp, k, generator=g) * 0.1,
        "bias": torch.randn(out, generator=g) * 0.1,
    }


def official_vq(seed: int = 0) -> dict[str, torch.Tensor]:
    """``HumanVQVAE.state_dict()`` key names and shapes (models/vqvae.py, encdec.py, resnet.py)."""
    g = torch.Generator().manual_seed(seed)
    parts: dict[str, dict[str, torch.Tensor]] = {"encoder.model.0": conv(W, 263, 3, g)}
    for i in range(DOWN):
        parts[f"encoder.model.{2 + i}.0"] = conv(W, W, 4, g)
        for j in range(DEPTH):
            parts[f"encoder.model.{2 + i}.1.model.{j}.conv1"] = conv(W, W, 3, g)
            parts[f"encoder.model.{2 + i}.1.model.{j}.conv2"] = conv(W, W, 1, g)
    parts[f"encoder.model.{2 + DOWN}"] = conv(C, W, 3, g)
    parts["decoder.model.0"] = conv(W, C, 3, g)
    for i in range(DOWN):
        for j in range(DEPTH):
            parts[f"decoder.model.{2 + i}.0.model.{j}.conv1"] = conv(W, W, 3, g)
            parts[f"decoder.model.{2 + i}.0.model.{j}.conv2"] = conv(W, W, 1, g)
        parts[f"decoder.model.{2 + i}.2"] = conv(W, W, 3, g)
    parts[f"decoder.model.{2 + DOWN}"] = conv(W, W, 3, g)
    parts[f"decoder.model.{4 + DOWN}"] = conv(263, W, 3, g)
    state = {f"vqvae.{name}.{k}": v for name, p in parts.items() for k, v in p.items()}
    state["vqvae.quantizer.codebook"] = torch.randn(K, C, generator=g)
    return state


def linear(prefix: str, out: int, inp: int, g: torch.Generator, bias: bool = True) -> dict[str, torch.Tensor]:
    state = {f"{prefix}.weight": torch.randn(out, inp, generator=g) * 0.1}
    if bias:
        state[f"{prefix}.bias"] = torch.randn(out, generator=g) * 0.1
    return state


def norm(prefix: str, g: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        f"{prefix}.weight": 1 + 0.1 * torch.randn(D, generator=g),
        f"{prefix}.bias": 0.1 * torch.randn(D, generator=g),
    }


def block(prefix: str, g: torch.Generator, cross: bool = False) -> dict[str, torch.Tensor]:
    state = {**norm(f"{prefix}.ln1", g), **norm(f"{prefix}.ln2", g)}
    if cross:
        state.update(norm(f"{prefix}.ln3", g))
        state[f"{prefix}.attn.mask"] = torch.tril(torch.ones(BLOCK, 77)).view(1, 1, BLOCK, 77)
    for name in ("key", "query", "value", "proj"):
        state.update(linear(f"{prefix}.attn.{name}", D, D, g))
    state.update(linear(f"{prefix}.mlp.0", 4 * D, D, g))
    state.update(linear(f"{prefix}.mlp.2", D, 4 * D, g))
    return state


def sincos(length: int, dim: int) -> torch.Tensor:
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
    return pe[:, None]


def official_trans(vq: dict[str, torch.Tensor], seed: int = 1) -> dict[str, torch.Tensor]:
    """``Text2Motion_Transformer.state_dict()`` names and shapes (models/t2m_trans.py), VQ copy included."""
    g = torch.Generator().manual_seed(seed)
    state = {f"trans_base.vqvae.{k}": v.clone() for k, v in vq.items()}
    state["trans_base.learn_tok_emb.weight"] = torch.randn(3, C, generator=g)
    state.update(linear("trans_base.to_emb", D, C, g))
    state.update(linear("trans_base.cond_emb", D, CLIP, g))
    state["trans_base.pos_embedding.weight"] = torch.randn(BLOCK, D, generator=g)
    state["trans_base.pos_embed.embed"] = sincos(BLOCK, D)
    state.update(linear("trans_base.word_emb", D, CLIP, g))
    for i in range(LAYERS - LOCAL):
        state.update(block(f"trans_base.blocks.{i}", g))
    for i in range(LOCAL):
        state.update(block(f"trans_base.cross_att.{i}", g, cross=True))
    for i in range(LAYERS):
        state.update(block(f"trans_head.blocks.{i}", g))
    state.update(norm("trans_head.ln_f", g))
    state.update(linear("trans_head.head", K, D, g, bias=False))
    return state


@pytest.fixture
def files(tmp_path) -> tuple[Path, Path, Path]:
    vq = official_vq()
    torch.save({"net": vq}, tmp_path / "vq.pth")
    torch.save({"trans": official_trans(vq)}, tmp_path / "trans.pth")
    stats = tmp_path / "stats"
    stats.mkdir()
    np.save(stats / "Mean.npy", np.zeros(263, np.float32))
    np.save(stats / "Std.npy", np.ones(263, np.float32))
    return tmp_path / "vq.pth", tmp_path / "trans.pth", stats


def official_block(x: torch.Tensor, s: dict[str, torch.Tensor], p: str, keep: torch.Tensor) -> torch.Tensor:
    """The official ``Block.forward`` written out: -inf on masked keys, softmax, GELU MLP."""
    ln = lambda t, n: torch.nn.functional.layer_norm(t, (D,), s[f"{p}.{n}.weight"], s[f"{p}.{n}.bias"])  # noqa: E731
    lin = lambda t, n: t @ s[f"{p}.{n}.weight"].t() + s[f"{p}.{n}.bias"]  # noqa: E731
    b, t, _ = x.shape
    h = ln(x, "ln1")
    split = lambda y: y.view(b, t, HEADS, D // HEADS).transpose(1, 2)  # noqa: E731
    q, k, v = split(lin(h, "attn.query")), split(lin(h, "attn.key")), split(lin(h, "attn.value"))
    att = q @ k.transpose(-2, -1) / math.sqrt(D // HEADS)
    att = att.masked_fill(~keep[:, None, None, :], float("-inf")).softmax(-1)
    y = lin((att @ v).transpose(1, 2).reshape(b, t, D), "attn.proj")
    x = x + y
    return x + lin(torch.nn.functional.gelu(lin(ln(x, "ln2"), "mlp.0")), "mlp.2")


def test_import_reads_sizes_and_places_weights(files, tmp_path, caplog):
    vq_path, trans_path, stats = files
    with caplog.at_level(logging.WARNING, logger="emomotion.importers.mmm"):
        out = import_mmm(vq_path, trans_path, tmp_path / "mmm.safetensors", stats=stats, num_heads=HEADS)
    assert not caplog.records  # the copy equals the VQ file
    ckpt = load_checkpoint(out)
    vq_cfg, trans_cfg = ckpt.config["vq"], ckpt.config["trans"]
    assert (vq_cfg["num_codes"], vq_cfg["code_dim"], vq_cfg["width"], vq_cfg["depth"], vq_cfg["down_t"]) == (
        K,
        C,
        W,
        DEPTH,
        DOWN,
    )
    assert (trans_cfg["embed_dim"], trans_cfg["text_dim"], trans_cfg["block_size"]) == (D, CLIP, BLOCK)
    assert (trans_cfg["num_layers"], trans_cfg["num_local_layers"], trans_cfg["text_drop_prob"]) == (
        LAYERS,
        LOCAL,
        0.0,
    )
    assert ckpt.text_encoder.name == "clip"
    model = ckpt.build_model()
    official = torch.load(trans_path, weights_only=True)["trans"]
    vq = torch.load(vq_path, weights_only=True)["net"]
    assert torch.equal(model.vq.quantizer.codebook, vq["vqvae.quantizer.codebook"])
    assert torch.equal(model.vq.quantizer.code_sum, vq["vqvae.quantizer.codebook"]) and bool(
        model.vq.quantizer.initted
    )
    assert torch.equal(model.trans.trans_head.head.weight, official["trans_head.head.weight"])
    x = torch.randn(2, 6, D)
    keep = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    ours = model.trans.trans_base.blocks[1](x, keep)
    assert torch.allclose(ours, official_block(x, official, "trans_base.blocks.1", keep), atol=1e-5)
    motion = model.vq.decode(torch.tensor([[1, 2, 3]]))
    assert motion.shape == (1, 12, 263)


def test_a_differing_vq_copy_is_reported_and_the_vq_file_wins(files, tmp_path, caplog):
    vq_path, trans_path, stats = files
    trans = torch.load(trans_path, weights_only=True)["trans"]
    trans["trans_base.vqvae.vqvae.quantizer.codebook"] = (
        trans["trans_base.vqvae.vqvae.quantizer.codebook"] + 1
    )
    torch.save({"trans": trans}, tmp_path / "other.pth")
    with caplog.at_level(logging.WARNING, logger="emomotion.importers.mmm"):
        out = import_mmm(
            vq_path, tmp_path / "other.pth", tmp_path / "m.safetensors", stats=stats, num_heads=HEADS
        )
    assert any("differs" in r.getMessage() for r in caplog.records)
    codebook = torch.load(vq_path, weights_only=True)["net"]["vqvae.quantizer.codebook"]
    assert torch.equal(load_checkpoint(out).model_state["vq.quantizer.codebook"], codebook)


def test_bad_files_are_clear_errors(files, tmp_path):
    vq_path, trans_path, stats = files
    with pytest.raises(CheckpointError, match="'trans'"):
        import_mmm(vq_path, vq_path, tmp_path / "x.safetensors", stats=stats)
    trans = torch.load(trans_path, weights_only=True)["trans"]
    del trans["trans_head.head.weight"]
    torch.save({"trans": trans}, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError, match="head"):
        import_mmm(vq_path, tmp_path / "broken.pth", tmp_path / "x.safetensors", stats=stats)
    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"net": Path("x")}, protocol=2))
    with pytest.raises(CheckpointError, match="weights-only"):
        import_mmm(tmp_path / "evil.pth", trans_path, tmp_path / "x.safetensors", stats=stats)
    with pytest.raises(CheckpointError, match="not found"):
        import_mmm(tmp_path / "missing.pth", trans_path, tmp_path / "x.safetensors", stats=stats)
