"""The common emotion vocabulary and each source's mapping onto it.

The label set is Emilya's eight emotions. Every source label maps to one of them explicitly, or to
``None`` when it is a style that is not an emotion (Bandai's "old", "giant", ...). Mappings that
stretch a label's meaning are marked ``approximate`` and recorded as such in dataset manifests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

EMOTIONS: tuple[str, ...] = ("Anger", "Anxiety", "Joy", "Neutral", "Panic Fear", "Pride", "Sadness", "Shame")
EMOTION_INDEX: dict[str, int] = {e: i for i, e in enumerate(EMOTIONS)}


@dataclass(frozen=True)
class EmotionLabel:
    """A source label mapped onto the common vocabulary."""

    source_label: str
    emotion: str | None  # one of EMOTIONS, or None for a non-emotional style
    approximate: bool = False

    @property
    def index(self) -> int | None:
        return None if self.emotion is None else EMOTION_INDEX[self.emotion]


def _table(
    exact: dict[str, str | None], approximate: dict[str, str] | None = None
) -> dict[str, EmotionLabel]:
    table = {k: EmotionLabel(k, v) for k, v in exact.items()}
    table.update({k: EmotionLabel(k, v, approximate=True) for k, v in (approximate or {}).items()})
    return table


SOURCE_LABELS: dict[str, dict[str, EmotionLabel]] = {
    "emilya": _table({e: e for e in EMOTIONS}),
    "bandai": _table(
        {
            "happy": "Joy",
            "sad": "Sadness",
            "angry": "Anger",
            "proud": "Pride",
            "normal": "Neutral",
            "tired": None,
            "old": None,
            "active": None,
            "childish": None,
            "feminine": None,
            "masculinity": None,
            "musical": None,
            "giant": None,
            "chimpira": None,
            "elderly": None,
            "exhausted": None,
            "masculine": None,
            "youthful": None,
        },
        approximate={"not-confident": "Shame"},
    ),
}
"""Per source, its own label -> the common label. Bandai's "not-confident" is the nearest of
Emilya's labels (Shame: head down, closed posture) but not the same construct, hence approximate."""


def map_label(source: str, label: str) -> EmotionLabel:
    """Map a source's own label; unknown labels of a known source raise KeyError naming both."""
    key = label.strip()
    if source not in SOURCE_LABELS:
        return canonical_label(key)
    table = SOURCE_LABELS[source]
    if key in table:
        return table[key]
    if key.lower() in table:
        return table[key.lower()]
    raise KeyError(f"{source}: unknown emotion/style label {label!r}; known: {', '.join(sorted(table))}")


def canonical_label(label: str) -> EmotionLabel:
    """A label that should already be (a spelling of) one of EMOTIONS, e.g. 'panic_fear', 'sadness'."""
    norm = re.sub(r"[\s_\-]+", " ", label.strip()).lower()
    for emotion in EMOTIONS:
        if emotion.lower() == norm:
            return EmotionLabel(label, emotion)
    aliases = {"fear": "Panic Fear", "panic": "Panic Fear", "panicfear": "Panic Fear", "none": "Neutral"}
    if norm.replace(" ", "") in aliases:
        return EmotionLabel(label, aliases[norm.replace(" ", "")], approximate=norm != "none")
    if norm in ("", "unknown", "n/a", "na"):
        return EmotionLabel(label, None)
    raise KeyError(f"unknown emotion label {label!r}; use one of {', '.join(EMOTIONS)}")


CAPTION_LEXICON: dict[str, tuple[str, ...]] = {
    "Anger": (
        "angry",
        "angrily",
        "anger",
        "furious",
        "furiously",
        "rage",
        "raging",
        "irritated",
        "annoyed",
        "mad",
        "aggressively",
        "aggressive",
    ),
    "Anxiety": (
        "anxious",
        "anxiously",
        "anxiety",
        "nervous",
        "nervously",
        "worried",
        "uneasy",
        "uneasily",
        "restless",
        "tense",
    ),
    "Joy": (
        "happy",
        "happily",
        "joy",
        "joyful",
        "joyfully",
        "cheerful",
        "cheerfully",
        "excited",
        "delighted",
        "glad",
    ),
    "Panic Fear": (
        "afraid",
        "scared",
        "fear",
        "fearful",
        "fearfully",
        "frightened",
        "terrified",
        "panic",
        "panicked",
    ),
    "Pride": (
        "proud",
        "proudly",
        "pride",
        "confident",
        "confidently",
        "triumphant",
        "triumphantly",
        "arrogant",
    ),
    "Sadness": (
        "sad",
        "sadly",
        "sadness",
        "depressed",
        "gloomy",
        "sorrowful",
        "unhappy",
        "miserable",
        "dejected",
        "sorrowfully",
        "gloomily",
    ),
    "Shame": (
        "ashamed",
        "shame",
        "shamefully",
        "embarrassed",
        "embarrassedly",
        "guilty",
        "sheepishly",
        "shy",
        "shyly",
    ),
    "Neutral": ("neutral", "neutrally", "calm", "calmly", "normally"),
}
"""Words that state an emotion in a caption. Used to infer labels of caption-only datasets
(EmotionalT2M, HumanML3D): a caption names an emotion when exactly one emotion's words occur."""

_WORD = re.compile(r"[a-z]+")
_WORD_TO_EMOTION = {w: e for e, words in CAPTION_LEXICON.items() for w in words}


def emotions_in_caption(caption: str) -> set[str]:
    """The set of emotions whose lexicon words occur in a caption."""
    return {_WORD_TO_EMOTION[w] for w in _WORD.findall(caption.lower()) if w in _WORD_TO_EMOTION}


def infer_emotion(captions: list[str]) -> EmotionLabel:
    """The emotion stated by a clip's captions: the single emotion named (majority over captions),
    else ``None`` (no emotion word, or a tie between emotions)."""
    votes: dict[str, int] = {}
    for caption in captions:
        found = emotions_in_caption(caption)
        if len(found) == 1:
            (e,) = found
            votes[e] = votes.get(e, 0) + 1
    if not votes:
        return EmotionLabel("", None)
    best = max(votes.values())
    winners = [e for e, v in votes.items() if v == best]
    if len(winners) > 1:
        return EmotionLabel("", None)
    return EmotionLabel(f"inferred from captions ({best}/{len(captions)})", winners[0], approximate=True)
