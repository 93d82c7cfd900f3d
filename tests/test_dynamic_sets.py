"""Dynamic-music sets on the real sketch backend and the tiny ACE-Step checkpoints.

Layers (the default, `set --intensities N`): stems of one loop, sample-aligned, of one
length and loop points, each adding parts; their sum is the base mix. Variants
(`set --variants N`): matched loops at rising intensity. Both: stingers, a manifest that
matches the files, and Godot text resources that parse."""

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
from acestep_core.dynamic_sets import (
    GODOT_LAYER_OFF_DB, build_dynamic_set, intensity_levels, layer_order, layer_plan,
)
from acestep_core.errors import GenerationCancelled, InvalidRequest
from acestep_core.generation import generate_cues
from acestep_core.request import GenerationRequest

# The tempo is the prompt's midpoint, as the set was made before seeds chose tempos: at
# seed 21's own 158 BPM, the 4-bar verse variant (i iv VII i power chords) reads G major at
# 0.571 against D minor's 0.557 in the key finder, a near tie on six seconds of audio.
BOSS = GenerationRequest(prompt="boss battle, rock", seed=21, bpm=155, loudness="console")


def check_loop_files(folder: Path, manifest: dict, entries: list[dict]) -> None:
    """Every file in `entries` and the base: the manifest's frames and rate, and the set's
    loop points in its sidecar and (WAV) its smpl chunk, read with independent readers."""
    loop = manifest["loop"]
    for entry in [manifest["base"], *entries]:
        path = folder / entry["file"]
        info = sf.info(path)
        assert info.frames == entry["frames"] == manifest["base"]["frames"]
        assert info.samplerate == manifest["format"]["sample_rate"] and info.channels == 2
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


def check_variants_match_their_manifest(folder: Path, manifest: dict) -> None:
    assert manifest["mode"] == "variants" and manifest["layers"] is None
    names = [variant["file"] for variant in manifest["variants"]]
    assert manifest["intensity_order"] == names
    intensities = [variant["intensity"] for variant in manifest["variants"]]
    assert intensities == sorted(intensities)
    check_loop_files(folder, manifest, manifest["variants"])


def read(path: Path) -> np.ndarray:
    return sf.read(path, dtype="float64", always_2d=True)[0]


# -- Godot's text resource format (format=3), read the way its loader reads it ------------------


def parse_godot_resource(path: Path) -> dict:
    """{"header": (type, attrs), "ext": {id: (type, path)}, "properties": {name: value text}}.

    Sections are `[tag key=value ...]` lines; each property is `name = value`, a value
    running over several lines until its brackets and braces close. Anything else is an
    error, as it is for Godot's loader."""
    sections: list[tuple[str, dict, dict]] = []
    lines = path.read_text().split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.strip():
            continue
        header = re.fullmatch(r"\[(\w+)((?: \w+=(?:\"[^\"]*\"|[-\w.]+))*)\]", line)
        if header:
            attrs = {m.group(1): m.group(2).strip('"') for m in re.finditer(r" (\w+)=(\"[^\"]*\"|[-\w.]+)", header.group(2))}
            sections.append((header.group(1), attrs, {}))
            continue
        assignment = re.fullmatch(r"([\w/]+) = (.*)", line)
        assert assignment and sections, f"not Godot's text resource format: {line!r}"
        value = assignment.group(2)
        while value.count("{") + value.count("[") + value.count("(") > value.count("}") + value.count("]") + value.count(")"):
            value += "\n" + lines[index]
            index += 1
        sections[-1][2][assignment.group(1)] = value
    (kind, attrs, _), *rest = sections
    assert kind == "gd_resource" and attrs["format"] == "3"
    ext = {a["id"]: (a["type"], a["path"]) for tag, a, _ in rest if tag == "ext_resource"}
    [properties] = [props for tag, _, props in rest if tag == "resource"]
    assert int(attrs["load_steps"]) == len(ext) + 1
    return {"type": attrs["type"], "ext": ext, "properties": properties}


def ext_target(parsed: dict, value: str) -> str:
    ident = re.fullmatch(r'ExtResource\("([^"]+)"\)', value).group(1)
    kind, target = parsed["ext"][ident]
    assert kind == "AudioStream"
    return target


def godot_transitions(value: str) -> dict[tuple[int, int], dict]:
    """The _transitions dictionary: Vector2i(from, to) keys, each a dictionary of numbers and booleans."""
    found = {}
    for match in re.finditer(r"Vector2i\((-?\d+), (-?\d+)\): \{([^{}]*)\}", value):
        body = {k: json.loads(v) for k, v in re.findall(r'"(\w+)": ([-\w.]+)', match.group(3))}
        found[(int(match.group(1)), int(match.group(2)))] = body
    assert value.startswith("{") and value.endswith("}") and value.count("Vector2i(") == len(found)
    return found


# -- layers ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def layered_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sets") / "boss"
    result = build_dynamic_set(BOSS, SketchBackend(), folder, intensities=3, bars=4, stingers=2)
    return folder, result


def test_layers_are_sample_aligned_with_one_length_and_loop_points(layered_set):
    folder, result = layered_set
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest == json.loads(json.dumps(result.manifest))
    assert manifest["mode"] == result.mode == "layers" and manifest["layer_files"] == "stems"
    assert manifest["variants"] is None and manifest["fallback"] is None
    assert len(manifest["layers"]) == 3 and len(manifest["stingers"]) == 2
    assert manifest["intensity_order"] == [layer["file"] for layer in manifest["layers"]]
    check_loop_files(folder, manifest, manifest["layers"])
    # Each layer's own sidecar says what it holds and what it is part of.
    for layer in manifest["layers"]:
        sidecar = json.loads((folder / layer["sidecar"]).read_text())
        assert sidecar["layer_of"] == manifest["base"]["file"] and sidecar["parts"] == layer["parts"]
        assert sidecar["layer"] == layer["level"] and sidecar["layers"] == 3
    # The base's per-part stems were only a step: the folder is the set.
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [e for entry in [manifest["base"], *manifest["layers"], *manifest["stingers"]]
         for e in (entry["file"], entry["sidecar"])] + ["boss-battle-rock-set.json", "boss-battle-rock-set.tres",
                                                        "boss-battle-rock-layers.tres"])
    base_sidecar = json.loads((folder / manifest["base"]["sidecar"]).read_text())
    assert "stems" not in base_sidecar and base_sidecar["set_layers"] == manifest["intensity_order"]


def test_each_layer_adds_parts_and_all_of_them_are_the_base_mix(layered_set, tmp_path):
    folder, result = layered_set
    manifest = result.manifest
    parts = [layer["parts"] for layer in manifest["layers"]]
    # The parts are the sketch's own, each in one layer, from the bed up (the parts each
    # stem plays, as the sketch records them), the fewest in layer 1.
    flat = [track for group in parts for track in group]
    stem_parts = json.loads((folder / manifest["base"]["sidecar"]).read_text())["settings"]["stem_parts"]
    assert len(flat) == len(set(flat)) and flat == layer_order(flat, stem_parts)
    assert flat == ["keyboard", "guitar", "bass", "drums"]  # organ pad, power chords (and the lead), the groove
    assert [len(group) for group in parts] == sorted(len(group) for group in parts)
    assert [level["layers"] for level in manifest["levels"]] == [manifest["intensity_order"][:k] for k in (1, 2, 3)]

    # Each layer holds exactly its parts: the same request made again with its stems
    # (an independent run of the backend) gives, per layer, the sum of those parts' stems.
    again = tmp_path / "again.wav"
    (mix,) = generate_cues(GenerationRequest(**{**json.loads((folder / manifest["base"]["sidecar"]).read_text())["request"]}),
                           SketchBackend(), again)
    assert sorted(mix.stems) == sorted(flat)
    bit = 1.0 / 32768
    for group, layer in zip(parts, manifest["layers"]):
        expected = sum(read(Path(mix.stems[track])) for track in group)
        assert np.max(np.abs(read(folder / layer["file"]) - expected)) <= len(group) * bit

    # Level by level the music grows: layer k adds energy to what layers 1..k-1 play,
    # and every layer is heard on its own.
    layers = [read(folder / layer["file"]) for layer in manifest["layers"]]
    levels = np.cumsum(layers, axis=0)
    energy = [float(np.sum(level ** 2)) for level in levels]
    assert energy == sorted(energy) and len(set(energy)) == 3
    assert all(np.sqrt(np.mean(layer ** 2)) > 1e-3 for layer in layers)
    # All layers together are the base mix (console loudness leaves its limiter idle), to
    # the rounding of each part to 16 bits.
    base = read(folder / manifest["base"]["file"])
    assert json.loads((folder / manifest["base"]["sidecar"]).read_text())["loudness"]["limiter_reduction_db"] == 0
    assert np.max(np.abs(levels[-1] - base)) <= (len(flat) + 1) / 2 * bit + 1e-12
    assert manifest["layers_sum"]["max_difference"] <= (len(flat) + 1) / 2 * bit + 1e-12
    # The key the set claims is the key the layers play in together.
    assert estimate_key(levels[-1], manifest["format"]["sample_rate"]).key == manifest["key"]


def test_layer_manifest_maps_onto_fmod_wwise_and_godot(layered_set):
    _, result = layered_set
    manifest = result.manifest
    engines, files = manifest["engines"], manifest["intensity_order"]
    fmod = engines["fmod"]
    assert fmod["event"] == "multi-track" and fmod["parameter"]["name"] == "Intensity"
    assert (fmod["parameter"]["minimum"], fmod["parameter"]["maximum"]) == (0, 2)
    assert [track["instrument"] for track in fmod["tracks"]] == files
    assert all(track["start_samples"] == 0 for track in fmod["tracks"])  # every layer from the same sample
    assert fmod["timeline"]["loop_region_samples"] == [0, manifest["loop"]["loop_end_exclusive"]]
    # Layer k (0-based) is silent below intensity k - 1 and full from k.
    assert fmod["tracks"][0]["volume_automation"] == [{"intensity": 0, "volume_db": 0.0}]
    assert fmod["tracks"][2]["volume_automation"] == [{"intensity": 1, "volume_db": -80.0},
                                                      {"intensity": 2, "volume_db": 0.0}]
    wwise = engines["wwise"]
    assert [track["file"] for track in wwise["music_segment"]["tracks"]] == files
    assert wwise["music_segment"]["exit_cue_samples"] == manifest["loop"]["loop_end_exclusive"]
    assert [state["tracks_audible"] for state in wwise["states"]] == [["Layer 1"], ["Layer 1", "Layer 2"],
                                                                      ["Layer 1", "Layer 2", "Layer 3"]]
    godot = engines["godot"]
    assert godot["class"] == "AudioStreamSynchronized" and godot["resource"] == result.godot_layers_path.name
    assert godot["streams"] == files and godot["volume_db"] == [0.0, GODOT_LAYER_OFF_DB, GODOT_LAYER_OFF_DB]
    assert godot["interactive_resource"] == result.godot_resource_path.name


def test_godot_resources_for_layers_parse_and_name_the_files(layered_set):
    folder, result = layered_set
    manifest = result.manifest
    synchronized = parse_godot_resource(result.godot_layers_path)
    assert synchronized["type"] == "AudioStreamSynchronized"
    properties = synchronized["properties"]
    assert int(properties["stream_count"]) == 3
    for index, layer in enumerate(manifest["layers"]):
        target = ext_target(synchronized, properties[f"stream_{index}/stream"])
        assert target == layer["file"] and (folder / target).is_file()
        assert float(properties[f"stream_{index}/volume"]) == manifest["engines"]["godot"]["volume_db"][index]
    assert set(properties) == {"stream_count"} | {f"stream_{i}/{p}" for i in range(3) for p in ("stream", "volume")}

    # The interactive resource plays the layers as one clip, and the stingers over them.
    interactive = parse_godot_resource(result.godot_resource_path)
    assert interactive["type"] == "AudioStreamInteractive"
    clips = interactive["properties"]
    assert int(clips["clip_count"]) == 3 and clips["initial_clip"] == "0"
    assert clips["clip_0/name"] == '&"Layers"'
    assert ext_target(interactive, clips["clip_0/stream"]) == result.godot_layers_path.name
    for index, stinger in enumerate(manifest["stingers"], start=1):
        assert clips[f"clip_{index}/name"] == f'&"{stinger["name"]}"'
        assert ext_target(interactive, clips[f"clip_{index}/stream"]) == stinger["file"]
        assert clips[f"clip_{index}/auto_advance"] == "2"  # return to the clip it interrupted
    transitions = godot_transitions(clips["_transitions"])
    assert transitions[(-1, -1)] == {"fade_beats": 1.0, "fade_mode": 3, "from_time": 2, "to_time": 0}
    assert transitions[(-1, 1)]["hold_previous"] is True and transitions[(1, -1)]["to_time"] == 2


def test_layer_plan_puts_the_fewest_parts_in_the_bed():
    assert layer_plan(["drums", "bass", "keyboard", "guitar"], 3) == [["keyboard"], ["bass"], ["drums", "guitar"]]
    assert layer_plan(["drums", "synth"], 4) == [["synth"], ["drums"]]
    assert layer_plan(["vocals", "bass", "strings", "drums", "brass"], 2) == [["strings", "bass"],
                                                                              ["drums", "brass", "vocals"]]
    assert layer_plan([], 3) == []
    # Where the backend says what each stem plays, a stem comes in with its earliest part:
    # a synth that only plays the chorus's pad and lead goes on top.
    jazz = {"drums": [{"role": "drums", "min_energy": 0}], "bass": [{"role": "bass", "min_energy": 0}],
            "keyboard": [{"role": "chords", "min_energy": 0}],
            "synth": [{"role": "pad", "min_energy": 2}, {"role": "lead", "min_energy": 2}]}
    assert layer_order(list(jazz), jazz) == ["keyboard", "bass", "drums", "synth"]
    assert layer_plan(list(jazz), 3, jazz) == [["keyboard"], ["bass"], ["drums", "synth"]]


def test_a_set_asking_for_more_layers_than_parts_says_so(tmp_path: Path):
    result = build_dynamic_set(GenerationRequest(prompt="tense stealth, synthwave", seed=4), SketchBackend(), tmp_path,
                               intensities=5, bars=1, stingers=0)
    manifest = result.manifest
    assert [layer["parts"] for layer in manifest["layers"]] == [["synth"], ["bass"], ["drums"]]
    assert manifest["layer_notes"] == ["asked for 5 layers, but the music plays only 3 parts (synth, bass, drums), "
                                       "so the set has 3 layers"]
    assert not (tmp_path / "tense-stealth-synthwave-layer-4.wav").exists()


# -- variants -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def variant_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sets") / "boss"
    result = build_dynamic_set(BOSS, SketchBackend(), folder, intensities=3, bars=4, stingers=2, mode="variants")
    return folder, result


def test_variants_share_length_tempo_key_and_loop_points(variant_set):
    folder, result = variant_set
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest == json.loads(json.dumps(result.manifest))
    assert len(manifest["variants"]) == 3 and len(manifest["stingers"]) == 2
    check_variants_match_their_manifest(folder, manifest)
    assert [variant["intensity"] for variant in manifest["variants"]] == intensity_levels(3) == [0.0, 0.5, 1.0]
    for variant in manifest["variants"]:
        audio, rate = sf.read(folder / variant["file"], always_2d=True)
        assert estimate_key(audio, rate).key == manifest["key"]
    assert result.godot_layers_path is None


def test_variant_manifest_maps_onto_fmod_wwise_and_godot(variant_set):
    folder, result = variant_set
    engines = result.manifest["engines"]
    names = [variant["name"] for variant in result.manifest["variants"]]
    assert engines["fmod"]["parameter"]["labels"] == names
    assert engines["fmod"]["timeline"]["loop_region_samples"] == [0, result.manifest["loop"]["loop_end_exclusive"]]
    assert engines["wwise"]["states"] == [name.replace(" ", "_") for name in names]
    assert engines["godot"]["resource"] == result.godot_resource_path.name
    assert engines["godot"]["class"] == "AudioStreamInteractive"


def test_godot_resource_names_every_variant_and_stinger(variant_set):
    folder, result = variant_set
    parsed = parse_godot_resource(result.godot_resource_path)
    properties = parsed["properties"]
    assert parsed["type"] == "AudioStreamInteractive"
    assert int(properties["clip_count"]) == 5 and properties["initial_clip"] == "0"
    entries = result.manifest["variants"] + result.manifest["stingers"]
    for index, entry in enumerate(entries):
        assert properties[f"clip_{index}/name"] == f'&"{entry["name"]}"'
        target = ext_target(parsed, properties[f"clip_{index}/stream"])
        assert target == entry["file"] and (folder / target).is_file()
        assert properties[f"clip_{index}/auto_advance"] == ("2" if index >= 3 else "0")
    assert (-1, -1) in godot_transitions(properties["_transitions"])


def test_stingers_are_short_and_in_the_key(variant_set):
    folder, result = variant_set
    manifest = result.manifest
    beat_s = 60 / manifest["bpm"]
    for stinger in manifest["stingers"]:
        assert stinger["seconds"] == pytest.approx((2 * manifest["beats_per_bar"] + 2) * beat_s, abs=1e-3)


# -- both -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode,label", [("variants", "intensity 1/"), ("layers", "layer 1/")])
def test_cancel_leaves_nothing_behind(tmp_path: Path, mode, label):
    """Cancelled once the levels start: the base cue (and its parts), already written, go too."""
    stages: list[str] = []

    def cancel_once_the_levels_start() -> bool:
        return any(stage.startswith(label) for stage in stages)

    with pytest.raises(GenerationCancelled):
        build_dynamic_set(GenerationRequest(prompt="tense stealth, synthwave", seed=1), SketchBackend(), tmp_path,
                          intensities=3, bars=2, stingers=1, on_progress=lambda p: stages.append(p.stage),
                          is_cancelled=cancel_once_the_levels_start, mode=mode)
    assert any(stage.startswith("base cue") and stage.endswith("done") for stage in stages)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("taken", ["boss-intensity-2.wav.json", "boss-layer-2.wav", "boss-base.drums.wav"])
def test_a_set_over_taken_names_is_refused_before_generating(tmp_path: Path, taken):
    mode = "variants" if "intensity" in taken else "layers"
    (tmp_path / taken).write_text("{}")
    generated: list[str] = []
    with pytest.raises(InvalidRequest, match=f"{re.escape(taken)} already exists.*--overwrite"):
        build_dynamic_set(GenerationRequest(prompt="boss"), SketchBackend(), tmp_path, intensities=2, bars=1,
                          stingers=0, on_progress=lambda p: generated.append(p.stage), mode=mode)
    assert generated == [] and sorted(p.name for p in tmp_path.iterdir()) == [taken]


def test_a_numbered_set_takes_the_first_free_name_for_all_its_files(tmp_path: Path):
    (tmp_path / "boss-set.tres").write_text("mine")
    result = build_dynamic_set(GenerationRequest(prompt="boss", seed=2), SketchBackend(), tmp_path, intensities=1,
                               bars=1, stingers=1, existing="number", mode="variants")
    assert result.manifest_path.name == "boss_2-set.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "boss-set.tres", "boss_2-base.wav", "boss_2-base.wav.json", "boss_2-intensity-1.wav",
        "boss_2-intensity-1.wav.json", "boss_2-set.json", "boss_2-set.tres", "boss_2-stinger-1.wav",
        "boss_2-stinger-1.wav.json"]
    assert result.manifest["base"]["sidecar"] == "boss_2-base.wav.json"
    assert (tmp_path / "boss-set.tres").read_text() == "mine"
    layered = build_dynamic_set(GenerationRequest(prompt="boss", seed=2), SketchBackend(), tmp_path, intensities=1,
                                bars=1, stingers=0, existing="number")
    assert layered.manifest_path.name == "boss_3-set.json" and layered.godot_layers_path.name == "boss_3-layers.tres"


def test_set_warnings_reach_the_manifest(tmp_path: Path):
    result = build_dynamic_set(GenerationRequest(prompt="boss battle, rock", seed=2, loudness=-5,
                                                 true_peak_ceiling_db=-2), SketchBackend(), tmp_path,
                               intensities=1, bars=2, stingers=0, mode="variants")
    assert result.warnings and all(text.startswith("boss-battle-rock-") and "aimed for -5 LUFS" in text
                                   for text in result.warnings)
    assert result.manifest["warnings"] == result.warnings
    assert result.manifest["base"]["warnings"] == result.base.warnings != []


def test_a_loud_layered_set_says_its_layers_miss_the_limited_mix(tmp_path: Path):
    result = build_dynamic_set(GenerationRequest(prompt="boss battle, rock", seed=2, loudness=-6), SketchBackend(),
                               tmp_path, intensities=2, bars=2, stingers=0)
    record = result.manifest["layers_sum"]
    assert "limiter" in record["note"] and record["residual_db"] is not None
    base = read(Path(result.base.path))
    total = sum(read(Path(layer.path)) for layer in result.layers)
    assert np.max(np.abs(total - base)) == pytest.approx(record["max_difference"])


def test_bad_counts_are_sentences(tmp_path: Path):
    with pytest.raises(InvalidRequest, match="intensities must be a whole number from 1 to 8"):
        build_dynamic_set(GenerationRequest(prompt="x"), SketchBackend(), tmp_path, intensities=0)
    with pytest.raises(InvalidRequest, match="mode must be one of layers, variants"):
        build_dynamic_set(GenerationRequest(prompt="x"), SketchBackend(), tmp_path, mode="stacked")
    assert list(tmp_path.iterdir()) == []


def test_cli_set_command_makes_layers(tmp_path: Path, capsys):
    folder = tmp_path / "boss"
    assert main(["set", "boss battle, rock", "--intensities", "2", "--bars", "2", "--stingers", "1", "--bpm", "128",
                 "--key", "A minor", "--format", "flac", "--loudness", "mobile", "--backend", "sketch",
                 "-o", str(folder), "--json"]) == 0
    captured = capsys.readouterr()
    manifest = json.loads(captured.out)
    assert "2 layers (stems that stack: Layer 1 keyboard+guitar; Layer 2 bass+drums)" in captured.err
    assert (manifest["bpm"], manifest["key"], manifest["bars"], manifest["mode"]) == (128.0, "A minor", 2, "layers")
    check_loop_files(folder, manifest, manifest["layers"])
    # FLAC holds exactly the loop: no guard frame, no smpl chunk, loop points in the manifest.
    assert manifest["base"]["frames"] == manifest["loop"]["loop_end_exclusive"] and "smpl_end" not in manifest["loop"]


def test_cli_set_command_makes_variants(tmp_path: Path, capsys):
    folder = tmp_path / "boss"
    assert main(["set", "boss battle, rock", "--variants", "2", "--bars", "2", "--stingers", "0", "--bpm", "128",
                 "--backend", "sketch", "-o", str(folder), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    check_variants_match_their_manifest(folder, manifest)
    assert main(["set", "x", "--variants", "9", "--backend", "sketch", "-o", str(folder)]) == 2
    assert capsys.readouterr().err.strip().endswith("--variants must be a whole number from 1 to 8, got 9")


# -- the tiny ACE-Step checkpoints --------------------------------------------------------------


def test_tiny_turbo_checkpoint_falls_back_to_covers_and_says_so(tiny_checkpoint: Path, tmp_path: Path):
    from acestep_core.backends.acestep import AceStepBackend

    backend = AceStepBackend(tiny_checkpoint, device="cpu")
    request = GenerationRequest(prompt="boss battle", bpm=120, key="E minor", seed=3, loudness="mobile")
    result = build_dynamic_set(request, backend, tmp_path, intensities=2, bars=2, stingers=1)
    manifest = result.manifest
    assert manifest["mode"] == "variants" and manifest["layers"] is None
    assert "cannot make stems" in manifest["fallback"] and "turbo" in manifest["fallback"]
    assert "base or sft checkpoint" in manifest["fallback"]
    assert manifest["arrangement"] == "cover of the base cue per level"
    check_variants_match_their_manifest(tmp_path, manifest)
    for variant in manifest["variants"]:
        sidecar = json.loads((tmp_path / variant["sidecar"]).read_text())
        assert sidecar["request"]["task"] == "cover" and sidecar["request"]["intensity"] == variant["intensity"]
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # the cover source is gone
    audio = [sf.read(tmp_path / variant["file"], always_2d=True)[0] for variant in manifest["variants"]]
    assert not np.array_equal(audio[0], audio[1])


def test_tiny_base_checkpoint_layers_by_extract_and_lego(tiny_checkpoint_factory, tmp_path: Path):
    from acestep_core.backends.acestep import AceStepBackend
    from acestep_core.dynamic_sets import LAYER_EXTRACT_TRACKS, LEGO_TRACKS

    backend = AceStepBackend(tiny_checkpoint_factory("acestep-v15-tiny-base", variant="base"), device="cpu")
    count = len(LAYER_EXTRACT_TRACKS) + 1  # one more layer than the mix's extracted parts: lego adds one
    request = GenerationRequest(prompt="boss battle", bpm=120, key="E minor", seed=3, steps=2)
    result = build_dynamic_set(request, backend, tmp_path, intensities=count, bars=1, stingers=0)
    manifest = result.manifest
    assert manifest["mode"] == "layers" and manifest["fallback"] is None
    assert "extracted by the model" in manifest["arrangement"]
    check_loop_files(tmp_path, manifest, manifest["layers"])
    parts = [track for layer in manifest["layers"] for track in layer["parts"]]
    assert manifest["lego_parts"] == [LEGO_TRACKS[0]] and sorted(parts) == sorted([*LAYER_EXTRACT_TRACKS, LEGO_TRACKS[0]])
    made_by = {track: how for layer in manifest["layers"] for track, how in layer["made_by"].items()}
    assert made_by[LEGO_TRACKS[0]].startswith("added by lego") and made_by["drums"].startswith("extracted")
    # Every layer file is that layer's parts: energy in each, and no hidden temporaries left.
    for layer in manifest["layers"]:
        assert np.sqrt(np.mean(read(tmp_path / layer["file"]) ** 2)) > 0
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())
    assert "not in the base mix" in manifest["layers_sum"]["note"]
