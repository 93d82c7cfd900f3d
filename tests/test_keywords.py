"""The prompt keyword library: template -> prompt -> parsed tags, and what words imply."""

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from acestep_core import keywords
from acestep_core.keywords import (
    CATEGORIES, INSTRUMENT_WORDS, KEYWORDS, MOOD_WORDS, SCENE_WORDS, STYLE_IDS, STYLE_WORDS, TEMPO_WORDS,
    WORDS_BY_CATEGORY, PromptTags, compose_prompt, keyword, parse_prompt,
)

REPO = Path(__file__).resolve().parents[1]


def test_the_module_imports_with_the_standard_library_alone():
    # -S: no site-packages, so numpy cannot sneak in (Blender and REAPER import this).
    code = "import sys, acestep_core.keywords; assert 'numpy' not in sys.modules; print('ok')"
    result = subprocess.run([sys.executable, "-S", "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_categories_are_plain_tuples_a_ui_can_list():
    assert CATEGORIES == ("mood", "scene", "style", "instrument", "tempo")
    for category, words in WORDS_BY_CATEGORY.items():
        assert isinstance(words, tuple) and words and all(isinstance(w, str) for w in words)
        assert len(set(words)) == len(words), category
    assert WORDS_BY_CATEGORY["mood"] == MOOD_WORDS
    assert WORDS_BY_CATEGORY["tempo"] == TEMPO_WORDS


def test_every_word_carries_what_its_category_implies():
    for entry in KEYWORDS:
        if entry.category == "tempo":
            low, high = entry.bpm_range
            assert 30 <= low < high <= 300, entry
        if entry.category == "style":
            assert entry.style_id in STYLE_IDS, entry
        if entry.mode is not None:
            assert entry.mode in ("major", "minor"), entry
    # Every style the backend plays is reachable from a word.
    assert {keyword(w).style_id for w in STYLE_WORDS} == set(STYLE_IDS)


def test_the_issue_example_parses_into_its_parts():
    tags = parse_prompt("tense boss battle, synthwave, fast drums")
    assert tags.moods == ("tense",)
    assert tags.scenes == ("boss battle",)
    assert tags.styles == ("synthwave",) and tags.style_id == "synthwave"
    assert tags.instruments == ("drums",)
    assert tags.tempo_words == ("fast",)
    assert tags.mode == "minor"
    low, high = keyword("fast").bpm_range
    assert low <= tags.bpm <= high and tags.bpm_from == "tempo words"


def test_compose_follows_the_template():
    prompt = compose_prompt(mood="tense", scene="boss battle", style="synthwave", instruments=["drums", "bass"], tempo="fast")
    assert prompt == "tense boss battle, synthwave, fast drums, bass"
    assert compose_prompt(style="ambient", tempo="slow") == "ambient, slow"
    assert compose_prompt(mood="calm") == "calm"
    assert compose_prompt() == ""
    assert compose_prompt(scene="  boss   battle ", instruments="piano") == "boss battle, piano"


@pytest.mark.parametrize("mood, scene", list(itertools.product(MOOD_WORDS, SCENE_WORDS)))
def test_every_mood_and_scene_pair_round_trips(mood, scene):
    # Mood and scene share one chunk of the template, so no pair may read as another phrase.
    tags = parse_prompt(compose_prompt(mood=mood, scene=scene))
    assert (tags.moods, tags.scenes) == ((mood,), (scene,))


@pytest.mark.parametrize("tempo, instrument", list(itertools.product(TEMPO_WORDS, INSTRUMENT_WORDS)))
def test_every_tempo_and_instrument_pair_round_trips(tempo, instrument):
    tags = parse_prompt(compose_prompt(instruments=[instrument], tempo=tempo))
    assert (tags.tempo_words, tags.instruments) == ((tempo,), (instrument,))


@pytest.mark.parametrize("style", STYLE_WORDS)
def test_every_style_round_trips_to_its_style_id(style):
    tags = parse_prompt(compose_prompt(style=style))
    assert tags.styles == (style,)
    assert tags.style_id == keyword(style).style_id and tags.style_from == "style word"


_optional = lambda words: st.one_of(st.none(), st.sampled_from(words))  # noqa: E731


@given(
    mood=_optional(MOOD_WORDS),
    scene=_optional(SCENE_WORDS),
    style=_optional(STYLE_WORDS),
    instruments=st.lists(st.sampled_from(INSTRUMENT_WORDS), max_size=4, unique=True),
    tempo=_optional(TEMPO_WORDS),
)
def test_template_to_prompt_to_tags_round_trips(mood, scene, style, instruments, tempo):
    tags = parse_prompt(compose_prompt(mood=mood, scene=scene, style=style, instruments=instruments, tempo=tempo))
    assert tags.moods == ((mood,) if mood else ())
    assert tags.scenes == ((scene,) if scene else ())
    assert tags.styles == ((style,) if style else ())
    assert tags.instruments == tuple(instruments)
    assert tags.tempo_words == ((tempo,) if tempo else ())
    if tempo:
        low, high = keyword(tempo).bpm_range
        assert low <= tags.bpm <= high and tags.bpm_from == "tempo words"


@pytest.mark.parametrize("text, expected", [
    ("LO-FI", "lo-fi"),
    ("lofi", "lo-fi"),
    ("lo fi", "lo-fi"),
    ("Lo_Fi!!!", "lo-fi"),
    ("8 bit", "chiptune"),
    ("8-BIT", "chiptune"),
    ("retrowave", "synthwave"),
    ("'80s", "synthwave"),
])
def test_spelling_case_and_punctuation_do_not_matter(text, expected):
    assert parse_prompt(text).styles == (expected,)


def test_multi_word_phrases_win_over_their_parts():
    tags = parse_prompt("Boss-Battle with ELECTRIC GUITAR; war drums")
    assert tags.scenes == ("boss battle",)
    assert tags.instruments == ("electric guitar", "taiko")


def test_plurals_and_aliases_read_as_the_canonical_word():
    tags = parse_prompt("a pad, two boss battles, Rhodes and hi hat")
    assert tags.instruments == ("pads", "electric piano", "hi-hats")
    assert tags.scenes == ("boss battle",)


def test_numbers_keep_their_spelling():
    tags = parse_prompt("80 bpm, 808s")
    assert tags.styles == () and tags.instruments == ("808",) and tags.bpm == 80.0


def test_negated_instruments_are_excluded():
    tags = parse_prompt("ambient, no drums, without any strings, with piano")
    assert tags.excluded_instruments == ("drums", "strings")
    assert tags.instruments == ("piano",)


def test_words_a_prompt_repeats_are_listed_once_in_order():
    tags = parse_prompt("dark, tense, dark again, tense")
    assert tags.moods == ("dark", "tense")


def test_unknown_words_are_ignored():
    assert parse_prompt("zxq blorp, 123") == PromptTags()


@pytest.mark.parametrize("text, bpm", [
    ("synthwave 120 bpm", 120.0),
    ("synthwave, 96.5BPM", 96.5),
    ("tempo: 140, rock", 140.0),
    ("BPM=75", 75.0),
])
def test_an_explicit_bpm_beats_every_word(text, bpm):
    tags = parse_prompt(text + ", very fast")
    assert tags.bpm == bpm and tags.bpm_from == "number"


def test_out_of_range_numbers_are_not_a_tempo():
    assert parse_prompt("999 bpm").bpm is None


def test_tempo_words_beat_moods_and_scenes_which_beat_styles():
    assert parse_prompt("calm exploration, ambient, fast").bpm_from == "tempo words"
    tags = parse_prompt("calm exploration, ambient")
    assert tags.bpm_from == "mood and scene"
    assert keyword("calm").bpm_range[0] <= tags.bpm <= keyword("exploration").bpm_range[1]
    tags = parse_prompt("synthwave")
    assert tags.bpm_from == "style" and 95 <= tags.bpm <= 118


def test_overlapping_tempo_words_meet_in_their_overlap():
    tags = parse_prompt("driving, upbeat")  # 120-140 and 110-130 overlap in 120-130
    assert tags.bpm == 125.0
    tags = parse_prompt("very slow, very fast")  # no overlap: the middle of the two
    assert 100 <= tags.bpm <= 130


@pytest.mark.parametrize("text, mode", [
    ("tense", "minor"),
    ("dark", "minor"),
    ("calm", "major"),
    ("heroic", "major"),
    ("calm but dark and tense", "minor"),
    ("dark, heroic", None),
    ("epic", None),
    ("boss battle", "minor"),
    ("victory", "major"),
])
def test_moods_and_scenes_lean_major_or_minor(text, mode):
    assert parse_prompt(text).mode == mode


@pytest.mark.parametrize("text, key", [
    ("synthwave in E minor", "E minor"),
    ("Em, rock", "E minor"),
    ("orchestral, Bb major, heroic", "A# major"),
    ("F# min", "F# minor"),
    ("C major but dark", "C major"),
])
def test_a_named_key_sets_the_key_and_the_mode(text, key):
    tags = parse_prompt(text)
    assert tags.key == key and tags.mode == key.split()[1]


@pytest.mark.parametrize("text", ["a minor boss battle", "EM", "Emotional", "Drums"])
def test_words_that_only_look_like_keys_are_not_keys(text):
    assert parse_prompt(text).key is None


def test_style_falls_back_to_scene_then_mood_suggestions():
    tags = parse_prompt("tense boss battle")
    assert (tags.style_id, tags.style_from) == (keyword("boss battle").style_id, "scene")
    tags = parse_prompt("calm")
    assert (tags.style_id, tags.style_from) == ("ambient", "mood")
    assert parse_prompt("tense").style_id is None


def test_keyword_lookup_accepts_aliases_and_rejects_strangers():
    assert keyword("Retrowave").word == "synthwave"
    with pytest.raises(KeyError):
        keyword("polka")


def test_tags_are_json_able():
    import json

    data = parse_prompt("tense boss battle, synthwave, fast drums").to_dict()
    assert json.loads(json.dumps(data))["instruments"] == ["drums"]


def test_no_phrase_is_listed_twice():
    # The index refuses duplicates at import; this keeps that check visible.
    assert keywords._phrase_index()
