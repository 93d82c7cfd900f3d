"""Would a General MIDI SoundFont serve the sketch better than its own synthesis? Issue 15
asks to look before hand-writing instruments; this measures it side by side.

    pip install --no-deps tinysoundfont   # MIT; its wheel declares pyaudio, which needs PortAudio headers to build
    apt-get install fluid-soundfont-gm timgm6mb-soundfont
    .venv/bin/python bench/bench_soundfont.py [--seconds 60] [--soundfont PATH]

For each prompt the sketch arranges one take (arrangement.arrange), then renders it twice
on one core: with its own synthesis (mixing.render_candidate, reverb and mix included)
and as the same notes and drum hits played through tinysoundfont with a GM program per
patch (no reverb, no mix: the SoundFont side is only note rendering, so the ratio flatters it).
It prints seconds of audio per second of compute for both, and the SoundFont's size.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from acestep_core.backends.sketch.arrangement import arrange, choose_musical_choices, seeded_stream  # noqa: E402
from acestep_core.backends.sketch.mixing import render_candidate  # noqa: E402
from acestep_core.keywords import parse_prompt  # noqa: E402
from acestep_core.musical_plan import planned_request  # noqa: E402
from acestep_core.request import GenerationRequest  # noqa: E402

RATE = 48000
PROMPTS = ("intense boss battle, rock, electric guitar and drums", "campfire folk, acoustic guitar, fiddle",
           "smoky jazz club, saxophone, brushed drums", "heroic adventure, orchestral, strings and brass",
           "sad piano ballad, choir, harp")
# GM programs (0-based) for the sketch's patches; synths not listed play a saw lead (81).
GM_PROGRAMS = {
    "piano": 0, "electric_piano": 4, "rock_organ": 16, "acoustic_guitar": 24, "lead_guitar": 29, "power_chord": 30,
    "picked_bass": 34, "upright_bass": 32, "pop_bass": 33, "round_bass": 33, "contrabass": 43, "fiddle": 40,
    "string_ensemble": 48, "string_staccato": 45, "harp": 46, "choir": 52, "horn": 60, "saxophone": 65, "flute": 73,
    "pulse_lead": 80, "pulse_arp": 80, "square_lead": 80, "soft_pad": 89, "supersaw_pad": 90, "evolving_pad": 94,
    "glass_bell": 14, "music_box": 10, "nes_triangle": 38, "retro_bass": 38, "offbeat_bass": 38,
}
# GM percussion keys (channel 10) for the sketch's drum names.
GM_DRUMS = {"kick": 36, "snare": 38, "clap": 39, "closed_hat": 42, "open_hat": 46, "crash": 49, "tom_high": 50,
            "tom_low": 45, "rim": 37, "timpani": 41, "timpani_low": 43, "boom": 35}


def soundfont_render(arrangement, choices, soundfont: Path) -> np.ndarray:
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=RATE)
    font = synth.sfload(str(soundfont))
    beat_s = 60.0 / choices.bpm
    events: list[tuple[float, int, int, int, int]] = []  # (seconds, on 1 / off 0, channel, key, velocity)
    for channel, (part, notes) in enumerate(arrangement.tracks[:15]):
        channel = channel if channel < 9 else channel + 1  # channel 10 (index 9) is percussion
        synth.program_select(channel, font, 0, GM_PROGRAMS.get(part.patch, 81))
        for note in notes:
            for pitch in note.pitches:
                velocity = max(1, min(127, int(100 * note.velocity)))
                events.append((note.start * beat_s, 1, channel, int(pitch), velocity))
                events.append(((note.start + note.length) * beat_s, 0, channel, int(pitch), 0))
    synth.program_select(9, font, 128, 0)
    for hit in arrangement.hits:
        events.append((hit.start * beat_s, 1, 9, GM_DRUMS.get(hit.drum, 38), max(1, min(127, int(110 * hit.velocity)))))
    events.sort(key=lambda e: (e[0], e[1]))
    frames = choices.frames
    out = np.zeros((frames, 2), dtype=np.float32)
    written = 0
    for seconds, on, channel, key, velocity in events:
        at = min(frames, int(seconds * RATE))
        if at > written:
            out[written:at] = np.frombuffer(synth.generate(at - written), dtype=np.float32).reshape(-1, 2)
            written = at
        if on:
            synth.noteon(channel, key, velocity)
        else:
            synth.noteoff(channel, key)
    if written < frames:
        out[written:] = np.frombuffer(synth.generate(frames - written), dtype=np.float32).reshape(-1, 2)
    return out.T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--soundfont", type=Path, action="append")
    args = parser.parse_args()
    try:
        import tinysoundfont  # noqa: F401
    except ImportError:
        raise SystemExit("tinysoundfont is not installed: pip install --no-deps tinysoundfont")
    fonts = args.soundfont or [p for p in (Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
                                             Path("/usr/share/sounds/sf2/TimGM6mb.sf2")) if p.exists()]
    if not fonts:
        raise SystemExit("no SoundFont found: apt-get install fluid-soundfont-gm, or pass --soundfont PATH")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    print(f"{args.seconds:g} s cue, one take, one core")
    for font in fonts:
        print(f"  {font.name}: {font.stat().st_size / 2**20:.0f} MiB")
    print(f"{'prompt':44} {'sketch':>8} " + " ".join(f"{f.stem[:12]:>12}" for f in fonts))
    for prompt in PROMPTS:
        request, _ = planned_request(GenerationRequest(prompt=prompt, duration=args.seconds).validated(), 1)
        choices = choose_musical_choices(request, parse_prompt(prompt))
        arrangement = arrange(choices, 1)
        out = np.empty((2, choices.frames), dtype=np.float32)
        render_candidate(arrangement, choices, seeded_stream(1, "sound"), lambda: None, lambda: False, out=out)  # warm
        started = time.process_time()
        render_candidate(arrangement, choices, seeded_stream(1, "sound"), lambda: None, lambda: False, out=out)
        own = args.seconds / (time.process_time() - started)
        ratios = []
        for font in fonts:
            soundfont_render(arrangement, choices, font)  # loads the font once, warm
            started = time.process_time()
            soundfont_render(arrangement, choices, font)
            ratios.append(args.seconds / (time.process_time() - started))
        print(f"{prompt[:44]:44} {own:7.0f}x " + " ".join(f"{r:11.0f}x" for r in ratios))


if __name__ == "__main__":
    main()
