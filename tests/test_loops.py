"""Seamless loops: the bar grid, the tail fold, the smpl/cue chunks read back by independent
readers, and seams with no step, on the real sketch backend and the tiny ACE-Step checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import wavinfo

from acestep_core.audio import loops
from acestep_core.musical_plan import plan_tempo_and_key
from acestep_core.audio.riff import CueMarker, NotAWavFile, WavLoop, write_loop_chunks
from acestep_core.audio.writer import write_audio
from acestep_core.backends.sketch import SketchBackend
from acestep_core.cli import main
from acestep_core.generation import generate_cues
from acestep_core.output_names import sidecar_path
from acestep_core.request import GenerationRequest


# -- seam measures ---------------------------------------------------------------------


def played_twice(audio: np.ndarray, start: int, end_exclusive: int) -> np.ndarray:
    """What a seamless player plays: the loop, then the loop again."""
    cycle = audio[start:end_exclusive].astype(np.float64)
    return np.concatenate([cycle, cycle])


def steps(audio: np.ndarray) -> np.ndarray:
    """Largest absolute sample-to-sample step over channels, per step."""
    return np.abs(np.diff(audio, axis=0)).max(axis=1)


def spectral_flux(audio: np.ndarray, window: int = 1024, hop: int = 256) -> np.ndarray:
    """Half-wave rectified change of the magnitude spectrum between frames, per frame."""
    mono = audio.mean(axis=1)
    count = 1 + (mono.size - window) // hop
    frames = np.stack([mono[k * hop : k * hop + window] for k in range(count)]) * np.hanning(window)
    magnitude = np.abs(np.fft.rfft(frames, axis=1))
    return np.concatenate([[0.0], np.maximum(np.diff(magnitude, axis=0), 0.0).sum(axis=1)])


def seam_is_clean(audio: np.ndarray, start: int, end_exclusive: int, window: int = 1024, hop: int = 256) -> bool:
    """Loop end -> loop start: no larger sample step and no larger spectral flux than anywhere
    inside the loop."""
    twice = played_twice(audio, start, end_exclusive)
    length = end_exclusive - start
    step = steps(twice)
    seam_step = step[length - 1]  # from the loop's last frame to its first
    elsewhere_step = np.delete(step, length - 1)[: length - 1].max()
    flux = spectral_flux(twice, window, hop)
    frame_start = np.arange(flux.size) * hop
    straddles = (frame_start < length) & (frame_start + window > length)
    inside = frame_start + window <= length
    return bool(seam_step <= elsewhere_step and flux[straddles].max() <= flux[inside].max())


def read_int(path: Path) -> np.ndarray:
    data, _ = sf.read(path, dtype="int32", always_2d=True)
    return data


# -- the bar grid and the fold ---------------------------------------------------------------


def test_bar_lines_are_whole_bars_at_the_tempo():
    assert loops.bar_lines(4, 120, 4, 48000) == [0, 96000, 192000, 288000, 384000]
    lines = loops.bar_lines(16, 140.5, 4, 44100)
    exact = [k * 4 * 60 / 140.5 * 44100 for k in range(17)]
    assert max(abs(a - b) for a, b in zip(lines, exact)) <= 0.5  # never drifts past half a frame


def test_fit_and_explicit_bars():
    # 30 s at 120 BPM is 15 bars: fit takes the phrase nearest it, 16 bars.
    plan = loops.plan_loop(120, 4, 44100, bars=None, duration_s=30, available_frames=40 * 44100)
    assert (plan.bars, plan.length) == (16, 32 * 44100)
    # 10 bars of audio hold the 8-bar phrase, not 10 bars.
    assert loops.plan_loop(120, 4, 44100, bars=None, duration_s=30, available_frames=21 * 44100).bars == 8
    assert loops.plan_loop(120, 4, 44100, bars=13, duration_s=30).bars == 13  # asked for: kept
    with pytest.raises(loops.LoopDoesNotFit, match="set the tempo, ask for fewer bars, or let the loop fit") as refused:
        loops.plan_loop(120, 4, 44100, bars=16, duration_s=30, available_frames=30 * 44100)
    assert "--" not in str(refused.value)  # the core names no CLI flags: hosts show this sentence too


@pytest.mark.parametrize(("bars", "phrase"), [(13, 16), (15, 16), (11.5, 16), (11, 8), (6, 8), (5, 4), (3, 4),
                                             (2.5, 2), (1.2, 1), (40, 16)])
def test_fit_chooses_a_phrase(bars, phrase):
    assert loops.fit_bars(bars * 2.0, 120, 4) == phrase  # a bar is 2 s at 120 BPM in 4/4


def test_crossfade_keeps_power_for_any_correlation():
    fade_in, fade_out = loops.crossfade_gains(1000, rho=0.0)
    assert np.allclose(fade_in**2 + fade_out**2, 1.0)
    fade_in, fade_out = loops.crossfade_gains(1000, rho=1.0)
    assert np.allclose(fade_in + fade_out, 1.0)
    assert (fade_in[0], fade_out[0]) == (0.0, 1.0)


def test_fold_continues_the_music_across_the_seam():
    rate = 44100
    rng = np.random.default_rng(1)
    t = np.arange(int(9 * rate)) / rate
    # A rising chirp with a wobbling level: nothing in it repeats, so a plain cut clicks.
    mono = np.sin(2 * np.pi * (200 * t + 40 * t**2)) * (0.5 + 0.3 * np.sin(2 * np.pi * 0.7 * t))
    audio = np.stack([mono, mono + 0.01 * rng.standard_normal(t.size)], axis=1).astype(np.float32)
    plan = loops.plan_loop(120, 4, rate, bars=4, duration_s=8, available_frames=audio.shape[0])
    folded = loops.fold_tail(audio, plan)
    assert folded.shape == (plan.length, 2)
    # The frame after the loop's last one is exactly what followed it in the generated audio.
    assert np.array_equal(folded[0], audio[plan.length])
    assert np.array_equal(folded[plan.crossfade:], audio[plan.crossfade : plan.length])
    assert seam_is_clean(folded, 0, plan.length)
    assert not seam_is_clean(audio, 0, plan.length)  # the measure does catch a plain cut


# -- the RIFF chunks -------------------------------------------------------------------------


def test_chunks_survive_rewrites_and_keep_libsndfile_info(tmp_path: Path):
    path = tmp_path / "cue.wav"
    frames = (np.random.default_rng(0).standard_normal((2001, 2)) * 0.1).astype(np.float32)
    write_audio(path, frames, 48000, "wav", 24, {"title": "boss battle", "comment": "backend: sketch"})
    for _ in range(2):  # a second rewrite replaces the chunks, never duplicates them
        write_loop_chunks(path, WavLoop(0, 2000), [CueMarker(0, "Loop start (bar 1)"), CueMarker(2000, "Loop end")],
                          48000)
    reader = wavinfo.WavInfoReader(str(path))
    (loop,) = reader.smpl.sample_loops
    assert (loop.loop_type, loop.start, loop.end, loop.repetition_count) == (0, 0, 2000, 0)
    assert reader.smpl.sample_period_ns == round(1e9 / 48000)
    assert reader.cues.to_dict() == {1: {"frame": 0, "label": "Loop start (bar 1)"},
                                     2: {"frame": 2000, "label": "Loop end"}}
    assert reader.info.title == "boss battle" and reader.info.comment == "backend: sketch"
    back, rate = sf.read(path, dtype="float32")
    assert rate == 48000 and back.shape == (2001, 2) and np.abs(back - frames).max() < 1e-6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cue.wav"]


def test_non_wav_is_refused_with_a_reason(tmp_path: Path):
    path = tmp_path / "cue.flac"
    sf.write(path, np.zeros((100, 2), np.float32), 44100)
    with pytest.raises(NotAWavFile, match="only be written into WAV"):
        write_loop_chunks(path, WavLoop(0, 50), [], 44100)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cue.flac"]


# -- real loops from the sketch backend --------------------------------------------------------


def godot_4_0_to_4_3_plays(audio: np.ndarray, begin: int, end: int, count: int) -> np.ndarray:
    """AudioStreamPlaybackWAV::mix before 4.4, forward loop at the stream's own rate: it wraps
    when the position reaches loop_end (exclusive)."""
    out, position = [], 0
    for _ in range(count):
        if position >= end:
            position = begin + (position - end)
        out.append(audio[position])
        position += 1
    return np.array(out)


def godot_4_4_to_4_6_plays(audio: np.ndarray, begin: int, end: int, count: int) -> np.ndarray:
    """AudioStreamPlaybackWAV::_mix_internal (4.4-4.6): decodes up to loop_end inclusive, then
    wraps to begin + (position - end), one past begin (godotengine/godot#119778)."""
    out, position = [], 0
    while len(out) < count:
        if position >= end:
            position = begin + (position - end)
        for _ in range(min(end - position + 1, count - len(out))):
            out.append(audio[position])
            position += 1
    return np.array(out)


@pytest.fixture(scope="module")
def sketch_loop(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("loops") / "boss.wav"
    request = GenerationRequest(prompt="boss battle, rock, driving drums", bpm=132, key="E minor", loop=True,
                                loop_bars=4, seed=11)
    generate_cues(request, SketchBackend(), path)
    return path


def test_loop_lands_on_bar_lines_and_the_chunks_say_so(sketch_loop: Path):
    sidecar = json.loads(sidecar_path(sketch_loop).read_text())
    loop = sidecar["loop"]
    length = loops.bar_lines(4, 132, 4, 44100)[-1]
    assert (loop["loop_start"], loop["loop_end_exclusive"], loop["bars"], loop["bpm"]) == (0, length, 4, 132.0)
    assert loop["bar_lines"] == loops.bar_lines(4, 132, 4, 44100)
    reader = wavinfo.WavInfoReader(str(sketch_loop))
    (smpl_loop,) = reader.smpl.sample_loops
    assert (smpl_loop.start, smpl_loop.end) == (0, length) == (loop["smpl_start"], loop["smpl_end"])
    assert [frame for _, frame in reader.cues.each_cue()] == [0, length]
    assert sf.info(sketch_loop).frames == length + 1 == sidecar["frames_written"]
    assert sidecar["tempo"]["source"] == "request" and sidecar["key"]["used"] == "E minor"


def test_guard_frame_makes_every_godot_4_loop_exact(sketch_loop: Path):
    audio = read_int(sketch_loop)
    (smpl_loop,) = wavinfo.WavInfoReader(str(sketch_loop)).smpl.sample_loops
    begin, end = smpl_loop.start, smpl_loop.end
    assert np.array_equal(audio[end], audio[begin])  # the guard is a copy of the loop's first frame
    expected = np.concatenate([audio[begin:end]] * 3)
    for godot in (godot_4_0_to_4_3_plays, godot_4_4_to_4_6_plays):
        assert np.array_equal(godot(audio, begin, end, expected.shape[0]), expected), godot.__name__


def test_seam_has_no_step_or_flux_above_the_rest(sketch_loop: Path):
    audio, _ = sf.read(sketch_loop, dtype="float64", always_2d=True)
    sidecar = json.loads(sidecar_path(sketch_loop).read_text())
    assert seam_is_clean(audio, sidecar["loop"]["loop_start"], sidecar["loop"]["loop_end_exclusive"])


@pytest.mark.parametrize("fmt", ["flac", "ogg"])
def test_flac_and_ogg_loops_are_exactly_the_loop(tmp_path: Path, fmt: str):
    path = tmp_path / f"loop.{fmt}"
    request = GenerationRequest(prompt="calm exploration, ambient", bpm=90, loop=True, loop_bars=2, seed=5,
                                output_format=fmt)
    (cue,) = generate_cues(request, SketchBackend(), path)
    length = loops.bar_lines(2, 90, 4, 44100)[-1]
    assert sf.info(path).frames == length == cue.metadata["loop"]["loop_end_exclusive"]
    assert "smpl_end" not in cue.metadata["loop"]
    audio, _ = sf.read(path, dtype="float64", always_2d=True)
    if fmt == "flac":
        assert seam_is_clean(audio, 0, length)


def test_loop_without_a_tempo_plans_it_from_the_prompt_and_fits_a_phrase(tmp_path: Path):
    request = GenerationRequest(prompt="happy village, folk", loop=True, duration=10, seed=2)
    (cue,) = generate_cues(request, SketchBackend(), tmp_path / "village.wav")
    tempo, loop = cue.metadata["tempo"], cue.metadata["loop"]
    planned = plan_tempo_and_key(request, seed=request.seed)
    assert tempo["requested"] is None and cue.metadata["request"]["bpm"] is None  # as the user asked it
    assert tempo["source"] == "plan" and tempo["planned_from"].startswith("prompt")
    # The backend was asked for the planned tempo, and the loop sits on it.
    assert loop["bpm"] == tempo["used"] == planned.bpm == cue.metadata["settings"]["bpm"]
    assert cue.metadata["plan"]["key"] == planned.key == cue.metadata["settings"]["key"]
    assert loop["bars"] == loops.fit_bars(10, planned.bpm, 4) and loop["bars"] in (4, 8, 16)
    # Measured only as a check, octave-aware: the sketch plays exactly the planned tempo.
    assert tempo["measured"] is not None and tempo["check"] == "agrees"


def test_a_loop_of_bars_without_a_tempo_grows_the_duration_before_generating_and_says_so(tmp_path: Path):
    request = GenerationRequest(prompt="stealth infiltration, electronic", loop=True, loop_bars=16,
                                duration=30, seed=4)
    planned = plan_tempo_and_key(request, seed=request.seed)
    loop_s = 16 * 4 * 60 / planned.bpm
    assert loop_s > 36  # 16 bars at the stealth tempo are longer than asked
    (cue,) = generate_cues(request, SketchBackend(), tmp_path / "stealth.wav")
    loop = cue.metadata["loop"]
    assert loop["bars"] == 16 and loop["loop_end_exclusive"] == loops.bar_lines(16, planned.bpm, 4, 44100)[-1]
    assert any("16 bars" in w and "not the 30 s asked" in w for w in cue.warnings), cue.warnings


def test_cli_loop_flag(tmp_path: Path):
    out = tmp_path / "menu.wav"
    assert main(["generate", "main menu, synthwave", "--loop", "2", "--bpm", "100", "--seed", "3",
                 "--backend", "sketch", "-o", str(out)]) == 0
    (smpl_loop,) = wavinfo.WavInfoReader(str(out)).smpl.sample_loops
    assert smpl_loop.end == loops.bar_lines(2, 100, 4, 44100)[-1]


# -- the tiny ACE-Step checkpoint ---------------------------------------------------------------


class RecordedPipeline:
    """A diffusers pipeline that notes the arguments of each call and runs it as it is."""

    def __init__(self, pipe):
        self.pipe, self.calls = pipe, []

    def __getattr__(self, name):
        return getattr(self.pipe, name)

    def __call__(self, **arguments):
        self.calls.append(arguments)
        return self.pipe(**arguments)


def test_tiny_checkpoint_loop_with_a_planned_tempo(tiny_checkpoint: Path, tmp_path: Path):
    """No bpm: the tempo is planned from the prompt, sent to the model as its bpm condition,
    and the loop sits on it; the measurement is only a check."""
    from acestep_core.backends.acestep import AceStepBackend

    request = GenerationRequest(prompt="boss battle", loop=True, duration=3, seed=1)
    planned = plan_tempo_and_key(request, seed=request.seed)
    backend = AceStepBackend(tiny_checkpoint, device="cpu")
    backend.load(lambda progress: None)
    backend._pipe = RecordedPipeline(backend._pipe)  # the real diffusers pipeline, its arguments noted
    (cue,) = generate_cues(request, backend, tmp_path / "noise.wav")
    assert [(a["bpm"], a["keyscale"]) for a in backend._pipe.calls] == [(round(planned.bpm), planned.key)]
    tempo, loop = cue.metadata["tempo"], cue.metadata["loop"]
    assert tempo["source"] == "plan" and loop["bpm"] == planned.bpm
    assert tempo["check"] in ("agrees", "disagrees")  # noise has no tempo to agree with; recorded, not used
    assert cue.metadata["settings"]["conditions"]["bpm"] == round(planned.bpm)
    assert loop["loop_end_exclusive"] == loops.bar_lines(loop["bars"], loop["bpm"], 4, 44100)[-1]
    audio, _ = sf.read(cue.path, dtype="float64", always_2d=True)
    (smpl_loop,) = wavinfo.WavInfoReader(cue.path).smpl.sample_loops
    assert smpl_loop.end == loop["loop_end_exclusive"]
    assert np.array_equal(read_int(Path(cue.path))[smpl_loop.end], read_int(Path(cue.path))[0])
    assert seam_is_clean(audio, 0, loop["loop_end_exclusive"])


@pytest.mark.parametrize("intro", ["0", "2"])
def test_a_limited_loop_has_no_click_at_its_seam_with_or_without_an_intro(tmp_path: Path, intro: str):
    """-9 LUFS takes 3-6 dB of limiting. With an intro the limiter cannot run circularly
    over the file (the intro plays once), so the loop's end and its start are limited
    apart: played end to start, the seam's sharpest step (the second difference) stays
    under the loop body's own 99.9th percentile. Measured: 0.32 / 0.55 without an intro,
    0.51 / 0.65 with two bars of it."""
    out = tmp_path / "seam.wav"
    assert main(["generate", "boss battle, rock", "--backend", "sketch", "--loop", "4", "--intro", intro,
                 "--loudness", "-9", "--seed", "5", "-o", str(out)]) == 0
    audio, _ = sf.read(out, dtype="float64", always_2d=True)
    sidecar = json.loads(sidecar_path(out).read_text())
    assert sidecar["loudness"]["limiter_reduction_db"] > 2.0
    body = audio[sidecar["loop"]["loop_start"]:sidecar["loop"]["loop_end_exclusive"]]
    played = np.concatenate([body[-2000:], body[:2000]])  # as an engine plays the seam
    seam = float(np.abs(np.diff(played, 2, axis=0)).max(axis=1)[1995:2003].max())
    assert seam < float(np.percentile(np.abs(np.diff(body, 2, axis=0)).max(axis=1), 99.9))
