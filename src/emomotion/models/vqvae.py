"""The motion VQ-VAE of T2M-GPT / MMM (Zhang et al. 2023; Pinyoanuntapong et al. 2024), official layout.

A 1D-convolutional encoder turns (B, T, 263) motion into one latent per ``2 ** down_t`` frames (4 with
the official ``down_t = 2``), a quantizer (:mod:`emomotion.models.quantizers`) maps each latent to a
codebook entry, and a mirrored decoder (nearest upsampling) turns codes back into motion. Each
ResNet1D stage has ``depth`` dilated residual blocks, dilations ``rate ** i`` in reverse order (9, 3, 1
for depth 3), ReLU, no normalisation. Module names follow ``exitudio/MMM:models/{vqvae,encdec,resnet}.py``
below the official ``vqvae.`` prefix (``encoder.model.*``, ``decoder.model.*``, ``quantizer.codebook``),
so ``{'net': state_dict}`` files load by stripping ``vqvae.``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from emomotion import skeleton as sk
from emomotion.errors import ConfigError
from emomotion.features import RIC, recover_joints_t
from emomotion.models.quantizers import QUANTIZERS, build_quantizer


@dataclass(frozen=True)
class VQVAEConfig:
    num_codes: int = 8192
    code_dim: int = 32
    width: int = 512
    depth: int = 3
    down_t: int = 2
    dilation_growth_rate: int = 3
    quantizer: str = "ema_reset"  # one of QUANTIZERS
    mu: float = 0.99  # codebook EMA decay
    dead_code_threshold: float = 2.0  # kmeans / residual: EMA count below which a code is replaced
    num_quantizers: int = 1  # residual: number of residual layers
    fsq_levels: tuple[int, ...] = (8, 5, 5, 5)  # fsq: levels per latent channel (codebook = product)
    input_dim: int = sk.FEATURE_DIM
    commit_weight: float = 0.02
    joint_weight: float = 0.5  # SmoothL1 on the root-relative joint positions (features 4:67)
    # losses beyond the official objective (0 = off, the official behaviour):
    root_weight: float = 0.0  # extra SmoothL1 on the root features (yaw and xz velocity, height; 0:4)
    # L1 in metres on the global joint positions recovered from the de-normalised features: the root
    # velocities integrated over the window, so drift of the trajectory is penalised (needs Mean/Std)
    position_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.quantizer not in QUANTIZERS:
            raise ConfigError(f"unknown quantizer {self.quantizer!r}; choose from {', '.join(QUANTIZERS)}")
        if min(self.num_codes, self.code_dim, self.width, self.depth, self.down_t) < 1:
            raise ConfigError("num_codes, code_dim, width, depth and down_t must be >= 1")
        if not 0.0 < self.mu < 1.0:
            raise ConfigError(f"mu must be in (0, 1), got {self.mu}")
        if self.quantizer == "residual" and self.num_quantizers < 2:
            raise ConfigError("residual VQ needs num_quantizers >= 2")
        if min(self.commit_weight, self.joint_weight, self.root_weight, self.position_weight) < 0:
            raise ConfigError("loss weights must be >= 0")
        if self.quantizer == "fsq" and (not self.fsq_levels or min(self.fsq_levels) < 2):
            raise ConfigError("fsq needs fsq_levels, each >= 2")
        object.__setattr__(self, "fsq_levels", tuple(self.fsq_levels))  # JSON round trips give lists

    @property
    def frames_per_token(self) -> int:
        return 2**self.down_t

    @property
    def codebook_size(self) -> int:
        """Number of distinct token ids (for FSQ, the product of its levels)."""
        if self.quantizer == "fsq":
            size = 1
            for level in self.fsq_levels:
                size *= level
            return size
        return self.num_codes


PRESETS: dict[str, VQVAEConfig] = {
    "tiny": VQVAEConfig(num_codes=64, code_dim=16, width=32, depth=2),
    "small": VQVAEConfig(num_codes=512, code_dim=32, width=128),
    "small_traj": VQVAEConfig(num_codes=512, code_dim=32, width=128, position_weight=0.25),
    "mmm": VQVAEConfig(),
}
"""``tiny`` for tests, ``small`` for the CPU study, ``small_traj`` the same with the global joint-position
loss (issue #15: it bounds the trajectory drift), ``mmm`` the official size (8192 x 32, width 512)."""


def preset(name: str, **overrides: Any) -> VQVAEConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown VQ-VAE preset {name!r}; choose from {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)


class ResConv1DBlock(nn.Module):
    """ReLU -> dilated conv3 -> ReLU -> conv1, plus the input (``ResConv1DBlock`` without norm)."""

    def __init__(self, width: int, dilation: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(width, width, 3, 1, dilation, dilation)
        self.conv2 = nn.Conv1d(width, width, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class Resnet1D(nn.Module):
    def __init__(self, width: int, depth: int, rate: int) -> None:
        super().__init__()
        self.model = nn.Sequential(*[ResConv1DBlock(width, rate**i) for i in reversed(range(depth))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Encoder(nn.Module):
    """(B, 263, T) -> (B, code_dim, T / 2**down_t)."""

    def __init__(self, cfg: VQVAEConfig) -> None:
        super().__init__()
        w = cfg.width
        blocks: list[nn.Module] = [nn.Conv1d(cfg.input_dim, w, 3, 1, 1), nn.ReLU()]
        for _ in range(cfg.down_t):
            blocks.append(
                nn.Sequential(nn.Conv1d(w, w, 4, 2, 1), Resnet1D(w, cfg.depth, cfg.dilation_growth_rate))
            )
        blocks.append(nn.Conv1d(w, cfg.code_dim, 3, 1, 1))
        self.model = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Decoder(nn.Module):
    """(B, code_dim, N) -> (B, 263, N * 2**down_t)."""

    def __init__(self, cfg: VQVAEConfig) -> None:
        super().__init__()
        w = cfg.width
        blocks: list[nn.Module] = [nn.Conv1d(cfg.code_dim, w, 3, 1, 1), nn.ReLU()]
        for _ in range(cfg.down_t):
            blocks.append(
                nn.Sequential(
                    Resnet1D(w, cfg.depth, cfg.dilation_growth_rate),
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv1d(w, w, 3, 1, 1),
                )
            )
        blocks += [nn.Conv1d(w, w, 3, 1, 1), nn.ReLU(), nn.Conv1d(w, cfg.input_dim, 3, 1, 1)]
        self.model = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@dataclass(frozen=True)
class VQOutput:
    recon: torch.Tensor  # (B, T', 263), T' = T rounded down to whole tokens
    commit_loss: torch.Tensor  # ()
    perplexity: torch.Tensor  # ()
    tokens: torch.Tensor  # (B, N) or (B, N, Q)


class VQVAE(nn.Module):
    """Motion (B, T, 263) <-> tokens (B, T // 4) (see the module docstring)."""

    def __init__(self, cfg: VQVAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quantizer = build_quantizer(
            cfg.quantizer,
            cfg.num_codes,
            cfg.code_dim,
            mu=cfg.mu,
            dead_code_threshold=cfg.dead_code_threshold,
            num_quantizers=cfg.num_quantizers,
            fsq_levels=cfg.fsq_levels,
        )

    @property
    def frames_per_token(self) -> int:
        return self.cfg.frames_per_token

    def _latents(self, motion: torch.Tensor) -> torch.Tensor:
        """(B, T, 263) -> (B, T // 4, code_dim); trailing frames that do not fill a token are dropped."""
        t = motion.shape[1] - motion.shape[1] % self.frames_per_token
        if t == 0:
            raise ConfigError(f"motion of {motion.shape[1]} frames is shorter than one token")
        return self.encoder(motion[:, :t].float().transpose(1, 2)).transpose(1, 2)

    def encode(self, motion: torch.Tensor) -> torch.Tensor:
        """(B, T, 263) -> tokens (B, T // 4) long ((B, T // 4, Q) for residual VQ). Never updates codes."""
        return self.quantizer.quantize(self._latents(motion))

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, N) -> motion (B, 4 N, 263)."""
        codes = self.quantizer.dequantize(tokens)  # (B, N, code_dim)
        return self.decoder(codes.transpose(1, 2)).transpose(1, 2)

    def quantize_motion(self, motion: torch.Tensor, mask: torch.Tensor | None = None) -> VQOutput:
        """The full pass; ``mask`` (B, T) marks real frames (padded tokens do not update the codebook)."""
        z = self._latents(motion)  # (B, N, D)
        token_mask = None
        if mask is not None:
            n = z.shape[1]
            token_mask = mask[:, : n * self.frames_per_token].reshape(mask.shape[0], n, -1).all(-1)
        zq, commit, perplexity, tokens = self.quantizer(z, token_mask)
        recon = self.decoder(zq.transpose(1, 2)).transpose(1, 2)
        return VQOutput(recon, commit, perplexity, tokens)

    def forward(self, motion: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T, 263) -> (recon (B, 4 (T // 4), 263), commit_loss, perplexity), as the official model."""
        out = self.quantize_motion(motion)
        return out.recon, out.commit_loss, out.perplexity

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def vq_loss(
    model: VQVAE,
    motion: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    mean: torch.Tensor | None = None,
    std: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The official objective: SmoothL1(recon) + commit_weight * commitment + joint_weight * SmoothL1 on
    the root-relative joint positions (features 4:67, the official ``forward_joint`` term), over real
    frames only; plus, when their weights are set, ``root_weight`` * SmoothL1 on the root features (0:4)
    and ``position_weight`` * L1 (metres) on the global joint positions recovered from the features
    de-normalised with ``mean``/``std`` (263,)."""
    cfg = model.cfg
    out = model.quantize_motion(motion, mask)
    t = out.recon.shape[1]
    target = motion[:, :t].float()
    recon_x = out.recon.float()
    m = (
        mask[:, :t]
        if mask is not None
        else torch.ones(target.shape[:2], dtype=torch.bool, device=target.device)
    )
    m = m[..., None].to(target.dtype)
    frames = m.sum().clamp(min=1.0)

    def smooth_l1(cols: slice) -> torch.Tensor:
        err = F.smooth_l1_loss(recon_x[..., cols], target[..., cols], reduction="none")
        return (err * m).sum() / (frames * err.shape[-1])

    recon = smooth_l1(slice(None))
    joints = smooth_l1(RIC)
    loss = recon + cfg.commit_weight * out.commit_loss + cfg.joint_weight * joints
    logs = {
        "recon": float(recon.detach()),
        "joints": float(joints.detach()),
        "commit": float(out.commit_loss.detach()),
        "perplexity": float(out.perplexity),
    }
    if cfg.root_weight > 0:
        root = smooth_l1(slice(0, RIC.start))
        loss = loss + cfg.root_weight * root
        logs["root"] = float(root.detach())
    if cfg.position_weight > 0:
        position = position_loss(recon_x, target, m[..., 0], mean, std)
        loss = loss + cfg.position_weight * position
        logs["position"] = float(position.detach())
    return loss, logs


def position_loss(
    recon: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None,
    mean: torch.Tensor | None,
    std: torch.Tensor | None,
) -> torch.Tensor:
    """Mean L1 (metres) between the global joint positions (B, T, 22, 3) recovered from normalised
    features ``recon`` and ``target`` (B, T, 263), over the frames ``mask`` (B, T) marks. The root is
    integrated from the first frame of the window, so the term grows with trajectory drift."""
    if mean is None or std is None:
        raise ConfigError("the position loss needs the dataset's Mean/Std")
    mean = mean.to(recon.device, torch.float32)
    std = std.to(recon.device, torch.float32)
    with torch.autocast(recon.device.type, enabled=False):  # integration in float32, never bf16
        jr = recover_joints_t(recon.float() * std + mean)
        jt = recover_joints_t(target.float() * std + mean)
    err = (jr - jt).abs().flatten(-2).mean(-1)  # (B, T)
    if mask is None:
        return err.mean()
    m = mask.to(err.dtype)
    return (err * m).sum() / m.sum().clamp(min=1.0)


def build_from_config(config: Mapping[str, Any]) -> VQVAE:
    from emomotion.configs import dataclass_from

    return VQVAE(dataclass_from(VQVAEConfig, config))
