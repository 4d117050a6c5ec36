"""Diagnose a masked motion model for codebook and token-prior collapse (the static-motion failure).

Fine-tuned MMM models have produced motion that barely moves: plausibly the token prior collapsing onto
a few "idle" codes, amplified by greedy decoding. This module measures it, on the tokens of real clips
and of generated ones: codes used and perplexity, unique tokens per clip, the longest run of one
repeated token, the Jensen-Shannon divergence between the two token histograms, the VQ's own
reconstruction error on the data, and the static rate: the share of generated clips whose mean joint
speed is below 20% of the real clips' median speed. Plots (token histograms, speed distributions) go
to an output folder.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emomotion.data import layout
from emomotion.data.dataset import MotionDataset
from emomotion.evaluation.metrics import mean_joint_speed
from emomotion.features import recover_joints
from emomotion.io.atomic import atomic_path
from emomotion.models.masked import MMM
from emomotion.models.vqvae import VQVAE
from emomotion.progress import progress_bar
from emomotion.sampling.masked import MaskedDecodingConfig, decode_tokens
from emomotion.text import TextEncoder
from emomotion.token_cache import encode_dataset

log = logging.getLogger(__name__)
STATIC_FRACTION = 0.2
DEFAULT_DECODING = MaskedDecodingConfig()


@dataclass(frozen=True)
class TokenStats:
    """Statistics of a set of token sequences over a codebook of ``num_codes``."""

    clips: int
    tokens: int
    used_codes: int
    usage: float  # used_codes / num_codes
    perplexity: float  # exp(entropy) of the pooled histogram
    unique_per_clip: float  # mean number of distinct tokens in a clip
    unique_share_per_clip: float  # mean of distinct / length
    longest_run: float  # mean over clips of the longest run of one repeated token
    longest_run_max: int
    histogram: list[int] = field(repr=False)


def longest_run(seq: np.ndarray) -> int:
    """Length of the longest run of one value in a 1-D sequence."""
    if seq.size == 0:
        return 0
    change = np.flatnonzero(np.diff(seq) != 0)
    bounds = np.concatenate([[-1], change, [seq.size - 1]])
    return int(np.diff(bounds).max())


def token_stats(sequences: Sequence[np.ndarray], num_codes: int) -> TokenStats:
    seqs = [np.asarray(s, dtype=np.int64).reshape(-1) for s in sequences if np.asarray(s).size]
    if not seqs:
        raise ValueError("token_stats needs at least one non-empty sequence")
    pooled = np.concatenate(seqs)
    hist = np.bincount(pooled, minlength=num_codes)[:num_codes]
    prob = hist / hist.sum()
    nz = prob[prob > 0]
    runs = [longest_run(s) for s in seqs]
    return TokenStats(
        clips=len(seqs),
        tokens=int(pooled.size),
        used_codes=int((hist > 0).sum()),
        usage=float((hist > 0).mean()),
        perplexity=float(np.exp(-(nz * np.log(nz)).sum())),
        unique_per_clip=float(np.mean([np.unique(s).size for s in seqs])),
        unique_share_per_clip=float(np.mean([np.unique(s).size / s.size for s in seqs])),
        longest_run=float(np.mean(runs)),
        longest_run_max=int(max(runs)),
        histogram=hist.astype(int).tolist(),
    )


def js_divergence(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (0 = same distribution, 1 = disjoint) of two histograms."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float((a[nz] * np.log2(a[nz] / m[nz])).sum())

    return 0.5 * kl(p) + 0.5 * kl(q)


@dataclass(frozen=True)
class DiagnoseReport:
    num_codes: int
    data: TokenStats
    generated: TokenStats
    js_divergence: float  # bits, data vs generated token histograms
    recon_l1: float  # VQ reconstruction, mean |x - x'| on normalised features
    recon_mpjpe: float  # VQ reconstruction, mean joint position error (m), global positions
    recon_mpjpe_aligned: float  # the same with both root joints at the origin in every frame (pose error)
    data_median_speed: float  # median over real clips of the mean joint speed (m/s)
    generated_median_speed: float
    static_rate: float  # share of generated clips slower than 20% of data_median_speed
    decoding: dict[str, object] = field(default_factory=dict)
    plots: tuple[str, ...] = ()
    recon_fid: float | None = None  # FID (evaluator) of the VQ's reconstructions against the clips

    @property
    def collapsed(self) -> bool:
        """The pattern of the static-motion failure: most generations static, or the generated token
        distribution far narrower than the data's."""
        return self.static_rate > 0.5 or self.generated.perplexity < 0.25 * self.data.perplexity

    def describe(self) -> str:
        d, g = self.data, self.generated
        lines = [
            f"codebook: {self.num_codes} codes",
            f"{'':28s}{'data':>12s}{'generated':>12s}",
            f"{'clips':28s}{d.clips:12d}{g.clips:12d}",
            f"{'codes used':28s}{d.used_codes:12d}{g.used_codes:12d}",
            f"{'codebook usage':28s}{d.usage:12.1%}{g.usage:12.1%}",
            f"{'perplexity':28s}{d.perplexity:12.1f}{g.perplexity:12.1f}",
            f"{'unique tokens per clip':28s}{d.unique_per_clip:12.1f}{g.unique_per_clip:12.1f}",
            f"{'longest repeated run':28s}{d.longest_run:12.1f}{g.longest_run:12.1f}",
            f"{'median clip speed (m/s)':28s}{self.data_median_speed:12.3f}{self.generated_median_speed:12.3f}",
            f"token histogram JS divergence: {self.js_divergence:.3f} bits",
            f"VQ reconstruction: L1 {self.recon_l1:.4f} (normalised), MPJPE {self.recon_mpjpe * 100:.1f} cm "
            f"(root-aligned {self.recon_mpjpe_aligned * 100:.1f} cm)"
            + (f", FID {self.recon_fid:.3f}" if self.recon_fid is not None else ", FID n/a (no evaluator)"),
            f"static rate: {self.static_rate:.1%} of generations move less than "
            f"{STATIC_FRACTION:.0%} of the data's median speed",
            "verdict: "
            + ("COLLAPSED (static motion / narrow token prior)" if self.collapsed else "no collapse"),
        ]
        return "\n".join(lines)

    def save(self, out: str | Path) -> Path:
        """``diagnose.json`` (histograms included) and ``diagnose.txt`` under ``out``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        payload = {**asdict(self), "collapsed": self.collapsed}
        with atomic_path(out / "diagnose.json") as tmp:
            tmp.write_text(json.dumps(payload, indent=1), encoding="utf-8")
        with atomic_path(out / "diagnose.txt") as tmp:
            tmp.write_text(self.describe() + "\n", encoding="utf-8")
        return out / "diagnose.json"


def _joints(motion_norm: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return recover_joints(motion_norm * std + mean)  # (T, 22, 3)


def _clip_motion(dataset: MotionDataset, clip_id: str, max_frames: int) -> np.ndarray:
    data = np.load(dataset.root / layout.FEATURES_DIR / f"{clip_id}.npy")[:max_frames]
    return ((data.astype(np.float32) - dataset.mean) / dataset.std).astype(np.float32)


def _plots(
    out: Path, data_hist: np.ndarray, gen_hist: np.ndarray, data_speeds: list[float], gen_speeds: list[float]
) -> tuple[str, ...]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    order = np.argsort(-data_hist, kind="stable")
    fig, ax = plt.subplots(figsize=(9, 4))
    x = np.arange(len(order))
    ax.bar(x, data_hist[order] / max(data_hist.sum(), 1), width=1.0, alpha=0.6, label="data")
    ax.bar(x, gen_hist[order] / max(gen_hist.sum(), 1), width=1.0, alpha=0.6, label="generated")
    ax.set_xlabel("code (sorted by data frequency)")
    ax.set_ylabel("share of tokens")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("token histograms")
    fig.tight_layout()
    hist_path = out / "token_histogram.png"
    fig.savefig(hist_path, dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    top = max(max(data_speeds), max(gen_speeds), 1e-6)
    bins = np.linspace(0, top * 1.05, 30)
    ax.hist(data_speeds, bins=bins, alpha=0.6, label="data")
    ax.hist(gen_speeds, bins=bins, alpha=0.6, label="generated")
    ax.axvline(STATIC_FRACTION * float(np.median(data_speeds)), color="k", ls="--", label="static threshold")
    ax.set_xlabel("mean joint speed per clip (m/s)")
    ax.set_ylabel("clips")
    ax.legend()
    fig.tight_layout()
    speed_path = out / "speed_distribution.png"
    fig.savefig(speed_path, dpi=100)
    plt.close(fig)
    return str(hist_path), str(speed_path)


@dataclass(frozen=True)
class ReconstructionStats:
    """A VQ-VAE's reconstruction of clips (encode -> decode), means over clips."""

    clips: int
    l1: float  # mean |x - x'| on normalised features
    mpjpe: float  # metres, global joint positions (the root integrated from the decoded velocities)
    mpjpe_aligned: float  # metres, both roots at the origin in every frame (pose error)
    fid: float | None  # evaluator FID of the reconstructions against the clips (None without evaluator)
    speeds: list[float] = field(repr=False)  # the clips' mean joint speeds (m/s)


@torch.no_grad()
def reconstruction_stats(
    vq: VQVAE,
    dataset: MotionDataset,
    ids: Sequence[str] | None = None,
    *,
    max_frames: int = 196,
    evaluator: Any | None = None,
) -> ReconstructionStats:
    """Encode and decode each clip of ``ids`` (default: all of ``dataset``, whose Mean/Std must be the
    VQ's) cut to ``max_frames``, and measure the error; with an ``evaluator``, also the FID of the
    reconstructions against the clips (both de-normalised, whole clips)."""
    vq = vq.eval()
    device = next(vq.parameters()).device
    ids = list(dataset.ids if ids is None else ids)
    l1, mpjpe, aligned, speeds = [], [], [], []
    real, recons = [], []
    with progress_bar("clips", transient=True) as progress:
        task = progress.add_task("reconstructing clips", total=len(ids))
        for clip_id in ids:
            x = _clip_motion(dataset, clip_id, max_frames)
            rec = vq.decode(vq.encode(torch.from_numpy(x)[None].to(device)))[0].float().cpu().numpy()
            x = x[: rec.shape[0]]
            l1.append(float(np.abs(rec - x).mean()))
            jx, jr = _joints(x, dataset.mean, dataset.std), _joints(rec, dataset.mean, dataset.std)
            mpjpe.append(float(np.linalg.norm(jx - jr, axis=-1).mean()))
            aligned.append(float(np.linalg.norm((jx - jx[:, :1]) - (jr - jr[:, :1]), axis=-1).mean()))
            speeds.append(mean_joint_speed(jx))
            if evaluator is not None:
                real.append(x * dataset.std + dataset.mean)
                recons.append(rec * dataset.std + dataset.mean)
            progress.update(task, advance=1)
    score = None
    if evaluator is not None:
        from emomotion.evaluation.evalset import embed_motions
        from emomotion.evaluation.metrics import fid

        score = float(fid(embed_motions(evaluator, real), embed_motions(evaluator, recons)))
    return ReconstructionStats(
        clips=len(ids),
        l1=float(np.mean(l1)),
        mpjpe=float(np.mean(mpjpe)),
        mpjpe_aligned=float(np.mean(aligned)),
        fid=score,
        speeds=speeds,
    )


@torch.no_grad()
def diagnose_tokens(
    vq: VQVAE,
    dataset: MotionDataset,
    generated: Sequence[torch.Tensor],
    *,
    num_codes: int,
    max_clips: int | None = None,
    max_frames: int = 196,
    out: str | Path | None = None,
    cache_dir: str | Path | None = None,
    decoding: dict[str, object] | None = None,
    evaluator: Any | None = None,
) -> DiagnoseReport:
    """The report for ``generated`` token sequences (each (n,), codes only) against ``dataset``, whose
    Mean/Std must be the model's. Data tokens come from :func:`encode_dataset` (cached when asked).
    With an ``evaluator`` the reconstructions' FID against the clips is reported too."""
    vq = vq.eval()
    device = next(vq.parameters()).device
    tokens = encode_dataset(vq, dataset, cache_dir, device)
    ids = dataset.ids[:max_clips] if max_clips else dataset.ids
    data_seqs = [tokens[i].numpy() for i in ids]
    recon = reconstruction_stats(vq, dataset, ids, max_frames=max_frames, evaluator=evaluator)
    gen_speeds = []
    for seq in generated:
        motion = vq.decode(seq.reshape(1, -1).to(device))[0].cpu().numpy()
        gen_speeds.append(mean_joint_speed(_joints(motion, dataset.mean, dataset.std)))
    data_stats = token_stats(data_seqs, num_codes)
    gen_stats = token_stats([s.cpu().numpy() for s in generated], num_codes)
    data_speeds = recon.speeds
    median = float(np.median(data_speeds))
    plots: tuple[str, ...] = ()
    if out is not None:
        plots = _plots(
            Path(out),
            np.asarray(data_stats.histogram),
            np.asarray(gen_stats.histogram),
            data_speeds,
            gen_speeds,
        )
    return DiagnoseReport(
        num_codes=num_codes,
        data=data_stats,
        generated=gen_stats,
        js_divergence=js_divergence(data_stats.histogram, gen_stats.histogram),
        recon_l1=recon.l1,
        recon_mpjpe=recon.mpjpe,
        recon_mpjpe_aligned=recon.mpjpe_aligned,
        recon_fid=recon.fid,
        data_median_speed=median,
        generated_median_speed=float(np.median(gen_speeds)),
        static_rate=float(np.mean([s < STATIC_FRACTION * median for s in gen_speeds])),
        decoding=decoding or {},
        plots=plots,
    )


@torch.no_grad()
def diagnose_mmm(
    model: MMM,
    dataset: MotionDataset,
    text_encoder: TextEncoder,
    *,
    decoding: MaskedDecodingConfig = DEFAULT_DECODING,
    num_generations: int = 64,
    batch_size: int = 16,
    seed: int = 0,
    out: str | Path | None = None,
    cache_dir: str | Path | None = None,
    max_clips: int | None = None,
    evaluator: Any | None = None,
) -> DiagnoseReport:
    """Generate from the captions and lengths of the first ``num_generations`` clips of ``dataset``
    (Mean/Std must be the model's) and compare with the data (see :func:`diagnose_tokens`)."""
    model = model.eval()
    device = next(model.parameters()).device
    fpt, max_tokens = model.frames_per_token, model.cfg.trans.max_tokens
    ids = dataset.ids[: min(num_generations, len(dataset))]
    texts, counts = [], []
    for i, clip_id in enumerate(ids):
        captions = layout.read_captions(dataset.root, clip_id)
        texts.append(captions[0].text if captions else "")
        counts.append(int(min(max(int(dataset.lengths[i]) // fpt, 1), max_tokens)))
    generated: list[torch.Tensor] = []
    k = model.cfg.trans.num_codes
    for start in range(0, len(ids), batch_size):
        text = text_encoder.encode(texts[start : start + batch_size], device=device)
        out_ids = decode_tokens(model, text, counts[start : start + batch_size], decoding, seed=seed + start)
        generated += [row[row < k].cpu() for row in out_ids]
    return diagnose_tokens(
        model.vq,
        dataset,
        generated,
        num_codes=k,
        max_clips=max_clips,
        max_frames=max_tokens * fpt,
        out=out,
        cache_dir=cache_dir,
        decoding=asdict(decoding),
        evaluator=evaluator,
    )


def diagnose_checkpoint(
    checkpoint: str | Path,
    data: str | Path,
    out: str | Path,
    *,
    split: str = "test",
    decoding: MaskedDecodingConfig = DEFAULT_DECODING,
    num_generations: int = 64,
    seed: int = 0,
    device: str = "cpu",
    cache_dir: str | Path | None = None,
    evaluator: str | Path | None = None,
) -> DiagnoseReport:
    """The CLI's entry: load an ``mmm`` checkpoint, diagnose it on ``data``'s ``split`` with the
    checkpoint's normalisation, write plots and ``diagnose.{json,txt}`` to ``out``; with an
    ``evaluator`` checkpoint, the VQ's reconstruction FID too."""
    from emomotion.checkpoint import load_checkpoint
    from emomotion.data.dataset import DatasetConfig
    from emomotion.errors import CheckpointError
    from emomotion.text import build_text_encoder

    ckpt = load_checkpoint(checkpoint)
    if ckpt.kind != "mmm":
        raise CheckpointError(f"diagnose needs an mmm checkpoint, found kind {ckpt.kind!r}", path=ckpt.path)
    model = ckpt.build_model().to(device)
    dataset = MotionDataset(DatasetConfig(Path(data), split=split, random_crop=False))
    dataset.mean, dataset.std = ckpt.mean.numpy(), ckpt.std.numpy()
    report = diagnose_mmm(
        model,
        dataset,
        build_text_encoder(ckpt.text_encoder),
        decoding=decoding,
        num_generations=num_generations,
        seed=seed,
        out=out,
        cache_dir=cache_dir,
        evaluator=load_checkpoint(evaluator).build_model().to(device).eval() if evaluator else None,
    )
    report.save(out)
    log.info("diagnosis of %s:\n%s", ckpt.path, report.describe())
    return report
