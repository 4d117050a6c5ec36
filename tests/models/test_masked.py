"""The MMM masked transformer: official key layout, masking of padding and text, rebuild from its
config, and that the tiny preset overfits one clip's tokens."""

from __future__ import annotations

import pytest
import torch

from emomotion.configs import config_dict
from emomotion.errors import ConfigError
from emomotion.models.masked import MMM, MMMConfig, build_from_config, mmm_config
from emomotion.models.vqvae import preset as vq_preset
from emomotion.text.base import TextEmbedding
from emomotion.training.mmm import MaskingConfig, mask_tokens

TEXT_DIM = 8


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_mmm(seed: int = 0) -> MMM:
    torch.manual_seed(seed)
    model = MMM(mmm_config(vq_preset("tiny"), "tiny", text_dim=TEXT_DIM))
    model.vq.quantizer.codebook.normal_()
    model.vq.quantizer.initted.fill_(True)
    return model


def text(b: int = 2, words: int = 5, seed: int = 0) -> TextEmbedding:
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(b, words, dtype=torch.bool)
    mask[0, 3:] = False
    return TextEmbedding(
        torch.randn(b, TEXT_DIM, generator=g), torch.randn(b, words, TEXT_DIM, generator=g), mask
    )


def sequence(model: MMM, lengths: list[int], n: int) -> tuple[torch.Tensor, torch.Tensor]:
    t = model.cfg.trans
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, t.num_codes, (len(lengths), n + 1), generator=g)
    pos = torch.arange(n + 1)[None]
    length = torch.tensor(lengths)[:, None]
    ids = torch.where(pos == length, t.end_id, torch.where(pos > length, t.pad_id, ids))
    ids[:, ::3] = torch.where(ids[:, ::3] < t.num_codes, t.mask_id, ids[:, ::3])
    return ids, pos <= length


def test_official_key_layout():
    model = MMM(mmm_config(vq_preset("tiny"), "tiny", text_dim=TEXT_DIM))
    state = model.state_dict()
    k, d, c = 64, 64, 16
    assert state["trans.trans_base.learn_tok_emb.weight"].shape == (3, c)  # END, PAD, MASK
    assert state["trans.trans_base.to_emb.weight"].shape == (d, c)
    assert state["trans.trans_base.cond_emb.weight"].shape == (d, TEXT_DIM)
    assert state["trans.trans_base.word_emb.weight"].shape == (d, TEXT_DIM)
    assert state["trans.trans_base.pos_embed.embed"].shape == (51, 1, d)
    assert state["trans.trans_head.head.weight"].shape == (k, d)
    for key in ("blocks.1.attn.query.weight", "cross_att.0.ln3.weight", "cross_att.0.attn.key.weight"):
        assert f"trans.trans_base.{key}" in state
    assert "trans.trans_head.blocks.2.mlp.2.weight" in state and "trans.trans_head.ln_f.bias" in state
    assert not any(k.startswith("trans.trans_base.blocks.2.") for k in state)  # 3 layers - 1 local
    assert state["vq.quantizer.codebook"].shape == (k, c)


def test_official_preset_size():
    with torch.device("meta"):
        model = MMM(mmm_config(vq_preset("mmm"), "mmm", text_dim=512))
    trans = sum(p.numel() for p in model.trans.parameters())
    assert 235e6 < trans < 237e6  # the paper's ~236M transformer
    assert model.cfg.trans.max_tokens * model.frames_per_token == 196


def test_padding_and_dropped_text_do_not_leak():
    model = tiny_mmm().eval()
    ids, token_mask = sequence(model, [6, 9], 12)
    emb = text()
    logits = model(ids, emb, token_mask)
    assert logits.shape == (2, 13, 64)
    other = ids.clone()
    other[0, 8:] = 5  # beyond sample 0's END: padding positions, whatever they hold
    assert torch.allclose(model(other, emb, token_mask)[0, :7], logits[0, :7], atol=1e-5)
    drop = torch.tensor([True, True])
    a = model(ids, emb, token_mask, drop)
    b = model(ids, text(seed=5), token_mask, drop)
    assert torch.allclose(a, b, atol=1e-5) and not torch.allclose(a, logits, atol=1e-3)
    padded_words = emb.tokens.clone()
    padded_words[0, 3:] = 7.0  # sample 0 has 3 real words
    same = model(ids, TextEmbedding(emb.sentence, padded_words, emb.mask), token_mask)
    assert torch.allclose(same[0], logits[0], atol=1e-5)


def test_rebuild_from_config_gives_identical_outputs():
    model = tiny_mmm().eval()
    config = {"vq": config_dict(model.cfg.vq), "trans": config_dict(model.cfg.trans)}
    again = build_from_config(config).eval()
    again.load_state_dict(model.state_dict())
    ids, token_mask = sequence(model, [6, 9], 12)
    assert torch.equal(again(ids, text(), token_mask), model(ids, text(), token_mask))


def test_config_rejects_mismatched_codebooks():
    with pytest.raises(ConfigError, match="residual"):
        mmm_config(vq_preset("tiny", quantizer="residual", num_quantizers=2), "tiny")
    with pytest.raises(ConfigError, match="codebook"):
        MMMConfig(vq_preset("tiny"), mmm_config(vq_preset("small"), "tiny").trans)
    fsq = MMM(
        mmm_config(
            vq_preset("tiny", quantizer="fsq", fsq_levels=(4, 4), code_dim=2), "tiny", text_dim=TEXT_DIM
        )
    )
    assert fsq.cfg.trans.num_codes == 16
    ids, token_mask = sequence(fsq, [3, 5], 6)
    assert fsq(ids.clamp(max=18), text(), token_mask).shape == (2, 7, 16)


def test_tiny_overfits_one_clip_tokens():
    """300 steps on one 24-token sequence with fresh random masks: on 10 new random maskings the
    masked-token accuracy is above 90% (chance is 1/64)."""
    model = tiny_mmm()
    g = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, 64, (1, 24), generator=g)
    emb = text(1)
    n = torch.tensor([24])
    masking = MaskingConfig(replace_prob=0.0)
    opt = torch.optim.AdamW(model.trans.parameters(), lr=2e-3)
    model.train()
    for _ in range(300):
        mb = mask_tokens(tokens.repeat(8, 1), n.repeat(8), model, masking)
        logits = model(
            mb.inputs,
            TextEmbedding(emb.sentence.repeat(8, 1), emb.tokens.repeat(8, 1, 1), emb.mask.repeat(8, 1)),
            mb.token_mask,
        )
        loss = torch.nn.functional.cross_entropy(logits[mb.masked], mb.targets[mb.masked])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    torch.manual_seed(123)
    right = total = 0
    with torch.no_grad():
        for _ in range(10):
            mb = mask_tokens(tokens, n, model, masking)
            pred = model(mb.inputs, emb, mb.token_mask).argmax(-1)
            right += int((pred[mb.masked] == mb.targets[mb.masked]).sum())
            total += int(mb.masked.sum())
    assert right / total > 0.9, right / total
