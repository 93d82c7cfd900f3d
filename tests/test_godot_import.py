"""A real Godot 3.2 (Debian's `godot3-server`, headless) imports every looped WAV that
`acestep-dcc` writes, with the loop points its sidecar gives, and plays one back to the sample.

What Godot 3.2's WAV importer (editor/import/resource_importer_wav.cpp, 3.2 branch) does with
a `smpl` chunk: it skips the nine header words and the loop's cue id, maps dwType 0/1/2 to
LOOP_FORWARD/PING_PONG/BACKWARD, and copies dwStart and dwEnd unchanged into
AudioStreamSample.loop_begin and loop_end (only force/max_rate rescales them). Its mixer
(scene/resources/audio_stream_sample.cpp) mixes `(loop_end - offset) / increment + 1` frames
up to the limit, so at the file's own rate it plays the frame AT loop_end and then resumes at
loop_begin + 1; when a mix buffer happens to end with the offset exactly on loop_end, the
next one wraps straight to loop_begin instead. Our WAVs put one guard frame (a copy of frame
loop_start) at loop_end_exclusive and write dwEnd = loop_end_exclusive, so both paths play the
periodic extension of frames [loop_start, loop_end_exclusive), which the playback test checks.
The CLI writes stereo only, so Godot's mono path is not exercised here.

Expected, exactly, for every looped WAV: loop_mode 1 (forward), loop_begin == sidecar
loop_start == dwStart, loop_end == sidecar loop_end_exclusive == dwEnd, loop_end < frames (the
frame Godot mixes at loop_end exists), frame loop_end == frame loop_start in Godot's data,
mix_rate == the file's rate, stereo == 2 channels, and 16-bit data equal to the file's samples
(24-bit files: the top 16 bits, which is what the importer keeps).

To add a CLI argument set (e.g. `--intro BARS`), add a Case to CASES: everything in the case's
folder that has a sidecar is checked.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

GODOT = shutil.which("godot3-server")
pytestmark = pytest.mark.skipif(
    GODOT is None,
    reason="godot3-server (Debian's headless Godot 3.2) is not on PATH: apt-get install godot3-server "
           "(install_scripts/setup.sh --test installs it)")


@dataclass(frozen=True)
class Case:
    id: str  # also the case's folder in the Godot project (res://<id>/)
    args: tuple[str, ...]  # acestep-dcc arguments; "{out}" is the case's folder


def generate(case_id: str, *args: str) -> Case:
    return Case(case_id, ("generate", "stealth infiltration, electronic", *args, "-o", "{out}/cue.wav"))


CASES = [
    generate("loop4-140bpm-44k-16bit", "--loop", "4", "--bpm", "140"),
    generate("loop8-120bpm-48k-16bit", "--loop", "8", "--bpm", "120", "--sample-rate", "48000"),
    generate("loop16-174bpm-44k-24bit", "--loop", "16", "--bpm", "174", "--bit-depth", "24"),
    generate("loopfit-97bpm-48k-24bit", "--loop", "fit", "--bpm", "97", "--seconds", "20",
             "--sample-rate", "48000", "--bit-depth", "24"),
    generate("loop4-100bpm-6-8-console", "--loop", "4", "--bpm", "100", "--time-signature", "6/8",
             "--loudness", "console"),
    generate("loop4-150bpm-stems", "--loop", "4", "--bpm", "150", "--stems"),
    generate("loop4-128bpm-2-candidates", "--loop", "4", "--bpm", "128", "--candidates", "2"),
    generate("loop8-intro2-no-bpm", "--loop", "8", "--intro", "2"),  # tempo planned; the loop starts after the intro
    generate("loop4-intro-auto-48k", "--loop", "4", "--intro", "auto", "--bpm", "132", "--sample-rate", "48000"),
    Case("set-boss-4bars", ("set", "boss battle, rock", "--intensities", "2", "--bars", "4", "--stingers", "0",
                            "-o", "{out}")),
    Case("set-boss-8bars-48k-24bit-stinger", ("set", "boss battle, rock", "--intensities", "2", "--bars", "8",
                                              "--bpm", "110", "--sample-rate", "48000", "--bit-depth", "24",
                                              "--stingers", "1", "-o", "{out}")),
]
# Played back through Godot's mixer (real time, so short): 4 bars at 300 BPM, 44.1 kHz, the
# AudioServer's own rate, so the mixer steps exactly one frame per output frame.
PLAYBACK = generate("playback-loop4-300bpm", "--loop", "4", "--bpm", "300")

# Godot 3's WAV import options, pinned in each file's .import so the import keeps the file's
# data and loop points: force/max_rate resamples (and rescales loop_begin/loop_end),
# edit/normalize rescales the samples, edit/trim cuts silence (unlooped files only),
# force/mono and force/8_bit convert, and compress/mode=1 stores IMA-ADPCM (whose loops Godot
# restarts from a saved predictor). 3.2.3's defaults are already these, but earlier 3.x
# importers defaulted edit/trim and edit/normalize to on, and a project's importer defaults
# can change them.
IMPORT_PARAMS = """[remap]

importer="wav"
type="AudioStreamSample"

[params]

force/8_bit=false
force/mono=false
force/max_rate=false
force/max_rate_hz=44100
edit/trim=false
edit/normalize=false
edit/loop=false
compress/mode=0
"""

CHECK_GD = """extends SceneTree

# Loads each WAV listed in check.json as Godot imported it, prints what Godot holds as JSON
# and writes its sample data (16-bit PCM, interleaved) to the file named beside it.
func _init():
	var f = File.new()
	f.open("res://check.json", File.READ)
	var jobs = parse_json(f.get_as_text())
	f.close()
	var out = {}
	for job in jobs:
		var s = load(job["res"])
		if s == null:
			out[job["res"]] = null
			continue
		var data = s.data
		var raw = File.new()
		raw.open(job["raw"], File.WRITE)
		raw.store_buffer(data)
		raw.close()
		out[job["res"]] = {"class": s.get_class(), "format": s.format, "loop_mode": s.loop_mode,
			"loop_begin": s.loop_begin, "loop_end": s.loop_end, "mix_rate": s.mix_rate,
			"stereo": s.stereo, "data_bytes": data.size()}
	print("GODOT_RESULT " + to_json(out))
	quit()
"""

PLAY_GD = """extends SceneTree

# Plays one WAV (its imported loop) on the Master bus and records the bus with
# AudioEffectRecord for play.json's "seconds", then writes the recording (16-bit PCM).
var job
var rec
var started

func _init():
	var f = File.new()
	f.open("res://play.json", File.READ)
	job = parse_json(f.get_as_text())
	f.close()
	AudioServer.add_bus_effect(0, AudioEffectRecord.new(), 0)
	rec = AudioServer.get_bus_effect(0, 0)
	var player = AudioStreamPlayer.new()
	player.stream = load(job["res"])
	get_root().add_child(player)
	rec.set_recording_active(true)
	player.play()
	started = OS.get_ticks_msec()

func _idle(delta):
	if OS.get_ticks_msec() - started < job["seconds"] * 1000.0:
		return false
	rec.set_recording_active(false)
	var recording = rec.get_recording()
	var raw = File.new()
	raw.open(job["raw"], File.WRITE)
	raw.store_buffer(recording.data)
	raw.close()
	print("GODOT_RESULT " + to_json({"mix_rate": AudioServer.get_mix_rate(), "format": recording.format,
		"stereo": recording.stereo, "recording_rate": recording.mix_rate}))
	quit()
	return false
"""


def acestep_dcc() -> list[str]:
    """The installed console script beside this Python (.venv/bin/acestep-dcc)."""
    script = Path(sys.executable).parent / "acestep-dcc"
    return [str(script)] if script.exists() else [sys.executable, "-m", "acestep_core"]


def godot(project: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    home = project.parent / "godot-home"
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "data"),
           "XDG_CONFIG_HOME": str(home / "config"), "XDG_CACHE_HOME": str(home / "cache")}
    return subprocess.run([GODOT, "--path", str(project), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def godot_result(process: subprocess.CompletedProcess) -> dict:
    for line in process.stdout.splitlines():
        if line.startswith("GODOT_RESULT "):
            return json.loads(line[len("GODOT_RESULT "):])
    raise AssertionError(f"Godot printed no result (exit {process.returncode}):\n{process.stdout}\n{process.stderr}")


def import_project(project: Path) -> None:
    """Import every WAV in `project` the way the editor does (`-e --quit`: in Godot 3.2 a
    plain `--quit` run imports nothing), with the pinned options."""
    for wav in project.rglob("*.wav"):
        wav.with_name(wav.name + ".import").write_text(IMPORT_PARAMS)
    process = godot(project, "-e", "--quit")
    for wav in project.rglob("*.wav"):
        imported = wav.with_name(wav.name + ".import").read_text()
        assert 'path="res://.import/' in imported, \
            f"Godot did not import {wav.relative_to(project)}:\n{process.stdout}\n{process.stderr}"


def new_project(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "project.godot").write_text('config_version=4\n\n[application]\n\nconfig/name="acestep-dcc-check"\n')
    (folder / "check.gd").write_text(CHECK_GD)
    (folder / "play.gd").write_text(PLAY_GD)
    return folder


def run_case(case: Case, out: Path) -> subprocess.CompletedProcess:
    out.mkdir(parents=True)
    args = [arg.replace("{out}", str(out)) for arg in case.args]
    return subprocess.run([*acestep_dcc(), *args, "--backend", "sketch", "--seed", "5"], capture_output=True,
                          text=True, timeout=300)


@dataclass
class Imported:
    wav: Path
    sidecar: dict
    godot: dict | None
    data: np.ndarray | None  # Godot's samples, (frames, channels) int16


@pytest.fixture(scope="module")
def godot_import(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Imported] | str]:
    """Every case generated into one Godot project, imported once and loaded by check.gd.
    case id -> its WAVs as Godot loaded them, or the CLI's stderr when it failed."""
    base = tmp_path_factory.mktemp("godot")
    project = new_project(base / "project")
    raw_folder = base / "raw"
    raw_folder.mkdir()
    failed: dict[str, str] = {}
    for case in CASES:
        process = run_case(case, project / case.id)
        if process.returncode != 0:
            failed[case.id] = f"acestep-dcc {' '.join(case.args)} failed ({process.returncode}):\n{process.stderr}"
    import_project(project)
    jobs = []
    for k, wav in enumerate(sorted(project.rglob("*.wav"))):
        jobs.append({"res": "res://" + wav.relative_to(project).as_posix(), "raw": str(raw_folder / f"{k}.raw"),
                     "wav": str(wav)})
    (project / "check.json").write_text(json.dumps(jobs))
    loaded = godot_result(godot(project, "-s", "check.gd"))
    results: dict[str, list[Imported] | str] = dict(failed)
    for job in jobs:
        wav = Path(job["wav"])
        case_id = wav.relative_to(project).parts[0]
        if case_id in failed:
            continue
        info = loaded.get(job["res"])
        data = None
        if info is not None:
            channels = 2 if info["stereo"] else 1
            data = np.fromfile(job["raw"], dtype="<i2").reshape(-1, channels)
        sidecar = json.loads(wav.with_name(wav.name + ".json").read_text()) \
            if wav.with_name(wav.name + ".json").exists() else {}
        results.setdefault(case_id, []).append(Imported(wav, sidecar, info, data))
    return results


def smpl_loops(path: Path) -> list[tuple[int, int, int]]:
    """(dwType, dwStart, dwEnd) of each loop in the WAV's smpl chunk, read independently of
    acestep_core.audio.riff, walking chunks as RIFF says (odd sizes padded)."""
    blob = path.read_bytes()
    assert blob[:4] == b"RIFF" and blob[8:12] == b"WAVE"
    position, loops = 12, []
    while position + 8 <= len(blob):
        ident, size = blob[position:position + 4], struct.unpack_from("<I", blob, position + 4)[0]
        if ident == b"smpl":
            count = struct.unpack_from("<I", blob, position + 8 + 28)[0]
            for k in range(count):
                _, kind, start, end, _, _ = struct.unpack_from("<6I", blob, position + 8 + 36 + 24 * k)
                loops.append((kind, start, end))
        position += 8 + size + (size & 1)
    return loops


def file_samples_as_godot_keeps_them(path: Path, bit_depth: int) -> np.ndarray:
    """The file's samples reduced as Godot 3.2's importer does: 16-bit as is, 24-bit to its top
    16 bits (`(int32(s << 8) >> 16)`, an arithmetic shift, so floor)."""
    if bit_depth == 16:
        return sf.read(path, dtype="int16", always_2d=True)[0]
    assert bit_depth == 24
    return (sf.read(path, dtype="int32", always_2d=True)[0] >> 16).astype(np.int16)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_godot_3_imports_every_wav_with_the_sidecars_loop_points(case: Case, godot_import):
    result = godot_import.get(case.id)
    if isinstance(result, str):
        pytest.fail(result)
    assert result, f"{case.id} wrote no WAV"
    assert any(item.sidecar.get("loop") for item in result), f"{case.id} wrote no looped WAV"
    for item in result:
        name = item.wav.relative_to(item.wav.parents[1]).as_posix()
        assert item.sidecar, f"{name} has no sidecar"
        assert item.godot is not None, f"Godot could not load {name}"
        got, fmt, loop = item.godot, item.sidecar["format"], item.sidecar.get("loop")
        frames = item.sidecar["frames_written"]
        assert got["class"] == "AudioStreamSample", name
        assert got["format"] == 1, f"{name}: Godot stored format {got['format']}, not 16-bit PCM (compressed?)"
        assert got["mix_rate"] == fmt["sample_rate"], name
        assert got["stereo"] == (fmt["channels"] == 2), name
        assert got["data_bytes"] == frames * fmt["channels"] * 2, name
        assert np.array_equal(item.data, file_samples_as_godot_keeps_them(item.wav, fmt["bit_depth"])), \
            f"{name}: Godot's imported samples differ from the file's"
        if loop is None:
            assert got["loop_mode"] == 0, f"{name} has no loop but Godot loops it: {got}"
            assert smpl_loops(item.wav) == []
            continue
        assert loop["frames_in_file"] == frames
        assert smpl_loops(item.wav) == [(0, loop["smpl_start"], loop["smpl_end"])], name
        assert (loop["smpl_start"], loop["smpl_end"]) == (loop["loop_start"], loop["loop_end_exclusive"]), name
        assert got["loop_mode"] == 1, f"{name}: Godot loop mode {got['loop_mode']}, not forward"
        # Godot 3.2 copies dwStart and dwEnd unchanged.
        assert (got["loop_begin"], got["loop_end"]) == (loop["loop_start"], loop["loop_end_exclusive"]), \
            f"{name}: Godot loop {got['loop_begin']}..{got['loop_end']}, sidecar {loop['loop_start']}.." \
            f"{loop['loop_end_exclusive']}"
        # Godot's mixer plays the frame at loop_end before it wraps to loop_begin + 1: it must
        # exist, and be the loop's first frame again, for the seam to be exact.
        assert got["loop_end"] < frames, f"{name}: loop_end {got['loop_end']} is past the last frame {frames - 1}"
        assert np.array_equal(item.data[got["loop_end"]], item.data[got["loop_begin"]]), \
            f"{name}: frame loop_end is not a copy of frame loop_begin in Godot's data"


def test_godot_3_plays_a_loop_as_the_loop_repeated_to_the_sample(tmp_path: Path):
    """Godot 3.2's own mixer (headless, its Dummy audio driver mixes in real time) plays the
    imported WAV looped; AudioEffectRecord on the Master bus records what it mixed. At the
    file's rate the mixer steps one frame per output frame and output = sample / 32767 is
    recorded as trunc(x * 32768), which gives back the sample exactly, so the recording must
    be the file's frames [0, loop_end_exclusive) followed by [loop_start, loop_end_exclusive)
    repeated, with no frame added or lost at any seam."""
    project = new_project(tmp_path / "project")
    process = run_case(PLAYBACK, project / PLAYBACK.id)
    assert process.returncode == 0, process.stderr
    import_project(project)
    wav = project / PLAYBACK.id / "cue.wav"
    loop = json.loads(wav.with_name("cue.wav.json").read_text())["loop"]
    begin, end = loop["loop_start"], loop["loop_end_exclusive"]
    audio = sf.read(wav, dtype="int16", always_2d=True)[0]
    rate = sf.info(wav).samplerate
    raw = tmp_path / "recording.raw"
    seconds = end / rate + 1.5  # past the first seam, with time for the player to start
    (project / "play.json").write_text(json.dumps({"res": f"res://{PLAYBACK.id}/cue.wav", "raw": str(raw),
                                                   "seconds": seconds}))
    info = godot_result(godot(project, "-s", "play.gd", timeout=120))
    assert info["mix_rate"] == rate == info["recording_rate"] and info["format"] == 1 and info["stereo"], info
    recording = np.fromfile(raw, dtype="<i2").reshape(-1, 2)

    length = end - begin
    played = int(len(recording)) + len(audio)
    n = np.arange(played)
    expected = audio[np.where(n < end, n, begin + (n - begin) % length)]
    start_rec = int(np.argmax(np.any(recording != 0, axis=1)))
    start_exp = int(np.argmax(np.any(expected != 0, axis=1)))
    assert np.any(recording[start_rec] != 0), "Godot played silence"
    offset = start_rec - start_exp
    assert offset >= 0
    heard = recording[offset:]
    assert len(heard) > end + rate // 4, f"the recording stopped {end - len(heard)} frames before the first seam"
    mismatch = np.flatnonzero(np.any(heard != expected[:len(heard)], axis=1))
    assert mismatch.size == 0, (
        f"Godot's output leaves the looped file at frame {mismatch[0]} (loop {begin}..{end}, "
        f"{mismatch.size} frames differ): heard {heard[mismatch[0]]}, expected {expected[mismatch[0]]}")
