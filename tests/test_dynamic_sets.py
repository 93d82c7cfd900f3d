"""Dynamic-music sets: matched loops (length, tempo, key, loop points) at rising intensity,
stingers, a manifest that matches the files, and the Godot resource, on the real sketch
backend and (cover path) the tiny ACE-Step checkpoint."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import wavinfo

from acestep_core.audio.analysis import estimate_key
from acestep_core.backends.sketch import SketchBackend
from acestep_core.cli import main
from acestep_core.dynamic_sets import build_dynamic_set, intensity_levels
from acestep_core.errors import GenerationCancelled, InvalidRequest
from acestep_core.request import GenerationRequest


def check_set_matches_its_manifest(folder: Path, manifest: dict) -> None:
    """Every claim in the manifest, checked against the files with independent readers."""
    loop = manifest["loop"]
    names = [layer["file"] for layer in manifest["layers"]]
    assert manifest["intensity_order"] == names
    intensities = [layer["intensity"] for layer in manifest["layers"]]
    assert intensities == sorted(intensities)
    for entry in [manifest["base"], *manifest["layers"]]:
        path = folder / entry["file"]
        info = sf.info(path)
        assert info.frames == entry["frames"] and info.samplerate == manifest["format"]["sample_rate"]
        sidecar = json.loads((folder / entry["sidecar"]).read_text())
        assert sidecar["loop"]["loop_start"] == loop["loop_start"]
        assert sidecar["loop"]["loop_end_exclusive"] == loop["loop_end_exclusive"]
        assert sidecar["loop"]["bpm"] == manifest["bpm"] and sidecar["loop"]["bars"] == manifest["bars"]
        assert sidecar["key"]["used"] == manifest["key"]
        if path.suffix == ".wav":
            (smpl_loop,) = wavinfo.WavInfoReader(str(path)).smpl.sample_loops
            assert (smpl_loop.start, smpl_loop.end) == (loop["loop_start"], loop["smpl_end"])
    for stinger in manifest["stingers"]:
        sidecar = json.loads((folder / stinger["sidecar"]).read_text())
        assert sidecar["key"]["used"] == manifest["key"] and sidecar["tempo"]["used"] == manifest["bpm"]
        assert sf.info(folder / stinger["file"]).frames == stinger["frames"]
        assert sidecar["loop"] is None


def read_godot_resource(path: Path) -> tuple[str, dict[str, str], dict[str, str]]:
    """(header, ext_resources id -> path, [resource] properties) from a Godot text resource."""
    text = path.read_text()
    header = text.splitlines()[0]
    externals = dict((m.group(2), m.group(1)) for m in re.finditer(
        r'^\[ext_resource type="AudioStream" path="([^"]+)" id="([^"]+)"\]$', text, re.M))
    body = text.split("[resource]\n", 1)[1]
    properties = {}
    for line in body.split("\n_transitions")[0].strip().splitlines():
        key, value = line.split(" = ", 1)
        properties[key] = value
    properties["_transitions"] = "_transitions" + body.split("\n_transitions", 1)[1]
    return header, externals, properties


@pytest.fixture(scope="module")
def sketch_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sets") / "boss"
    request = GenerationRequest(prompt="boss battle, rock", seed=21, loudness="console")
    result = build_dynamic_set(request, SketchBackend(), folder, intensities=3, bars=4, stingers=2)
    return folder, result


def test_set_files_share_length_tempo_key_and_loop_points(sketch_set):
    folder, result = sketch_set
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest == json.loads(json.dumps(result.manifest))
    assert len(manifest["layers"]) == 3 and len(manifest["stingers"]) == 2
    check_set_matches_its_manifest(folder, manifest)
    lengths = {sf.info(folder / layer["file"]).frames for layer in manifest["layers"]}
    assert lengths == {manifest["base"]["frames"]}
    assert [layer["intensity"] for layer in manifest["layers"]] == intensity_levels(3) == [0.0, 0.5, 1.0]
    # The key the set claims is the key the audio is in.
    for layer in manifest["layers"]:
        audio, rate = sf.read(folder / layer["file"], always_2d=True)
        assert estimate_key(audio, rate).key == manifest["key"]


def test_manifest_maps_onto_fmod_wwise_and_godot(sketch_set):
    folder, result = sketch_set
    engines = result.manifest["engines"]
    names = [layer["name"] for layer in result.manifest["layers"]]
    assert engines["fmod"]["parameter"]["labels"] == names
    assert engines["fmod"]["timeline"]["loop_region_samples"] == [0, result.manifest["loop"]["loop_end_exclusive"]]
    assert engines["wwise"]["states"] == [name.replace(" ", "_") for name in names]
    assert engines["godot"]["resource"] == result.godot_resource_path.name


def test_godot_resource_names_every_level(sketch_set):
    folder, result = sketch_set
    header, externals, properties = read_godot_resource(result.godot_resource_path)
    assert header == '[gd_resource type="AudioStreamInteractive" load_steps=4 format=3]'
    assert int(properties["clip_count"]) == 3 and properties["initial_clip"] == "0"
    for index, layer in enumerate(result.manifest["layers"]):
        assert properties[f"clip_{index}/name"] == f'&"{layer["name"]}"'
        ident = re.fullmatch(r'ExtResource\("([^"]+)"\)', properties[f"clip_{index}/stream"]).group(1)
        assert externals[ident] == layer["file"] and (folder / externals[ident]).is_file()
    transitions = properties["_transitions"]
    assert "Vector2i(-1, -1): {" in transitions and transitions.count("{") == transitions.count("}")


def test_stingers_are_short_and_in_the_key(sketch_set):
    folder, result = sketch_set
    manifest = result.manifest
    beat_s = 60 / manifest["bpm"]
    for stinger in manifest["stingers"]:
        assert stinger["seconds"] == pytest.approx((2 * manifest["beats_per_bar"] + 2) * beat_s, abs=1e-3)


def test_cancel_leaves_nothing_behind(tmp_path: Path):
    """Cancelled while the first intensity level generates: the base cue, already written, goes too."""
    stages: list[str] = []

    def cancel_once_the_levels_start() -> bool:
        return any(stage.startswith("intensity 1/") for stage in stages)

    with pytest.raises(GenerationCancelled):
        build_dynamic_set(GenerationRequest(prompt="tense stealth, synthwave", seed=1), SketchBackend(), tmp_path,
                          intensities=3, bars=2, stingers=1, on_progress=lambda p: stages.append(p.stage),
                          is_cancelled=cancel_once_the_levels_start)
    assert any(stage.startswith("base cue: done") for stage in stages)
    assert list(tmp_path.iterdir()) == []


def test_a_set_over_taken_names_is_refused_before_generating(tmp_path: Path):
    (tmp_path / "boss-intensity-2.wav.json").write_text("{}")
    generated: list[str] = []
    with pytest.raises(InvalidRequest, match="boss-intensity-2.wav.json already exists.*--overwrite"):
        build_dynamic_set(GenerationRequest(prompt="boss"), SketchBackend(), tmp_path, intensities=2, bars=1,
                          stingers=0, on_progress=lambda p: generated.append(p.stage))
    assert generated == [] and sorted(p.name for p in tmp_path.iterdir()) == ["boss-intensity-2.wav.json"]


def test_a_numbered_set_takes_the_first_free_name_for_all_its_files(tmp_path: Path):
    (tmp_path / "boss-set.tres").write_text("mine")
    result = build_dynamic_set(GenerationRequest(prompt="boss", seed=2), SketchBackend(), tmp_path, intensities=1,
                               bars=1, stingers=1, existing="number")
    assert result.manifest_path.name == "boss_2-set.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "boss-set.tres", "boss_2-base.wav", "boss_2-base.wav.json", "boss_2-intensity-1.wav",
        "boss_2-intensity-1.wav.json", "boss_2-set.json", "boss_2-set.tres", "boss_2-stinger-1.wav",
        "boss_2-stinger-1.wav.json"]
    assert result.manifest["base"]["sidecar"] == "boss_2-base.wav.json"
    assert (tmp_path / "boss-set.tres").read_text() == "mine"


def test_set_warnings_reach_the_manifest(tmp_path: Path):
    result = build_dynamic_set(GenerationRequest(prompt="boss battle, rock", seed=2, loudness=-5,
                                                 true_peak_ceiling_db=-2), SketchBackend(), tmp_path,
                               intensities=1, bars=2, stingers=0)
    assert result.warnings and all(text.startswith("boss-battle-rock-") and "aimed for -5 LUFS" in text
                                   for text in result.warnings)
    assert result.manifest["warnings"] == result.warnings
    assert result.manifest["base"]["warnings"] == result.base.warnings != []


def test_bad_counts_are_sentences(tmp_path: Path):
    with pytest.raises(InvalidRequest, match="intensities must be a whole number from 1 to 8"):
        build_dynamic_set(GenerationRequest(prompt="x"), SketchBackend(), tmp_path, intensities=0)
    assert list(tmp_path.iterdir()) == []


def test_cli_set_command(tmp_path: Path, capsys):
    folder = tmp_path / "boss"
    assert main(["set", "boss battle, rock", "--intensities", "2", "--bars", "2", "--stingers", "1", "--bpm", "128",
                 "--key", "A minor", "--format", "flac", "--loudness", "mobile", "--backend", "sketch",
                 "-o", str(folder), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert (manifest["bpm"], manifest["key"], manifest["bars"]) == (128.0, "A minor", 2)
    check_set_matches_its_manifest(folder, manifest)
    # FLAC holds exactly the loop: no guard frame, no smpl chunk, loop points in the manifest.
    assert manifest["base"]["frames"] == manifest["loop"]["loop_end_exclusive"] and "smpl_end" not in manifest["loop"]


def test_tiny_checkpoint_set_covers_the_base_cue(tiny_checkpoint: Path, tmp_path: Path):
    from acestep_core.backends.acestep import AceStepBackend

    backend = AceStepBackend(tiny_checkpoint, device="cpu")
    request = GenerationRequest(prompt="boss battle", bpm=120, key="E minor", seed=3, loudness="mobile")
    result = build_dynamic_set(request, backend, tmp_path, intensities=2, bars=2, stingers=1)
    manifest = result.manifest
    assert manifest["arrangement"] == "cover of the base cue per level"
    check_set_matches_its_manifest(tmp_path, manifest)
    for layer in manifest["layers"]:
        sidecar = json.loads((tmp_path / layer["sidecar"]).read_text())
        assert sidecar["request"]["task"] == "cover" and sidecar["request"]["intensity"] == layer["intensity"]
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # the cover source is gone
    audio = [sf.read(tmp_path / layer["file"], always_2d=True)[0] for layer in manifest["layers"]]
    assert not np.array_equal(audio[0], audio[1])
