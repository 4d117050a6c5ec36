"""HumanML3D caption format, offline POS tagging, templates, mirroring."""

from __future__ import annotations

import pytest

from emomotion.data.captions import (
    ACTION_PHRASES,
    EMOTION_WORDS,
    make_caption,
    mirror_text,
    parse_caption_line,
    read_texts,
    tag_caption,
    template_captions,
)
from emomotion.data.emotions import EMOTIONS, emotions_in_caption, infer_emotion, map_label
from emomotion.errors import DatasetError

# Lines in the official HumanML3D format (spaCy tags, nouns and verbs lemmatised).
OFFICIAL = [
    (
        "a man kicks something or someone with his left leg.",
        "a/DET man/NOUN kick/VERB something/PRON or/CCONJ someone/PRON with/ADP his/DET left/ADJ leg/NOUN",
    ),
    (
        "the person picks up a box from the floor",
        "the/DET person/NOUN pick/VERB up/ADP a/DET box/NOUN from/ADP the/DET floor/NOUN",
    ),
    ("a person walks sadly.", "a/DET person/NOUN walk/VERB sadly/ADV"),
]


@pytest.mark.parametrize(("text", "tokens"), OFFICIAL)
def test_tagging_matches_the_official_format(text, tokens):
    cap = make_caption(text)
    assert " ".join(cap.tokens) == tokens
    assert cap.format() == f"{text}#{tokens}#0.0#0.0"


def test_parse_round_trip_and_spans():
    line = "a person jumps.#a/DET person/NOUN jump/VERB#1.5#3.0"
    cap = parse_caption_line(line)
    assert (cap.text, cap.start, cap.end) == ("a person jumps.", 1.5, 3.0)
    assert cap.format() == line and not cap.whole_clip
    assert parse_caption_line("x#x/NOUN#nan#nan").whole_clip


def test_bad_caption_lines_name_file_and_line():
    with pytest.raises(DatasetError, match=r"texts/000001\.txt:line 2"):
        read_texts("texts/000001.txt", "ok#ok/NOUN#0.0#0.0\nbroken line\n")
    with pytest.raises(DatasetError, match="not numbers"):
        parse_caption_line("a#b#x#y")
    with pytest.raises(DatasetError):
        make_caption("has # hash")


def test_every_verb_phrase_tags_a_verb():
    for action, phrases in ACTION_PHRASES.items():
        for phrase in phrases:
            tags = [t.pos for t in tag_caption(f"a person {phrase}")]
            assert "VERB" in tags, (action, phrase, tags)


def test_templates_are_varied_deterministic_and_emotional():
    for emotion in EMOTIONS:
        caps = template_captions("walk", emotion, count=3, seed=7)
        assert len(set(caps)) == 3
        assert caps == template_captions("walk", emotion, count=3, seed=7)
        for cap in caps:
            assert emotions_in_caption(cap) == {emotion}, cap
    assert template_captions("walk", "Joy", seed=1) != template_captions("walk", "Joy", seed=2)
    assert all(not emotions_in_caption(c) for c in template_captions("knock", None))
    assert set(EMOTION_WORDS) == set(EMOTIONS)


def test_unknown_template_action():
    with pytest.raises(DatasetError, match="no caption templates"):
        template_captions("juggle", "Joy")


def test_mirror_text_swaps_sides_and_keeps_case():
    assert mirror_text("Left hand up, then turns right clockwise") == (
        "Right hand up, then turns left counterclockwise"
    )
    assert mirror_text("leftover") == "leftover"


def test_label_mappings():
    assert map_label("bandai", "happy").emotion == "Joy"
    assert map_label("bandai", "not-confident").approximate
    assert map_label("bandai", "giant").emotion is None
    assert map_label("emilya", "Panic Fear").emotion == "Panic Fear"
    assert map_label("other", "panic_fear").emotion == "Panic Fear"
    with pytest.raises(KeyError, match="bandai"):
        map_label("bandai", "grumpy")


def test_infer_emotion_from_captions():
    assert infer_emotion(
        ["a man walks angrily", "someone storms off, furious", "a person walks"]
    ).emotion == ("Anger")
    assert infer_emotion(["a person walks"]).emotion is None
    assert infer_emotion(["walks happily", "walks sadly"]).emotion is None
