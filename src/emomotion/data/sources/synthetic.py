"""The embedded procedural emotional motion (see :mod:`emomotion.data.synthetic`), as a source.

Needs no input. Options (``BuildContext.options``): ``actions``, ``emotions``, ``clips_per_pair``,
``actors``, ``seconds`` (min, max). Every clip is marked synthetic in the manifest.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from emomotion.data.emotions import EmotionLabel
from emomotion.data.sources.base import BuildContext, LoadedClip, Skipped, SourceClip, register_source


@dataclass(frozen=True)
class SyntheticSource:
    name: str = "synthetic"
    description: str = "procedural emotional motion on SMPL-22 (embedded default; not real data)"

    def scan(self, ctx: BuildContext) -> tuple[list[SourceClip], list[Skipped]]:
        from emomotion.data import synthetic as syn

        opts = dict(ctx.options)
        actions = opts.get("actions") or sorted(syn.ACTIONS)
        emotions = opts.get("emotions") or list(syn.EMOTIONS)
        per_pair = int(opts.get("clips_per_pair", 1))
        actors = int(opts.get("actors", 6))
        lo, hi = opts.get("seconds", (3.0, 6.0))
        rng = random.Random(ctx.seed)
        clips = []
        for action in actions:
            for emotion in emotions:
                for k in range(per_pair):
                    actor = rng.randrange(actors)
                    seconds = round(rng.uniform(lo, hi), 2)
                    clip_seed = rng.randrange(2**31)
                    clips.append(
                        SourceClip(
                            key=f"syn_{action}_{emotion.lower().replace(' ', '')}_{k:03d}",
                            path=None,
                            action=action,
                            emotion=EmotionLabel(emotion, emotion),
                            actor=f"synthetic_actor{actor}",
                            extra={"seconds": seconds, "seed": clip_seed, "actor_index": actor},
                            synthetic=True,
                        )
                    )
        return clips, []

    def load(self, clip: SourceClip, ctx: BuildContext) -> LoadedClip:
        from emomotion.data.synthetic import generate_clip

        assert clip.action is not None and clip.emotion.emotion is not None
        generated = generate_clip(
            clip.action,
            clip.emotion.emotion,
            seconds=float(clip.extra["seconds"]),
            seed=int(clip.extra["seed"]),
            actor=int(clip.extra["actor_index"]),
        )
        return LoadedClip(generated.joints, {"synthetic": True})


register_source(SyntheticSource())
