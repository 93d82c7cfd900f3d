"""File naming shared by the CLI, the worker and both hosts (acestep_core.output_names)."""

from __future__ import annotations

from pathlib import Path

import pytest

from acestep_core.errors import InvalidRequest
from acestep_core.output_names import (
    candidate_paths, first_free_paths, output_format_for, refuse_existing, sidecar_path,
)


def test_every_audio_file_has_its_own_sidecar():
    assert sidecar_path(Path("cues/x.ogg")) == Path("cues/x.ogg.json")
    assert sidecar_path(Path("cues/x.flac")) != sidecar_path(Path("cues/x.ogg"))


@pytest.mark.parametrize("name, explicit, expected", [
    ("boss.wav", None, "wav"), ("boss.FLAC", None, "flac"), ("boss", None, "wav"), ("boss", "ogg", "ogg"),
    ("scene.1", None, "wav"), ("boss.ogg", "ogg", "ogg"),
])
def test_output_format_follows_the_name_or_the_option(name, explicit, expected):
    assert output_format_for(name, explicit) == expected


@pytest.mark.parametrize("name, explicit, words", [
    ("boss.mp3", None, ["boss.mp3", "WAV, FLAC and Ogg", "boss.wav"]),
    ("boss.aiff", None, ["boss.aiff", "boss.flac"]),
    ("boss.wav", "flac", ["WAV", "FLAC", "boss.flac"]),
])
def test_other_extensions_are_refused_with_the_name_to_use(name, explicit, words):
    with pytest.raises(InvalidRequest) as caught:
        output_format_for(name, explicit)
    for word in words:
        assert word in str(caught.value)


def test_candidates_are_numbered_after_the_stem():
    assert candidate_paths(Path("o/boss.wav"), "wav", 1) == [Path("o/boss.wav")]
    assert candidate_paths(Path("o/boss.wav"), "flac", 2) == [Path("o/boss-1.flac"), Path("o/boss-2.flac")]


def test_a_taken_audio_file_or_sidecar_is_refused(tmp_path: Path):
    refuse_existing([tmp_path / "boss.wav"])  # nothing there yet
    (tmp_path / "boss-2.wav.json").write_text("{}")
    with pytest.raises(InvalidRequest) as caught:
        refuse_existing(candidate_paths(tmp_path / "boss.wav", "wav", 2))
    assert "boss-2.wav.json" in str(caught.value) and "--overwrite" in str(caught.value)


def test_first_free_paths_skip_every_taken_name(tmp_path: Path):
    assert first_free_paths(tmp_path / "boss.wav", "wav") == [tmp_path / "boss.wav"]
    (tmp_path / "boss.wav").write_bytes(b"")
    (tmp_path / "boss_2.wav.json").write_text("{}")  # a sidecar alone still takes the name
    assert first_free_paths(tmp_path / "boss.wav", "wav") == [tmp_path / "boss_3.wav"]
    # Another format's file does not take the name: each file has its own sidecar.
    assert first_free_paths(tmp_path / "boss.flac", "flac", 2) == [tmp_path / "boss-1.flac", tmp_path / "boss-2.flac"]
