"""What a study is: the two datasets, the models trained and fine-tuned on them, and the evaluation.

A study config is a TOML file whose tables mirror these frozen dataclasses (unknown keys are an
error naming the key). ``scale`` multiplies every step count and ``full_size`` swaps the small CPU
presets for the official model sizes, so the same file runs in minutes on a CPU or at full size on
GPUs.
"""

from __future__ import annotations

import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from emomotion.errors import ConfigError
from emomotion.limits import MAX_LENGTH_BUCKETS

# field metadata of options added after studies had run: such a field enters a stage's fingerprint only
# when set away from its default, so that adding an option leaves finished stages valid
FINGERPRINT_IF_SET = {"fingerprint": "if_set"}


@dataclass(frozen=True)
class DataSpec:
    """One dataset build: ``input`` is a folder, or a ``.tar.zst`` archive unpacked into the study folder
    first (``archive_subdir`` names the folder inside it that the source reads)."""

    source: str
    input: str | None = None
    archive_subdir: str | None = None
    mirror: bool = False
    emotions_only: bool = False
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FinetuneVariant:
    """One fine-tuning recipe (MDM or MMM)."""

    name: str
    strategy: str = "full"  # full | freeze | lora
    steps: int = 300
    lr: float = 2e-5
    batch_size: int = 32
    replay_ratio: float = 0.0  # > 0: base-corpus batches mixed in
    # MDM: what replayed clips are fitted to: "data" (themselves) or "teacher" (the base model's prediction)
    replay_target: str = field(default="data", metadata=FINGERPRINT_IF_SET)
    lora_rank: int = 8
    # MDM: keep a frozen copy of the base that answers requests without an emotion (no replay then)
    keep_base: bool = field(default=False, metadata=FINGERPRINT_IF_SET)
    # MDM: no training of its own: the named keep_base variant's fine-tuned weights without the kept base
    # (what that run without keep_base trains, bit for bit), for each of this variant's seeds (which must
    # be among the named variant's)
    weights_of: str = field(default="", metadata=FINGERPRINT_IF_SET)
    add_emotion_conditioning: bool = False  # MDM and MMM: a label table beside the text
    label_lr_scale: float = 1.0  # MDM and MMM: the label table learns at this multiple of lr
    lr_schedule: str = "constant"  # constant | cosine (after any warm-up)
    position_loss: float = 0.0  # MDM's geometric losses on joints recovered from the prediction
    velocity_loss: float = 0.0
    foot_contact_loss: float = 0.0
    seeds: tuple[int, ...] = (0,)
    on: tuple[int, ...] = ()  # MDM: the diffusion-step bases to fine-tune (empty = every one)
    eval_every: int = 0  # validate on the emotion set's val split every N steps (0 = never)
    patience: int = 0  # stop after N validations without a better loss (0 = never stop early)
    # MMM only
    train_vq: bool = False  # the study's failing recipe fine-tuned the VQ as well
    # with train_vq: train on the fine-tuned VQ's tokens but keep (embed, decode with) the base VQ, as the
    # official loader does when it overwrites the fine-tuned VQ with the transformer file's copy
    official_load: bool = False
    temperature: float = 1.0  # decoding of this variant's evaluation (0 = greedy)
    top_k: int = 0
    guidance: float = 4.0

    def __post_init__(self) -> None:
        if not self.label_lr_scale > 0:
            raise ConfigError(f"fine-tune variant {self.name!r}: label_lr_scale must be > 0")
        if self.official_load and not self.train_vq:
            raise ConfigError(f"fine-tune variant {self.name!r}: official_load needs train_vq")
        if self.eval_every < 0 or self.patience < 0 or (self.patience and not self.eval_every):
            raise ConfigError(f"fine-tune variant {self.name!r}: patience needs eval_every > 0")
        if self.replay_target not in ("data", "teacher"):
            raise ConfigError(f"fine-tune variant {self.name!r}: replay_target must be 'data' or 'teacher'")
        if self.keep_base and self.replay_ratio > 0:
            raise ConfigError(
                f"fine-tune variant {self.name!r}: keep_base answers base prompts with the base; no replay"
            )
        if self.replay_target == "teacher" and not self.replay_ratio > 0:
            raise ConfigError(
                f"fine-tune variant {self.name!r}: replay_target 'teacher' needs replay_ratio > 0"
            )


@dataclass(frozen=True)
class MDMStudy:
    preset: str = "small"
    full_preset: str = "mdm"
    steps: int = 1500
    batch_size: int = 32
    lr: float = 2e-4
    warmup: int = 100
    diffusion_steps: tuple[int, ...] = (1000, 50)
    finetune: tuple[FinetuneVariant, ...] = ()
    # pretraining and fine-tuning batches of clips of similar length (runs of N batches sorted by length,
    # emomotion.training.sampler); 0: plain shuffled batches
    length_buckets: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.length_buckets <= MAX_LENGTH_BUCKETS:
            raise ConfigError(
                f"mdm.length_buckets must be in [0, {MAX_LENGTH_BUCKETS}], got {self.length_buckets}"
            )
        variants = {v.name: v for v in self.finetune}
        for v in self.finetune:
            if not v.weights_of:
                continue
            source = variants.get(v.weights_of)
            if source is None or not source.keep_base or source.weights_of:
                raise ConfigError(
                    f"fine-tune variant {v.name!r}: weights_of must name a trained variant with keep_base, "
                    f"not {v.weights_of!r}"
                )
            if v.keep_base or not set(v.seeds) <= set(source.seeds) or v.on != source.on:
                raise ConfigError(
                    f"fine-tune variant {v.name!r}: the weights of {source.name!r} come without keep_base, "
                    f"on its diffusion bases ({list(source.on)}) and from its seeds ({list(source.seeds)})"
                )


@dataclass(frozen=True)
class MMMStudy:
    enabled: bool = True
    vq_preset: str = "small"
    full_vq_preset: str = "mmm"
    vq_steps: int = 1500
    vq_batch_size: int = 64
    vq_window: int = 64  # the VQ's training window in frames (a multiple of 4)
    vq_lr_schedule: str = "constant"  # or "cosine"
    preset: str = "small"
    full_preset: str = "mmm"
    steps: int = 1500
    batch_size: int = 32
    lr: float = 2e-4
    decoding_steps: int = 10
    finetune: tuple[FinetuneVariant, ...] = ()
    headline: str = ""  # the fine-tune variant whose own decoding makes the MMM headline line
    # classifier guidance (the control study's guide classifier) on the headline variant's own decoding:
    # one evaluation row per scale; the headline line uses headline_guidance (0: the unguided row)
    guidance_rows: tuple[float, ...] = ()
    headline_guidance: float = 0.0

    def __post_init__(self) -> None:
        if self.vq_window < 4 or self.vq_window % 4:
            raise ConfigError(f"mmm.vq_window must be a positive multiple of 4 frames, got {self.vq_window}")
        if self.vq_lr_schedule not in ("constant", "cosine"):
            raise ConfigError(
                f"mmm.vq_lr_schedule must be 'constant' or 'cosine', not {self.vq_lr_schedule!r}"
            )
        names = [v.name for v in self.finetune]
        if self.headline and self.headline not in names:
            raise ConfigError(f"mmm.headline {self.headline!r} is not one of the MMM fine-tunes {names}")
        if any(g <= 0 for g in self.guidance_rows) or (self.guidance_rows and not self.headline):
            raise ConfigError("mmm.guidance_rows must be scales > 0 for the headline variant (mmm.headline)")
        if self.headline_guidance and self.headline_guidance not in self.guidance_rows:
            raise ConfigError(
                f"mmm.headline_guidance {self.headline_guidance:g} is not one of mmm.guidance_rows"
            )


@dataclass(frozen=True)
class EvalStudy:
    evaluator_preset: str = "small"
    evaluator_steps: int = 1500
    classifier_steps: int = 800
    reps: int = 3
    # (sampler, steps) rows per MDM model; 0 steps = as trained
    mdm_samplers: tuple[tuple[str, int], ...] = (("ddpm", 0), ("ddim", 50), ("ddim", 20), ("ddim", 10))
    guidance: float = 2.5
    mm_texts: int = 8  # MultiModality: captions x repeats generated per row
    mm_repeats: int = 10
    slow_steps: int = 100  # rows sampling more steps than this: one repetition, no MultiModality
    slow_models: tuple[str, ...] = ()  # stages whose slow as-trained row is evaluated (empty = every one)


@dataclass(frozen=True)
class ControlStudy:
    """Emotion control: the headline recipe (an MDM fine-tune variant sampled with the emotion label and
    classifier guidance), its levers one by one, and how it is measured honestly: the classifier that
    guides (``guide_*``, another seed) never scores; the scoring one is the study's emotion classifier."""

    enabled: bool = False
    headline: str = ""  # the MDM fine-tune variant whose seeds make the headline
    text_only: str = ""  # ablation: the variant fine-tuned on text alone
    # ablation: the variant whose emotion label is measured lever by lever ("" = the headline itself)
    label_variant: str = ""
    training_ablation: str = ""  # ablation: the label variant without its training changes
    diffusion_steps: int = 50  # which MDM base the variants fine-tune
    sampler: str = "ddpm"
    steps: int = 0  # 0 = as trained
    text_guidance: float | None = None  # the text's classifier-free scale (None: the model's default, 2.5)
    label_scale: float = 2.5
    guidance_scale: float = 0.3  # classifier-guidance step (feature std units)
    smoothing: float | None = None  # output low-pass sigma in frames (None: the model's default)
    noise_scale: float = 1.0  # the starting noise's sd (< 1: narrower, the truncation trick)
    guide_classifier_seed: int = 1
    guide_classifier_preset: str = "small"
    guide_classifier_steps: int = 400
    intensities: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0)
    samplers: tuple[tuple[str, int], ...] = (
        ("ddpm", 10), ("ddpm", 20), ("ddim", 10), ("ddim", 20), ("ddim", 50),
        ("dpmpp", 10), ("dpmpp", 20), ("dpmpp", 50),
    )  # fmt: skip
    ddim_eta: float = 0.0
    restyle_strength: float = 0.6
    forgetting_clips: int = 128  # base-corpus test clips for FID / R-precision before and after
    reps: int = 3  # the headline rows
    detail_reps: int = 3  # the ablation, intensity, sampler and restyle rows

    def __post_init__(self) -> None:
        if self.enabled and not self.headline:
            raise ConfigError("control: name the headline fine-tune variant (headline = ...)")
        if self.reps < 1 or self.detail_reps < 1:
            raise ConfigError(
                f"control: reps and detail_reps must be >= 1, got {self.reps}, {self.detail_reps}"
            )
        if not 0.0 <= self.restyle_strength <= 1.0:
            raise ConfigError(f"control.restyle_strength must be in [0, 1], got {self.restyle_strength}")


@dataclass(frozen=True)
class StudyConfig:
    name: str
    base: DataSpec
    emotion: DataSpec
    mdm: MDMStudy = field(default_factory=MDMStudy)
    mmm: MMMStudy = field(default_factory=MMMStudy)
    eval: EvalStudy = field(default_factory=EvalStudy)
    control: ControlStudy = field(default_factory=ControlStudy)
    seed: int = 0
    bf16: bool = True
    workers: int = 2
    max_frames: int = 196
    scale: float = 1.0
    full_size: bool = False
    publish: str | None = None  # also write RESULTS.md and figures here (relative to the config file)
    prompts: tuple[str, ...] = ()  # generated by every model into one gif grid
    prompt_seconds: float = 4.0

    def __post_init__(self) -> None:
        if self.mmm.enabled and self.mmm.guidance_rows and not self.control.enabled:
            raise ConfigError("mmm.guidance_rows need the control study's guide classifier (control.enabled)")

    def steps(self, n: int) -> int:
        return max(1, round(n * self.scale))

    def scaled(self, scale: float | None = None, full_size: bool | None = None) -> StudyConfig:
        if scale is not None and scale <= 0:
            raise ConfigError(f"scale must be > 0, got {scale}")
        return replace(
            self,
            scale=self.scale if scale is None else scale,
            full_size=self.full_size if full_size is None else full_size,
        )


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table")
        return _build(tp, value, where)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{where} must have {len(args)} items")
        return tuple(
            _convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return None
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(args[0], value, where)
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool) and not isinstance(value, tp):
        raise ConfigError(f"{where} must be {tp.__name__}, got {value!r}")
    return value


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{where or 'study'}: unknown key(s) {', '.join(unknown)}")
    kwargs = {}
    for name, f in known.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], f"{where}.{name}" if where else name)
        elif f.default is MISSING and f.default_factory is MISSING:
            raise ConfigError(f"{where or 'study'}: missing key {name!r}")
    return cls(**kwargs)


def study_from_dict(data: dict[str, Any]) -> StudyConfig:
    return _build(StudyConfig, data, "")


def load_study_config(path: str | Path) -> StudyConfig:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError("study config not found", path=path) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=path) from exc
    try:
        cfg = study_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(exc.reason, path=path) from exc
    # dataset inputs are relative to the config file, never to the working directory
    return replace(
        cfg,
        base=_resolve_input(cfg.base, path.parent),
        emotion=_resolve_input(cfg.emotion, path.parent),
        publish=str((path.parent / cfg.publish).resolve()) if cfg.publish else None,
    )


def _resolve_input(spec: DataSpec, root: Path) -> DataSpec:
    if spec.input is None or Path(spec.input).expanduser().is_absolute():
        return spec
    return replace(spec, input=str((root / spec.input).resolve()))
