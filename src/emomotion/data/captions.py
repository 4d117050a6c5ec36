"""Captions in the HumanML3D text format, POS tagging without a model download, and templates.

A HumanML3D text file holds one caption per line::

    a person walks sadly.#a/DET person/NOUN walk/VERB sadly/ADV#0.0#0.0

(caption, space-separated ``word/POS`` tokens with nouns and verbs lemmatised, start and end in
seconds; ``0.0#0.0`` is the whole clip). Tags are spaCy's universal POS tags. We tag with closed
word lists, the lemma dictionary of ``lemminflect`` (which ships its data) and a few context rules:
exact for our own templates, and good enough for short motion descriptions from users.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from lemminflect import getAllLemmas

from emomotion.errors import DatasetError

_CLOSED: dict[str, str] = {}
for _pos, _words in {
    "DET": "a an the this that these those his her their its my your our some any each every another no",
    "PRON": "he she it they them him i you we us me someone somebody something anyone anything everyone "
    "himself herself themselves itself one who which what",
    "ADP": "in on at to from with by for of into onto over under around across through along toward towards "
    "behind above below off up down out about like near past between against before after upon without",
    "CCONJ": "and or but nor yet",
    "SCONJ": "while as if because though although until since when whereas",
    "AUX": "is are was were be been being am has have had does do did can could will would should may might",
    "PART": "not n't 's",
    "NUM": "one two three four five six seven eight nine ten twice once",
}.items():
    for _w in _words.split():
        _CLOSED.setdefault(_w, _pos)
# words the dictionary would call something else in motion descriptions
_OVERRIDES = {
    "left": "ADJ",
    "right": "ADJ",
    "forward": "ADV",
    "forwards": "ADV",
    "backward": "ADV",
    "backwards": "ADV",
    "sideways": "ADV",
    "then": "ADV",
    "again": "ADV",
    "slowly": "ADV",
    "quickly": "ADV",
    "down": "ADP",
    "up": "ADP",
    "back": "ADV",
    "person": "NOUN",
    "man": "NOUN",
    "woman": "NOUN",
    "figure": "NOUN",
    "door": "NOUN",
    "object": "NOUN",
    "box": "NOUN",
    "ball": "NOUN",
    "hand": "NOUN",
    "hands": "NOUN",
    "arm": "NOUN",
    "arms": "NOUN",
    "while": "SCONJ",
}
_TOKEN = re.compile(r"[A-Za-z]+(?:'[a-z]+)?|\d+(?:\.\d+)?|[^\sA-Za-z\d]")


@dataclass(frozen=True)
class Token:
    word: str
    lemma: str
    pos: str

    def format(self) -> str:
        shown = self.lemma if self.pos in ("NOUN", "VERB") else self.word
        return f"{shown}/{self.pos}"


def _candidates(word: str) -> dict[str, tuple[str, ...]]:
    return getAllLemmas(word)  # type: ignore[no-any-return]


def tag_caption(text: str) -> list[Token]:
    """POS-tag a caption (punctuation dropped, as in HumanML3D's token lists)."""
    words = [w.lower() for w in _TOKEN.findall(text) if re.match(r"[A-Za-z\d]", w)]
    tokens: list[Token] = []
    for i, word in enumerate(words):
        prev = tokens[-1].pos if tokens else None
        if word in _OVERRIDES:
            pos = _OVERRIDES[word]
        elif word in _CLOSED:
            pos = _CLOSED[word]
        elif re.fullmatch(r"\d+(\.\d+)?", word):
            pos = "NUM"
        else:
            cands = _candidates(word)
            if not cands:
                pos = "ADV" if word.endswith("ly") else "NOUN"
            elif len(cands) == 1:
                pos = next(iter(cands))
            elif prev in ("DET", "ADJ") and "NOUN" in cands:
                nxt = words[i + 1] if i + 1 < len(words) else ""
                pos = "ADJ" if "ADJ" in cands and nxt and "NOUN" in _candidates(nxt) else "NOUN"
            elif prev in ("NOUN", "PRON", "AUX", "ADV", "CCONJ", "PART", None) and "VERB" in cands:
                pos = "VERB"
            elif "ADJ" in cands and prev in ("AUX", "ADV"):
                pos = "ADJ"
            else:
                pos = next(p for p in ("NOUN", "VERB", "ADJ", "ADV") if p in cands)
        lemma = word
        if pos in ("NOUN", "VERB"):
            lemma = _candidates(word).get(pos, (word,))[0]
        tokens.append(Token(word, lemma, pos))
    return tokens


@dataclass(frozen=True)
class Caption:
    """One line of a HumanML3D text file."""

    text: str
    tokens: tuple[str, ...]  # "word/POS"
    start: float = 0.0
    end: float = 0.0

    def format(self) -> str:
        return f"{self.text}#{' '.join(self.tokens)}#{self.start:.1f}#{self.end:.1f}"

    @property
    def whole_clip(self) -> bool:
        return self.start == 0.0 and self.end == 0.0


def make_caption(text: str, start: float = 0.0, end: float = 0.0) -> Caption:
    text = text.strip()
    if not text or "#" in text or "\n" in text:
        raise DatasetError(f"a caption must be one non-empty line without '#': {text!r}")
    return Caption(text, tuple(t.format() for t in tag_caption(text)), start, end)


def parse_caption_line(line: str, *, path: str | None = None, lineno: int | None = None) -> Caption:
    """Read one ``caption#tokens#start#end`` line (NaN times count as whole-clip, as HumanML3D does)."""
    parts = line.rstrip("\r\n").split("#")
    where = f"line {lineno}" if lineno is not None else None
    if len(parts) < 4:
        raise DatasetError(
            f"expected 'caption#tokens#start#end', got {line.strip()!r}", path=path, where=where
        )
    text, tokens, start_s, end_s = parts[0], parts[1], parts[2], parts[3]
    try:
        start, end = float(start_s), float(end_s)
    except ValueError as exc:
        raise DatasetError(
            f"start/end are not numbers: {start_s!r}, {end_s!r}", path=path, where=where
        ) from exc
    start = 0.0 if start != start else start
    end = 0.0 if end != end else end
    return Caption(text.strip(), tuple(tokens.split()), start, end)


def read_texts(path: str, text: str) -> list[Caption]:
    """Parse a whole HumanML3D text file's content (blank lines ignored)."""
    return [
        parse_caption_line(line, path=path, lineno=i)
        for i, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]


_MIRROR_WORDS = {
    "left": "right",
    "right": "left",
    "clockwise": "counterclockwise",
    "counterclockwise": "clockwise",
    "anticlockwise": "clockwise",
}


def mirror_text(text: str) -> str:
    """Swap left/right and clockwise/counterclockwise (HumanML3D's mirrored captions)."""

    def swap(m: re.Match[str]) -> str:
        word = m.group(0)
        new = _MIRROR_WORDS[word.lower()]
        return new.capitalize() if word[0].isupper() else new

    return re.sub(r"\b(left|right|clockwise|counterclockwise|anticlockwise)\b", swap, text, flags=re.I)


def mirror_caption(caption: Caption) -> Caption:
    return make_caption(mirror_text(caption.text), caption.start, caption.end)


# ----------------------------------------------------------------------------- templates

ACTION_PHRASES: dict[str, tuple[str, ...]] = {
    "walk": ("walks", "walks forward", "is walking in a straight line", "takes a few steps forward"),
    "walk_object": ("walks while carrying an object", "carries a box in both hands while walking"),
    "walk_back": ("walks backwards", "steps back several times"),
    "walk_left": ("walks to the left", "steps sideways to the left"),
    "walk_right": ("walks to the right", "steps sideways to the right"),
    "walk_turn_left": ("walks and turns left", "walks forward and then turns to the left"),
    "walk_turn_right": ("walks and turns right", "walks forward and then turns to the right"),
    "turn": ("turns around", "turns on the spot"),
    "run": ("runs", "runs forward", "jogs forward"),
    "dash": ("dashes forward", "sprints forward"),
    "sit_down": ("sits down", "sits down on a chair", "lowers himself onto a seat"),
    "seated": ("sits on a chair", "is seated and moves a little"),
    "knock": ("knocks on a door", "knocks on the door with one hand", "raises a hand and knocks"),
    "lift": ("lifts an object", "picks up a box from the floor", "bends down and lifts something"),
    "throw": ("throws something", "throws a ball", "winds up and throws an object"),
    "move_books": ("moves books from one place to another", "picks up books and puts them down"),
    "wave": ("waves", "waves a hand", "waves hello"),
    "wave_left": ("waves with the left hand", "raises the left hand and waves"),
    "wave_right": ("waves with the right hand", "raises the right hand and waves"),
    "wave_both": ("waves with both hands", "raises both hands and waves"),
    "raise_both": ("raises both hands", "lifts both arms up"),
    "raise_left": ("raises the left hand", "lifts the left arm up"),
    "raise_right": ("raises the right hand", "lifts the right arm up"),
    "bow": ("bows", "bows forward", "takes a bow"),
    "bye": ("waves goodbye", "says goodbye with a wave"),
    "guide": ("gestures to guide someone", "points the way with an arm"),
    "respond": ("responds with a gesture", "nods and gestures in response"),
    "call": ("calls someone over", "waves someone over"),
    "punch": ("punches", "throws a punch", "punches forward"),
    "kick": ("kicks", "kicks forward with a leg"),
    "slash": ("slashes with an arm", "swings an arm as if slashing"),
    "dance": ("dances", "dances in place"),
    "jump": ("jumps", "jumps in place"),
    "move": ("moves", "moves around", "makes a movement"),
}
"""Verb phrases per action, third person present: 'a person <phrase> <adverb>'."""

EMOTION_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Anger": (("angrily", "furiously", "aggressively"), ("angry", "furious")),
    "Anxiety": (("anxiously", "nervously", "uneasily"), ("anxious", "nervous")),
    "Joy": (("happily", "joyfully", "cheerfully"), ("happy", "joyful", "cheerful")),
    "Neutral": (("normally", "calmly", "neutrally"), ("calm", "neutral")),
    "Panic Fear": (("fearfully", "in a panic", "in fear"), ("terrified", "scared", "frightened")),
    "Pride": (("proudly", "confidently", "triumphantly"), ("proud", "confident")),
    "Sadness": (("sadly", "sorrowfully", "gloomily"), ("sad", "unhappy", "dejected")),
    "Shame": (("shamefully", "sheepishly", "with shame"), ("ashamed", "embarrassed")),
}
"""(adverbs, adjectives) per emotion."""

STYLE_PHRASES: dict[str, tuple[str, ...]] = {
    "active": ("energetically", "in an active way"),
    "elderly": ("like an elderly person", "in an elderly way"),
    "old": ("like an old person", "slowly like an elderly person"),
    "exhausted": ("wearily", "in an exhausted way"),
    "tired": ("tiredly", "wearily"),
    "feminine": ("in a feminine way", "with feminine movements"),
    "masculine": ("in a masculine way", "with masculine movements"),
    "masculinity": ("in a masculine way", "with masculine movements"),
    "youthful": ("in a youthful way", "like a young person"),
    "childish": ("like a child", "in a childish way"),
    "musical": ("rhythmically, like in a musical", "in a theatrical, musical way"),
    "giant": ("like a giant", "with heavy, giant steps"),
    "chimpira": ("like a thug", "in a swaggering, thuggish way"),
}
"""Manner phrases for non-emotional styles (Bandai's), used when a clip has no emotion."""

_SUBJECTS = ("a person", "someone", "a man", "a woman", "the person")


def template_captions(
    action: str, emotion: str | None, *, count: int = 3, seed: int = 0, style: str | None = None
) -> list[str]:
    """``count`` distinct captions for an (action, emotion), deterministic for a seed.

    Without an emotion, a known non-emotional ``style`` (see STYLE_PHRASES) adds its manner phrase.
    """
    if action not in ACTION_PHRASES:
        raise DatasetError(
            f"no caption templates for action {action!r}; known: {', '.join(sorted(ACTION_PHRASES))}"
        )
    if emotion is not None and emotion not in EMOTION_WORDS:
        raise DatasetError(f"unknown emotion {emotion!r}")
    rng = random.Random(f"{action}|{emotion}|{style}|{seed}")
    phrases = ACTION_PHRASES[action]
    out: list[str] = []
    for _ in range(200):
        if len(out) == count:
            break
        phrase = rng.choice(phrases)
        subject = rng.choice(_SUBJECTS)
        if emotion is None and style in STYLE_PHRASES:
            text = f"{subject} {phrase} {rng.choice(STYLE_PHRASES[style])}."
        elif emotion is None:
            text = f"{subject} {phrase}."
        else:
            adverbs, adjectives = EMOTION_WORDS[emotion]
            form = rng.randrange(3)
            if form == 0:
                text = f"{subject} {phrase} {rng.choice(adverbs)}."
            elif form == 1:
                noun = subject.split()[-1] if subject.split()[-1] != "someone" else "person"
                adj = rng.choice(adjectives)
                article = "an" if adj[0] in "aeiou" else "a"
                text = f"{article} {adj} {noun} {phrase}."
            else:
                text = f"{subject} {phrase}, looking {rng.choice(adjectives)}."
        text = text[0].upper() + text[1:] if rng.random() < 0.3 else text
        if text not in out:
            out.append(text)
    return out
