"""GenerationRequest: one definition, every problem reported at once, JSON round trip."""

import json

import pytest
from hypothesis import given, strategies as st

from acestep_core.errors import InvalidRequest
from acestep_core.request import GenerationRequest, normalize_key


def problems_by_field(excinfo) -> dict[str, str]:
    return {p.field: p.message for p in excinfo.value.problems}


def test_defaults_are_valid_and_instrumental():
    request = GenerationRequest(prompt="calm exploration, ambient").validated()
    assert request.lyrics == ""
    assert (request.output_format, request.sample_rate, request.bit_depth) == ("wav", 44100, 16)
    assert request.seed is None and request.candidates == 1


def test_every_problem_is_reported_at_once_by_field():
    with pytest.raises(InvalidRequest) as excinfo:
        GenerationRequest(prompt=" ", duration=0, candidates=9, bpm=500, key="H major", sample_rate=22050,
                          bit_depth=8, output_format="mp3", time_signature="5/4").validated()
    found = problems_by_field(excinfo)
    assert set(found) == {"prompt", "duration", "candidates", "bpm", "key", "sample_rate", "bit_depth",
                          "output_format", "time_signature"}
    assert found["duration"] == "duration must be between 1 and 600 seconds, got 0"
    assert "between 1 and 8" in found["candidates"]


@pytest.mark.parametrize("text, expected", [
    ("E minor", "E minor"), ("Em", "E minor"), ("e min", "E minor"), ("Bb minor", "A# minor"),
    ("F#", "F# major"), ("C major", "C major"), ("Ab maj", "G# major"), ("c♯m", "C# minor"),
])
def test_keys_are_normalized(text, expected):
    assert normalize_key(text) == expected
    assert GenerationRequest(prompt="x", key=text).validated().key == expected


@pytest.mark.parametrize("task, extra, field", [
    ("repaint", {}, "source_audio"),
    ("repaint", {"source_audio": "up-1"}, "repaint_start"),
    ("repaint", {"source_audio": "up-1", "repaint_start": 5.0, "repaint_end": 2.0}, "repaint_start"),
    ("cover", {}, "source_audio"),
    ("text2music", {"source_audio": "x.wav"}, "source_audio"),
    ("text2music", {"repaint_start": 1.0}, "repaint_start"),
])
def test_task_fields_must_fit_the_task(task, extra, field):
    with pytest.raises(InvalidRequest) as excinfo:
        GenerationRequest(prompt="x", task=task, **extra).validated()
    assert field in problems_by_field(excinfo)


def test_valid_repaint_and_cover():
    GenerationRequest(prompt="x", task="repaint", source_audio="up-1", repaint_start=1, repaint_end=4).validated()
    GenerationRequest(prompt="x", task="cover", source_audio="up-1", cover_strength=0.4).validated()


def test_unknown_fields_are_an_error_not_dropped():
    with pytest.raises(InvalidRequest) as excinfo:
        GenerationRequest.from_dict({"prompt": "x", "temprature": 1.0})
    assert "unknown field 'temprature'" in problems_by_field(excinfo)["temprature"]


@pytest.mark.parametrize("field, value", [
    ("duration", "30"), ("candidates", 2.5), ("candidates", True), ("seed", "7"), ("prompt", 5),
    ("bpm", [120]), ("key", 3),
])
def test_wrong_json_types_are_named(field, value):
    with pytest.raises(InvalidRequest) as excinfo:
        GenerationRequest.from_dict({"prompt": "x", field: value})
    assert field in problems_by_field(excinfo)


def test_missing_prompt_and_bad_json():
    with pytest.raises(InvalidRequest) as excinfo:
        GenerationRequest.from_dict({"duration": 10})
    assert "prompt" in problems_by_field(excinfo)
    with pytest.raises(InvalidRequest) as excinfo:
        GenerationRequest.from_json("{not json")
    assert "not valid JSON" in excinfo.value.problems[0].message
    with pytest.raises(InvalidRequest):
        GenerationRequest.from_json("[1, 2]")


def test_non_finite_numbers_are_rejected():
    with pytest.raises(InvalidRequest) as excinfo:
        GenerationRequest.from_json('{"prompt": "x", "duration": NaN, "bpm": Infinity}')
    assert {"duration", "bpm"} <= set(problems_by_field(excinfo))


@pytest.mark.parametrize("name", ["../escape", "a/b", "/etc/passwd", ".hidden", "a\\b", "x" * 200, ""])
def test_file_names_cannot_carry_folders(name):
    with pytest.raises(InvalidRequest) as excinfo:
        GenerationRequest(prompt="x", file_name=name).validated()
    assert "file_name" in problems_by_field(excinfo)


valid_requests = st.builds(
    GenerationRequest,
    prompt=st.text(min_size=1, max_size=40).filter(str.strip),
    duration=st.floats(1, 600),
    seed=st.none() | st.integers(0, 2**32 - 1),
    candidates=st.integers(1, 8),
    bpm=st.none() | st.floats(30, 300),
    key=st.none() | st.sampled_from(["C major", "E minor", "Bb major", "F# minor"]),
    output_format=st.sampled_from(["wav", "flac", "ogg"]),
    sample_rate=st.sampled_from([44100, 48000]),
    bit_depth=st.sampled_from([16, 24]),
)


@given(valid_requests)
def test_json_round_trip(request):
    request = request.validated()
    assert GenerationRequest.from_json(request.to_json()) == request
    assert json.loads(request.to_json())["prompt"] == request.prompt


def test_integers_too_large_for_a_float_are_a_field_problem():
    with pytest.raises(InvalidRequest) as excinfo:
        GenerationRequest.from_json('{"prompt": "x", "duration": 1%s, "bpm": 1%s}' % ("0" * 400, "0" * 400))
    assert {"duration", "bpm"} <= set(problems_by_field(excinfo))


# -- text that is not text: lone surrogates (JSON "\ud800") and argv bytes that are not UTF-8 --


@pytest.mark.parametrize("field", ["prompt", "lyrics", "key", "file_name"])
def test_a_lone_surrogate_is_refused_at_validation(field):
    data = {"prompt": "boss battle", field: "boss \ud800 battle"}
    with pytest.raises(InvalidRequest) as excinfo:
        GenerationRequest.from_dict(data)
    found = problems_by_field(excinfo)
    assert list(found) == [field]
    assert found[field] == (f"{field} is not valid UTF-8 text (character 6 is a lone surrogate, '\\ud800'); "
                            "type it again, or save it as UTF-8")
    # The sentence itself is plain text: it can be printed, logged and sent as JSON.
    found[field].encode("utf-8")


def test_argv_bytes_that_are_not_utf8_read_as_such():
    # What Python makes of b"boss \xff battle" in argv (surrogateescape).
    prompt = b"boss \xff battle".decode("utf-8", "surrogateescape")
    with pytest.raises(InvalidRequest) as excinfo:
        GenerationRequest(prompt=prompt).validated()
    assert problems_by_field(excinfo) == {
        "prompt": "prompt is not valid UTF-8 text (character 6 is a lone surrogate, '\\udcff'); type it again, or save it as UTF-8"}


def test_the_cli_refuses_a_prompt_that_is_not_utf8(tmp_path):
    import os
    import subprocess
    import sys

    out = tmp_path / "cue.wav"
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "LC_ALL": "C.UTF-8"}
    done = subprocess.run([sys.executable, "-m", "acestep_core", "generate", b"boss \xff battle", "-o", str(out),
                           "--seconds", "2", "--backend", "sketch"], capture_output=True, env=env, timeout=60)
    assert done.returncode == 2, done.stderr
    assert b"prompt is not valid UTF-8 text (character 6" in done.stderr
    assert b"Traceback" not in done.stderr
    assert not list(tmp_path.iterdir())


def test_a_whole_number_written_with_a_decimal_point_is_that_number():
    # JSON, and JSON Schema's "integer", do not tell 2.0 from 2 (the worker's schema says integer).
    request = GenerationRequest.from_dict({"prompt": "x", "candidates": 2.0, "seed": 7.0, "sample_rate": 48000.0})
    assert (request.candidates, request.seed, request.sample_rate) == (2, 7, 48000)
    assert all(type(v) is int for v in (request.candidates, request.seed, request.sample_rate))
    with pytest.raises(InvalidRequest):
        GenerationRequest.from_dict({"prompt": "x", "candidates": 2.5})


# -- issue 13: the edit tasks' fields -------------------------------------------------------

from acestep_core.request import BASE_ONLY_TASKS, SOURCE_TASKS, TASKS, TRACK_NAMES  # noqa: E402

ALL_TRACKS = ", ".join(TRACK_NAMES)


def test_the_task_lists_follow_ace_step():
    assert TASKS == ("text2music", "repaint", "cover", "extract", "lego", "complete")
    assert SOURCE_TASKS == ("repaint", "cover", "extract", "lego", "complete")
    assert BASE_ONLY_TASKS == ("extract", "lego", "complete")


def test_edit_tasks_round_trip_through_json():
    for data in ({"prompt": "x", "task": "extract", "track": "drums", "source_audio": "up-1"},
                 {"prompt": "x", "task": "lego", "track": "guitar", "source_audio": "up-1",
                  "repaint_start": 1.0, "repaint_end": 2.5},
                 {"prompt": "x", "task": "lego", "track": "guitar", "source_audio": "up-1"},
                 {"prompt": "x", "task": "complete", "tracks": ["drums", "bass"], "source_audio": "up-1"},
                 {"prompt": "x", "task": "extract", "stems": True, "tracks": ["drums", "bass"], "source_audio": "up-1"},
                 {"prompt": "x", "reference_audio": "up-2", "stems": True, "tracks": ["drums"]},
                 {"prompt": "x", "task": "cover", "source_audio": "up-1", "reference_audio": "up-2"}):
        request = GenerationRequest.from_dict(data)
        assert GenerationRequest.from_json(request.to_json()) == request
        assert {k: request.to_dict()[k] for k in data} == data


def test_an_unknown_track_is_refused_with_the_whole_list():
    with pytest.raises(InvalidRequest) as excinfo:
        GenerationRequest.from_dict({"prompt": "x", "task": "extract", "track": "drum", "source_audio": "a"})
    assert problems_by_field(excinfo) == {"track": f"track must be one of {ALL_TRACKS}, got 'drum'"}
    with pytest.raises(InvalidRequest) as excinfo:
        GenerationRequest.from_dict({"prompt": "x", "task": "complete", "tracks": ["bass", "drum"], "source_audio": "a"})
    assert problems_by_field(excinfo) == {"tracks": f"track must be one of {ALL_TRACKS}, got 'drum'"}


def test_each_edit_task_says_what_it_needs():
    with pytest.raises(InvalidRequest) as excinfo:
        GenerationRequest.from_dict({"prompt": "x", "task": "lego"})
    assert problems_by_field(excinfo) == {
        "source_audio": "the lego task needs source audio to work from",
        "track": f"lego needs track, the instrument to add: one of {ALL_TRACKS}"}
    with pytest.raises(InvalidRequest) as excinfo:
        GenerationRequest.from_dict({"prompt": "x", "task": "complete", "source_audio": "a"})
    assert problems_by_field(excinfo) == {"tracks": f"complete needs tracks, the instruments to add, from {ALL_TRACKS}"}
    with pytest.raises(InvalidRequest) as excinfo:
        GenerationRequest.from_dict({"prompt": "x", "task": "lego", "track": "bass", "source_audio": "a", "repaint_start": 2})
    assert set(problems_by_field(excinfo)) == {"repaint_start"}


def test_fields_a_task_does_not_use_are_refused():
    with pytest.raises(InvalidRequest) as excinfo:
        GenerationRequest.from_dict({"prompt": "x", "track": "bass", "tracks": ["drums"],
                                     "task": "repaint", "source_audio": "a", "repaint_start": 0, "repaint_end": 1,
                                     "reference_audio": "r"})
    assert problems_by_field(excinfo) == {
        "track": "track is only used by the extract and lego tasks; remove it or set the task",
        "tracks": "tracks is only used by the complete task and by stems; remove it, set the task to complete or turn stems on",
        "reference_audio": "reference_audio is only used by the text2music and cover tasks; remove it for repaint"}
    with pytest.raises(InvalidRequest) as excinfo:
        GenerationRequest.from_dict({"prompt": "x", "tracks": "drums", "stems": "yes"})
    assert set(problems_by_field(excinfo)) == {"tracks", "stems"}
    with pytest.raises(InvalidRequest) as excinfo:
        GenerationRequest.from_dict({"prompt": "x", "stems": True, "tracks": ["bass", "bass"]})
    assert problems_by_field(excinfo) == {"tracks": "tracks names 'bass' twice; name each track once"}
