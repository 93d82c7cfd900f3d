"""`acestep-dcc refine FILE`: the parent's request and seed again with only the options
given changed, the lineage in every new sidecar; real generation (the sketch, and the
tiny ACE-Step checkpoint for a cover), files read back with soundfile."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from acestep_core.cli import main
from acestep_core.errors import InvalidRequest
from acestep_core.refine import ParentUnreadable, lineage_lines, read_parent, refine_request, request_changes
from acestep_core.request import GenerationRequest

PROMPT = "boss battle, rock"


def sidecar(path: Path) -> dict:
    return json.loads(Path(f"{path}.json").read_text())


@pytest.fixture
def takes(tmp_path: Path) -> Path:
    """Two sketch takes of one request (seeds 7 and 8) in tmp_path/made."""
    out = tmp_path / "made" / "boss.wav"
    assert main(["generate", PROMPT, "--seconds", "3", "--candidates", "2", "--seed", "7", "--key", "E minor",
                 "--loudness", "console", "--backend", "sketch", "-o", str(out)]) == 0
    return out.parent


def test_refine_keeps_the_seed_and_settings_and_records_what_changed(takes: Path, capsys):
    parent = takes / "boss-2.wav"
    capsys.readouterr()
    assert main(["refine", str(parent), "--prompt", "boss battle, rock, faster, more double kick", "--bpm", "170",
                 "--candidates", "1", "--backend", "sketch"]) == 0
    err = capsys.readouterr().err
    assert "acestep-dcc: Refined from boss-2.wav (seed 8, take 2)" in err
    assert "acestep-dcc: Changed: prompt 'boss battle, rock' -> 'boss battle, rock, faster, more double kick'; " \
           "candidates 2 -> 1; bpm none -> 170" in err  # in the request's field order
    child = takes / "boss-2-refined.wav"
    made, before = sidecar(child), sidecar(parent)
    assert made["seed"] == 8 == before["seed"]  # the take's own seed, not its job's first
    assert made["lineage"] == {
        "parent_file": "boss-2.wav", "parent_seed": 8, "parent_job": None, "parent_path": str(parent.resolve()),
        "parent_candidate": 2, "cover_strength": None,
        "changed": {"prompt": {"before": PROMPT, "after": "boss battle, rock, faster, more double kick"},
                    "bpm": {"before": None, "after": 170.0}, "candidates": {"before": 2, "after": 1}}}
    # Everything not given is the parent's; the lineage is said once, at the top.
    kept = {k: v for k, v in made["request"].items() if k not in ("prompt", "bpm", "candidates", "seed")}
    assert kept == {k: v for k, v in before["request"].items() if k not in ("prompt", "bpm", "candidates", "seed")}
    assert made["request"]["lineage"] is None and made["request"]["key"] == "E minor"
    assert made["request"]["loudness"] == "console" and made["tempo"]["used"] == 170.0
    assert sf.info(str(child)).duration == pytest.approx(3.0, abs=1e-3)
    import wavinfo

    assert "; refined from: boss-2.wav; " in wavinfo.WavInfoReader(str(child)).info.comment  # the INFO chunk too


def test_nothing_changed_makes_the_parent_again(takes: Path, tmp_path: Path):
    """Same request and seed: the sketch renders the parent again sample for sample."""
    out = tmp_path / "again.wav"
    assert main(["refine", str(takes / "boss-2.wav"), "--candidates", "1", "--backend", "sketch",
                 "-o", str(out)]) == 0
    assert np.array_equal(sf.read(out, dtype="int16")[0], sf.read(takes / "boss-2.wav", dtype="int16")[0])
    assert sidecar(out)["lineage"]["changed"] == {"candidates": {"before": 2, "after": 1}}
    assert lineage_lines(sidecar(out)["lineage"]) == ["Refined from boss-2.wav (seed 8, take 2)",
                                                      "Changed: candidates 2 -> 1"]


def test_a_refinement_of_a_refinement_names_its_own_parent(takes: Path, tmp_path: Path):
    first, second = tmp_path / "first.wav", tmp_path / "second.wav"
    assert main(["refine", str(takes / "boss-1.wav"), "--bpm", "150", "--candidates", "1", "--backend", "sketch",
                 "-o", str(first)]) == 0
    assert main(["refine", str(first), "--bpm", "160", "--backend", "sketch", "-o", str(second)]) == 0
    lineage = sidecar(second)["lineage"]
    assert (lineage["parent_file"], lineage["parent_seed"], lineage["parent_candidate"]) == ("first.wav", 7, 1)
    assert lineage["changed"] == {"bpm": {"before": 150.0, "after": 160.0}}


def test_a_seed_given_is_a_change_and_candidates_count_up_from_it(takes: Path, tmp_path: Path):
    out = tmp_path / "seeded.wav"
    assert main(["refine", str(takes / "boss-1.wav"), "--seed", "100", "--backend", "sketch", "-o", str(out)]) == 0
    assert [sidecar(tmp_path / f"seeded-{k}.wav")["seed"] for k in (1, 2)] == [100, 101]
    assert sidecar(tmp_path / "seeded-1.wav")["lineage"]["changed"] == {"seed": {"before": 7, "after": 100}}


def test_default_names_are_numbered_not_overwritten(takes: Path, capsys):
    for _ in range(2):
        assert main(["refine", str(takes / "boss-1.wav"), "--candidates", "1", "--backend", "sketch", "--json"]) == 0
    assert (takes / "boss-1-refined.wav").is_file() and (takes / "boss-1-refined_2.wav").is_file()
    [printed] = json.loads(capsys.readouterr().out.split("\n]\n")[-2] + "\n]")  # the second run's JSON
    assert printed["path"] == str((takes / "boss-1-refined_2.wav").resolve()) and printed["seed"] == 7
    assert printed["lineage"]["parent_file"] == "boss-1.wav"


@pytest.mark.parametrize("damage, sentence", [
    (lambda side: side.unlink(), "boss-1.wav has no sidecar boss-1.wav.json, so how it was made is not known; "
                                 "refine a cue acestep-dcc made, with its .json beside it"),
    (lambda side: side.write_text("{not json"), "the sidecar boss-1.wav.json cannot be read (it is not valid "
                                                "JSON: "),
    (lambda side: side.write_bytes(b"\xff\xfe{}"), "the sidecar boss-1.wav.json cannot be read (it is not UTF-8 text)"),
    (lambda side: side.write_text('{"seed": 3}'), "the sidecar of boss-1.wav does not record the request it was "
                                                  "made with"),
])
def test_a_missing_or_unreadable_sidecar_is_one_sentence(takes: Path, capsys, damage, sentence):
    damage(takes / "boss-1.wav.json")
    before = sorted(takes.iterdir())
    capsys.readouterr()
    assert main(["refine", str(takes / "boss-1.wav"), "--bpm", "150", "--backend", "sketch"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"acestep-dcc: {sentence}") and err.count("\n") == 1 and "Traceback" not in err
    assert sorted(takes.iterdir()) == before


@pytest.mark.parametrize("strength", ["1.5", "-0.1", "nan"])
def test_a_cover_strength_out_of_range_is_refused(takes: Path, capsys, strength: str):
    before = sorted(takes.iterdir())
    assert main(["refine", str(takes / "boss-1.wav"), "--cover", strength, "--backend", "sketch"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("acestep-dcc: the cover strength must be between 0 (loosely after the parent) and 1 "
                          "(closely), got ") and err.endswith("; or leave it out to regenerate with the parent's seed")
    assert sorted(takes.iterdir()) == before


def test_a_parent_whose_source_is_not_here_is_one_sentence(takes: Path, capsys):
    """A cover a worker made records its upload's id as the source: the CLI cannot read it."""
    side = takes / "boss-1.wav.json"
    made = json.loads(side.read_text())
    made["request"].update(task="cover", source_audio="upload-0123456789abcdef0123456789abcdef", cover_strength=0.5)
    side.write_text(json.dumps(made))
    assert main(["refine", str(takes / "boss-1.wav"), "--bpm", "150", "--backend", "sketch"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "acestep-dcc: boss-1.wav was made (cover) from source audio that is not on this machine "
        "(upload-0123456789abcdef0123456789abcdef); pass --cover STRENGTH to work from boss-1.wav itself")


def test_the_sketch_cannot_cover_and_says_so(takes: Path, capsys):
    before = sorted(takes.iterdir())
    assert main(["refine", str(takes / "boss-1.wav"), "--cover", "0.5", "--backend", "sketch"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "acestep-dcc: the sketch backend cannot make a cover of boss-1.wav; leave out --cover to make it again "
        "with its seed and your changes, or use an ACE-Step model (--backend acestep --model FOLDER)")
    assert sorted(takes.iterdir()) == before


def test_a_cover_on_an_acestep_model_records_its_strength(tiny_checkpoint: Path, tmp_path: Path):
    parent = tmp_path / "theme.wav"
    assert main(["generate", PROMPT, "--seconds", "2", "--seed", "5", "--model", str(tiny_checkpoint),
                 "-o", str(parent)]) == 0
    out = tmp_path / "cover.wav"
    assert main(["refine", str(parent), "--cover", "0.6", "--prompt", "boss battle, metal",
                 "--model", str(tiny_checkpoint), "-o", str(out)]) == 0
    made = sidecar(out)
    assert (made["request"]["task"], made["request"]["cover_strength"], made["seed"]) == ("cover", 0.6, 5)
    assert made["request"]["source_audio"] == str(parent.resolve())
    lineage = made["lineage"]
    assert lineage["cover_strength"] == 0.6 and lineage["parent_seed"] == 5
    assert set(lineage["changed"]) == {"prompt", "task", "source_audio", "cover_strength"}
    assert lineage_lines(lineage) == ["Cover of theme.wav (seed 5, take 1, strength 0.6)",
                                      "Changed: prompt 'boss battle, rock' -> 'boss battle, metal'"]
    assert sf.info(str(out)).duration == pytest.approx(sf.info(str(parent)).duration, abs=1e-3)


# -- the core functions, without generating ----------------------------------------------------


def test_changes_are_validated_like_any_request(takes: Path):
    parent = read_parent(takes / "boss-1.wav", job="0123456789abcdef")
    with pytest.raises(InvalidRequest) as bad:
        refine_request(parent, {"bpm": 500, "tempo": 120})
    assert [p.field for p in bad.value.problems] == ["tempo"]
    with pytest.raises(InvalidRequest) as bad:
        refine_request(parent, {"bpm": 500})
    assert [p.field for p in bad.value.problems] == ["bpm"]
    request = refine_request(parent, {"key": "em"})
    assert request.lineage["parent_job"] == "0123456789abcdef"
    assert request.lineage["changed"] == {}  # 'em' is E minor, what the parent had
    assert request_changes(parent.request, request) == {}


@pytest.mark.parametrize("lineage, words", [
    ({"parent_seed": 1}, "lineage.parent_file must be"),
    ({"parent_file": "a.wav"}, "lineage.parent_seed is required"),
    ({"parent_file": "a.wav", "parent_seed": -1}, "lineage.parent_seed must be a whole number"),
    ({"parent_file": "a.wav", "parent_seed": 1, "cover_strength": 2}, "lineage.cover_strength must be between 0 and 1"),
    ({"parent_file": "a.wav", "parent_seed": 1, "changed": {"tempo": {"before": 1, "after": 2}}}, "no request field"),
    ({"parent_file": "a.wav", "parent_seed": 1, "changed": {"bpm": {"before": 1}}}, "exactly 'before' and 'after'"),
    ({"parent_file": "a.wav", "parent_seed": 1, "mood": "x"}, "lineage has an unknown field 'mood'"),
    ("a.wav", "lineage must be an object"),
])
def test_a_bad_lineage_is_refused_with_its_reason(lineage, words):
    with pytest.raises(InvalidRequest) as bad:
        GenerationRequest.from_dict({"prompt": "x", "lineage": lineage})
    assert [p.field for p in bad.value.problems] == ["lineage"] and words in str(bad.value)


def test_a_lineage_sent_as_json_numbers_is_normalized():
    request = GenerationRequest.from_dict({"prompt": "x", "lineage": {"parent_file": "a.wav", "parent_seed": 3.0}})
    assert request.lineage == {"parent_file": "a.wav", "parent_seed": 3, "parent_job": None, "parent_path": None,
                               "parent_candidate": None, "changed": {}, "cover_strength": None}
    assert isinstance(request.lineage["parent_seed"], int)


def test_read_parent_of_a_file_that_is_gone(tmp_path: Path):
    with pytest.raises(ParentUnreadable) as gone:
        read_parent(tmp_path / "nope.wav")
    assert str(gone.value).startswith("nope.wav has no sidecar nope.wav.json (and nope.wav itself is not there either)")


def test_the_lineage_schema_and_its_validation_agree():
    """Arbitrary records near the lineage's shape: the worker's JSON Schema (jsonschema,
    Draft 2020-12) accepts exactly those lineage_problems accepts."""
    import dataclasses

    jsonschema = pytest.importorskip("jsonschema")
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from acestep_core.lineage import lineage_problems, lineage_schema

    fields = [f.name for f in dataclasses.fields(GenerationRequest)]
    validator = jsonschema.Draft202012Validator(lineage_schema(fields))
    scalar = st.one_of(st.none(), st.booleans(), st.integers(-3, 2**32 + 3), st.sampled_from([0.5, 1.0, 2.0, 1.5, -0.1]),
                       st.text(max_size=3), st.sampled_from(["", "a" * 256, "b" * 65]))
    good_change = st.fixed_dictionaries({"before": scalar, "after": scalar})
    change = st.one_of(good_change, st.dictionaries(st.sampled_from(["before", "after", "other"]), scalar, max_size=3))
    changed = st.one_of(scalar, st.dictionaries(st.sampled_from(["bpm", "prompt", "tempo"]), st.one_of(change, scalar),
                                                max_size=2))
    # Mostly near-valid records (each field good or anything), some with fields missing or unknown.
    either = lambda good: st.one_of(good, scalar)  # noqa: E731
    near = st.fixed_dictionaries(
        {"parent_file": either(st.text(min_size=1, max_size=4)), "parent_seed": either(st.integers(0, 2**32 - 1))},
        optional={"parent_job": either(st.text(max_size=4)), "parent_path": either(st.text(max_size=4)),
                  "parent_candidate": either(st.integers(1, 1000)),
                  "cover_strength": either(st.floats(0, 1)), "mood": scalar})
    record = st.one_of(near, st.dictionaries(st.sampled_from(["parent_file", "parent_seed", "parent_job", "parent_path",
                                                              "parent_candidate", "cover_strength", "mood"]), scalar,
                                             max_size=7))

    seen = set()

    @settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(record, st.one_of(st.just(None), changed))
    def agree(value, changes):
        if changes is not None:
            value = {**value, "changed": changes}
        valid = validator.is_valid(value)
        seen.add(valid)
        assert (lineage_problems(value, fields) == []) == valid, value

    agree()
    assert seen == {True, False}  # both kinds were tried
