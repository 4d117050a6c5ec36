"""Text encoders: the offline MiniLM default, local-folder DistilBERT and CLIP, the cache, errors."""

from __future__ import annotations

import json

import pytest
import torch

from emomotion.errors import ConfigError
from emomotion.text import TextEncoderSpec, build_text_encoder, text_encoder_names


@pytest.fixture(scope="module")
def minilm():
    return build_text_encoder("minilm")


def test_registry():
    assert {"minilm", "clip", "distilbert"} <= set(text_encoder_names())
    with pytest.raises(ConfigError, match="unknown text encoder"):
        build_text_encoder("glove")


def test_minilm_offline_shapes_and_meaning(minilm):
    texts = ["a person walks sadly", "a person walks happily", "someone throws a ball angrily"]
    emb = minilm.encode(texts)
    assert emb.sentence.shape == (3, 384) and emb.tokens.shape[0] == 3 and emb.tokens.shape[2] == 384
    assert emb.mask.dtype == torch.bool and emb.mask[:, 0].all()
    s = torch.nn.functional.normalize(emb.sentence, dim=-1)
    sim = s @ s.T
    assert sim[0, 1] > sim[0, 2] and sim[0, 1] > sim[1, 2]
    assert not any(p.requires_grad for p in minilm.parameters())


def test_cache_gives_identical_embeddings_and_padding(minilm):
    first = minilm.encode(["a person jumps", "a person walks forward and then turns around slowly"])
    again = minilm.encode(["a person jumps"])
    assert torch.equal(first.sentence[0], again.sentence[0])
    n = int(first.mask[0].sum())
    assert torch.equal(first.tokens[0, :n], again.tokens[0, :n]) and not first.mask[0, n:].any()
    assert "a person jumps" in minilm._cache


def test_missing_local_folders_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="needs a local folder"):
        build_text_encoder(TextEncoderSpec("clip"))
    with pytest.raises(ConfigError, match="not found"):
        build_text_encoder(TextEncoderSpec("distilbert", str(tmp_path / "nope")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"lacks config\.json"):
        build_text_encoder(TextEncoderSpec("clip", str(tmp_path / "empty")))


WORDS = ["a", "person", "walks", "sadly", "happily", "jumps"]


def test_tiny_local_distilbert(tmp_path):
    from transformers import BertTokenizer, DistilBertConfig, DistilBertModel

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    BertTokenizer(str(vocab)).save_pretrained(tmp_path)
    cfg = DistilBertConfig(
        vocab_size=11, dim=32, hidden_dim=64, n_layers=1, n_heads=2, max_position_embeddings=64
    )
    torch.manual_seed(0)
    DistilBertModel(cfg).save_pretrained(tmp_path)
    enc = build_text_encoder(TextEncoderSpec("distilbert", str(tmp_path)))
    emb = enc.encode(["a person walks sadly", "a person jumps"])
    assert enc.dim == 32 and emb.sentence.shape == (2, 32) and emb.tokens.shape[1] == 6
    assert emb.mask.sum(1).tolist() == [6, 5]


def test_tiny_local_clip(tmp_path):
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer

    tokens = (
        ["<|startoftext|>", "<|endoftext|>"]
        + [w + "</w>" for w in WORDS]
        + list("abcdefghijklmnopqrstuvwxyz")
    )
    (tmp_path / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt")).save_pretrained(tmp_path)
    cfg = CLIPTextConfig(
        vocab_size=len(tokens),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=77,
        projection_dim=16,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    torch.manual_seed(0)
    CLIPTextModelWithProjection(cfg).save_pretrained(tmp_path)
    enc = build_text_encoder(TextEncoderSpec("clip", str(tmp_path)))
    emb = enc.encode(["a person walks sadly", "a person jumps"])
    assert enc.dim == 16 and emb.sentence.shape == (2, 16) and emb.tokens.shape[2] == 16
