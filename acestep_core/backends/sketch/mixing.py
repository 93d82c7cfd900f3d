"""From a score to a stereo cue: render each distinct note once, place copies, add the
drums, a shared reverb, the kick's sidechain pump, the ending, and set the level.

Cost grows with the number of distinct sounds, not with the length of the cue: a
four-chord loop is rendered four times however long it plays. The cue itself is mixed a
chunk at a time (about 1.4 s): every copy of a sound that sounds in a chunk is added
into buffers that stay in the CPU's cache, and only the finished chunk is written into
the output. So a ten-minute cue holds the output array, its reverb send at an eighth of
the rate, and the distinct sounds; nothing else is as long as the cue.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from acestep_core.backends.sketch.arrangement import Arrangement, MusicalChoices
from acestep_core.backends.sketch.drums import build_kit
from acestep_core.backends.sketch.instruments import PATCHES, render_note
from acestep_core.backends.sketch.styles import part_track
from acestep_core.backends.sketch.synthesis import (
    SAMPLE_RATE, TAPS_PER_PHASE, band_limited, convolve_in_blocks, decay_envelope, downsample_range, fade, noise,
    reverb_impulse, seconds_to_frames, spectral_filter, upsample_range,
)
from acestep_core.errors import GenerationCancelled

# RMS of one note of each role while it is held, before the master level: the balance.
ROLE_LEVELS = {"bass": 0.13, "chords": 0.09, "pad": 0.06, "arp": 0.05, "lead": 0.085}
# Peak of each drum one-shot.
DRUM_PEAKS = {
    "kick": 0.85, "snare": 0.6, "clap": 0.45, "closed_hat": 0.2, "open_hat": 0.2, "crash": 0.3, "tom_high": 0.55,
    "tom_low": 0.6, "rim": 0.3, "timpani": 0.5, "timpani_low": 0.45, "boom": 0.6,
}
# The reverb runs at an eighth of the rate: its tail is dark, and this keeps it cheap.
REVERB_DECIMATION = 8
PEAK_CEILING = 10.0 ** (-1.0 / 20.0)  # -1 dBFS: room for resampling and encoders
TARGET_RMS = 10.0 ** (-15.0 / 20.0)
BAR_LINE_DECLICK_S = 0.005
CANCEL_CHECK_EVERY = 256
# Frames mixed at a time: a multiple of REVERB_DECIMATION; 0.5 MiB per stereo float32 buffer.
MIX_CHUNK_FRAMES = 1 << 16


def add_at(bus: np.ndarray, start: int, sound: np.ndarray, gain: float) -> None:
    """bus[:, start:] += gain * sound, cut at the bus's end."""
    if start >= bus.shape[1] or gain == 0.0:
        return
    end = min(bus.shape[1], start + sound.shape[1])
    bus[:, start:end] += gain * sound[:, : end - start]


def note_level(sound: np.ndarray, gate_frames: int, target_rms: float) -> float:
    """The gain that brings a note's RMS while held to target_rms."""
    held = sound[:, : max(min(gate_frames, sound.shape[1]), 1)]
    rms = float(np.sqrt(np.mean(held.astype(np.float64) ** 2)))
    return target_rms / rms if rms > 1e-9 else 0.0


class _Layer:
    """Copies of sounds to add into one bus: (start frame, sound, gain), in the order they
    were placed. A copy may run past the cue's end; it is cut there when mixed."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.sounds: list[np.ndarray] = []
        self.gains: list[float] = []
        self._ends: np.ndarray | None = None

    def add(self, start: int, sound: np.ndarray, gain: float) -> None:
        if gain != 0.0:
            self.starts.append(start)
            self.sounds.append(sound)
            self.gains.append(gain)

    def __bool__(self) -> bool:
        return bool(self.starts)

    def mix_into(self, buffer: np.ndarray, first: int, last: int) -> None:
        """buffer[:, i] += every copy's frame first + i, for the frames first .. last - 1 that
        the buffer covers (buffer starts at `first`); frames past `last` are left out."""
        if not self.starts:
            return
        if self._ends is None:
            self._starts = np.array(self.starts, dtype=np.int64)
            self._ends = self._starts + np.array([sound.shape[1] for sound in self.sounds], dtype=np.int64)
        stop = min(last, first + buffer.shape[1])
        for index in np.flatnonzero((self._starts < stop) & (self._ends > first)):
            start, sound = self.starts[index], self.sounds[index]
            lo, hi = max(start, first), min(start + sound.shape[1], stop)
            buffer[:, lo - first : hi - first] += self.gains[index] * sound[:, lo - start : hi - start]


class _Hiss:
    """A two-second hiss loop repeated under the whole cue, as np.resize(hiss, (2, frames))
    lays it out (the flattened loop, row after row), one chunk at a time."""

    def __init__(self, loop: np.ndarray, frames: int, gain: float):
        self.flat, self.frames, self.gain = loop.reshape(-1), frames, gain

    def mix_into(self, buffer: np.ndarray, first: int, last: int) -> None:
        count = min(last, first + buffer.shape[1]) - first
        for channel in range(buffer.shape[0]):
            at = (channel * self.frames + first + np.arange(count)) % self.flat.size
            buffer[channel, :count] += self.gain * self.flat[at]


class _Send:
    """The reverb send, built straight at 1/factor of the rate.

    Taking a mix down in rate is linear, so the send's low-rate signal is the sum of each
    copy's own: every distinct sound is taken down once for each place within a block its
    copies start at, and each copy adds that at its block, an eighth of the work of adding
    the copy at full rate and taking the sum down (what downsample() does, value for value).
    """

    def __init__(self) -> None:
        self.copies: list[tuple[int, np.ndarray, float, bool]] = []

    def add(self, start: int, sound: np.ndarray, gain: float, swapped: bool = False) -> None:
        """A copy of `sound` (its channels swapped when `swapped`); copies of one sound
        (the same array) are filtered once."""
        if gain != 0.0:
            self.copies.append((start, sound, gain, swapped))

    def __bool__(self) -> bool:
        return bool(self.copies)

    def low_rate(self, frames: int, factor: int, is_cancelled: Callable[[], bool]) -> np.ndarray:
        blocks = frames // factor
        limit = blocks * factor  # downsample() reads whole blocks only
        reach = TAPS_PER_PHASE // 2  # blocks of low-rate output before and after a sound
        low = np.zeros((2, blocks), dtype=np.float32)
        taken: dict[tuple[int, int], np.ndarray] = {}
        for count, (start, sound, gain, swapped) in enumerate(self.copies):
            if count % CANCEL_CHECK_EVERY == CANCEL_CHECK_EVERY - 1:
                _raise_if(is_cancelled)
            if start >= limit:
                continue
            phase, block = start % factor, start // factor
            # The sound's own low-rate signal, as if it started at frame `phase`: it only
            # depends on where the copy falls within a block.
            if start + sound.shape[1] > limit:  # cut where the full-rate bus would have ended
                down = _taken_down(sound[:, : limit - start], factor, phase, reach)
            else:
                down = taken.get((id(sound), phase))
                if down is None:
                    down = taken[(id(sound), phase)] = _taken_down(sound, factor, phase, reach)
            if swapped:
                down = down[::-1]
            first = block - reach
            lo, hi = max(first, 0), min(first + down.shape[1], blocks)
            if hi > lo:
                low[:, lo:hi] += gain * down[:, lo - first : hi - first]
        return low


def _taken_down(sound: np.ndarray, factor: int, phase: int, reach: int) -> np.ndarray:
    """downsample() of the sound alone starting at frame `phase`, from block -reach to the
    last block its filter reaches."""
    count = -(-(phase + sound.shape[1]) // factor) + 2 * reach
    return downsample_range(sound, factor, -reach, count, phase)


def vinyl_crackle(frames: int, rng: np.random.Generator) -> list:
    """A soft hiss (a two-second loop) and random dust clicks, as things to mix into a bus."""
    hiss = spectral_filter(np.stack([noise(2 * SAMPLE_RATE, rng), noise(2 * SAMPLE_RATE, rng)]), 900.0, 5000.0)
    click_frames = seconds_to_frames(0.003)
    clicks = [band_limited(spectral_filter(noise(click_frames, rng), 1000.0, 9000.0)
                           * decay_envelope(click_frames, 0.0006)) for _ in range(4)]
    count = int(rng.poisson(6.0 * frames / SAMPLE_RATE))
    dust = _Layer()
    for position, shape, amplitude, side in zip(
        rng.integers(0, max(frames - click_frames, 1), count), rng.integers(0, 4, count),
        rng.uniform(0.03, 0.2, count), rng.uniform(-0.6, 0.6, count),
    ):
        click = clicks[int(shape)]
        dust.add(int(position), np.stack([click * (1.0 - side) / 2, click * (1.0 + side) / 2]), float(amplitude))
    return [_Hiss(hiss, frames, 0.012), dust]


class _Impulses(dict):
    """Reverb impulses built the first time a drum asks for one."""

    def __init__(self, rng: np.random.Generator):
        super().__init__()
        self._rng = rng

    def __missing__(self, name: str) -> np.ndarray:
        self[name] = reverb_impulse(name, self._rng)
        return self[name]


def render_candidate(arrangement: Arrangement, choices: MusicalChoices, rng: np.random.Generator,
                     on_step_done: Callable[[], None], is_cancelled: Callable[[], bool],
                     out: np.ndarray | None = None, stems_out: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The cue for one candidate: (2, choices.frames) float32, peak at most -1 dBFS, written
    into `out` when given (the backend's output row, so the cue is never copied).

    `stems_out` (track name -> a zeroed (2, frames) float32 array for every part_track of
    choices.parts) receives each part alone, with its own share of the reverb, the pump,
    the ending and the level: the stems sum to the cue within float rounding.
    Calls on_step_done after each pitched part, after the drums and after the mix.
    """
    frames = choices.frames
    beat_frames = choices.beat_frames
    style = choices.style
    bus_impulse = reverb_impulse(style.reverb, rng, SAMPLE_RATE / REVERB_DECIMATION)
    # What goes where: `dry` is the mix; `ducked` pumps with the kick (it is the mix itself
    # when the style does not pump); `send` feeds the shared reverb.
    dry: list = []
    ducked: list = dry if not style.sidechain else []
    send = _Send()
    # For stems: (track, layer, pumped) for every layer, and one reverb send per track.
    stem_layers: list[tuple[str, object, bool]] = []
    track_sends: dict[str, _Send] | None = None if stems_out is None else {}

    def frame_of(beat: float) -> int:
        return int(round(beat * beat_frames))

    for part, notes in arrangement.tracks:
        _raise_if(is_cancelled)
        if part.writer == "crackle":
            crackle = vinyl_crackle(frames, rng)
            dry.extend(crackle)
            stem_layers += [("fx", layer, False) for layer in crackle]
            on_step_done()
            continue
        patch = PATCHES[part.patch]
        bus = _Layer()
        (ducked if part.bus == "ducked" else dry).append(bus)
        stem_layers.append((part_track(part), bus, ducked is not dry and part.bus == "ducked"))
        part_send = None if track_sends is None else track_sends.setdefault(part_track(part), _Send())
        target = ROLE_LEVELS[part.role] * part.level * patch.gain
        rendered: dict[tuple, tuple[np.ndarray, float]] = {}
        for count, note in enumerate(notes):
            if count % CANCEL_CHECK_EVERY == CANCEL_CHECK_EVERY - 1:
                _raise_if(is_cancelled)
            gate = max(frame_of(note.length), 1)
            key = (note.pitches, gate)
            if key not in rendered:
                sound = render_note(patch, note.pitches, gate, rng)
                rendered[key] = (sound, note_level(sound, gate, target))
            sound, level = rendered[key]
            start = frame_of(note.start)
            copies = [(start, 1.0, False)]
            if part.echo:
                delay, feedback, repeats = part.echo
                # Ping-pong: every other repeat comes from the other side (channels swapped).
                copies += [(frame_of(note.start + delay * k), feedback**k, k % 2 == 1) for k in range(1, repeats + 1)]
            for at, echo_gain, swapped in copies:
                if at < frames:
                    bus.add(at, sound[::-1] if swapped else sound, level * note.velocity * echo_gain)
                    send.add(at, sound, level * note.velocity * echo_gain * patch.reverb_send, swapped)
                    if part_send is not None:
                        part_send.add(at, sound, level * note.velocity * echo_gain * patch.reverb_send, swapped)
        on_step_done()

    _raise_if(is_cancelled)
    kick_frames: list[int] = []
    if arrangement.hits:
        kit = build_kit(style.kit, choices.tonic_pc, rng, _Impulses(rng))
        kit = {name: sound * (DRUM_PEAKS[name] / max(float(np.max(np.abs(sound))), 1e-9)) for name, sound in kit.items()}
        drums = _Layer()
        dry.append(drums)
        stem_layers.append(("drums", drums, False))
        for hit in arrangement.hits:
            start = frame_of(hit.start)
            if start < frames:
                drums.add(start, kit[hit.drum], hit.velocity)
            if hit.drum in ("kick", "boom"):
                kick_frames.append(start)
        on_step_done()

    wet = _reverb(send, bus_impulse, frames, is_cancelled)
    mix = np.zeros((2, frames), dtype=np.float32) if out is None else out
    pump = _Pump(kick_frames, style.sidechain, beat_frames) if style.sidechain and kick_frames else None
    ending = _ending_fade(choices)
    peak, energy = 0.0, 0.0
    # Two buffers for every chunk (fresh ones each time would cost page faults, not adds).
    mixing_buffer = np.empty((2, min(MIX_CHUNK_FRAMES, frames)), dtype=np.float32)
    pumped_buffer = np.empty_like(mixing_buffer) if ducked is not dry else None
    for first in range(0, frames, MIX_CHUNK_FRAMES):
        _raise_if(is_cancelled)
        last = min(frames, first + MIX_CHUNK_FRAMES)
        chunk = mixing_buffer[:, : last - first]
        chunk.fill(0.0)
        for layer in dry:
            layer.mix_into(chunk, first, frames)
        pumped = chunk if pumped_buffer is None else pumped_buffer[:, : last - first]
        if pumped_buffer is not None:
            pumped.fill(0.0)
            for layer in ducked:
                layer.mix_into(pumped, first, frames)
        blocks = -(-(last - first) // REVERB_DECIMATION)
        pumped += upsample_range(wet, REVERB_DECIMATION, first // REVERB_DECIMATION, blocks)[:, : last - first]
        if pump is not None:
            pumped *= pump.envelope(first, last)
        if pumped is not chunk:
            chunk += pumped
        if ending is not None and last > frames - ending.size:
            lo = max(first, frames - ending.size)
            chunk[:, lo - first :] *= ending[lo - (frames - ending.size) : last - (frames - ending.size)]
        for channel, row in enumerate(chunk):  # row by row: 5x faster than one 2-D copy into interleaved rows
            mix[channel, first:last] = row
        for row in chunk:
            peak = max(peak, float(row.max()), -float(row.min()))
            energy += float(np.dot(row, row))
    gain = _set_level(mix, peak, energy)
    if stems_out is not None:
        _render_stems(stems_out, stem_layers, track_sends, bus_impulse, pump, ending, gain, frames, is_cancelled)
    on_step_done()
    return mix


def _reverb(send: _Send, impulse: np.ndarray, frames: int, is_cancelled: Callable[[], bool]) -> np.ndarray:
    """The shared reverb's output at 1/REVERB_DECIMATION of the rate, frames // REVERB_DECIMATION long:
    the send taken down in rate, convolved with the impulse block by block."""
    low = send.low_rate(frames, REVERB_DECIMATION, is_cancelled)
    _raise_if(is_cancelled)
    return convolve_in_blocks(low, impulse, frames // REVERB_DECIMATION)


class _Pump:
    """The sidechain gain, chunk by chunk: dips by `depth` at each kick and recovers within
    about half a beat."""

    def __init__(self, kick_frames: list[int], depth: float, beat_frames: float):
        self.kicks = np.array(sorted(kick_frames), dtype=np.int64)
        length = int(beat_frames)
        t = np.arange(length, dtype=np.float32)
        attack = seconds_to_frames(0.004)
        # A few milliseconds down (an instant drop clicks), then back up over about half a beat.
        self.curve = 1.0 - depth * np.minimum(t / attack, 1.0) * np.exp(-np.maximum(t - attack, 0.0) / (0.22 * beat_frames))

    def envelope(self, first: int, last: int) -> np.ndarray:
        gain = np.ones(last - first, dtype=np.float32)
        length = self.curve.size
        for start in self.kicks[(self.kicks < last) & (self.kicks + length > first)]:
            lo, hi = max(first, int(start)), min(last, int(start) + length)
            np.minimum(gain[lo - first : hi - first], self.curve[lo - start : hi - start],
                       out=gain[lo - first : hi - first])
        return gain


def sidechain_envelope(frames: int, kick_frames: list[int], depth: float, beat_frames: float) -> np.ndarray:
    """Gain that dips by `depth` at each kick and recovers within about half a beat."""
    return _Pump(kick_frames, depth, beat_frames).envelope(0, frames)


def _ending_fade(choices: MusicalChoices) -> np.ndarray | None:
    """The fade over the cue's last frames: half the final chord's ring, or the sliver of
    groove that is left; None for a loop ("continues": the fold needs the music as it is)."""
    frames = choices.frames
    if choices.ending == "ring-out":
        length = int(0.5 * choices.ring_out_beats * choices.beat_frames)
    elif choices.ending == "fade":
        sliver = frames - (choices.groove_bars - 1) * choices.bar_frames
        length = int(choices.beat_frames + sliver)
    elif choices.ending == "whole bars":
        length = seconds_to_frames(BAR_LINE_DECLICK_S)
    else:
        return None
    length = int(np.clip(length, seconds_to_frames(0.002), frames))
    return fade(length, rising=False)


def _set_level(mix: np.ndarray, peak: float, energy: float) -> float:
    """Scale the mix in place to TARGET_RMS, or less so its peak stays under PEAK_CEILING;
    `peak` and `energy` (sum of squares) were measured chunk by chunk. Returns the gain."""
    if peak < 1e-9:
        return 1.0
    rms = float(np.sqrt(energy / mix.size))
    gain = min(TARGET_RMS / max(rms, 1e-9), PEAK_CEILING / peak)
    mix *= np.float32(gain)
    return gain


def _render_stems(stems_out: dict[str, np.ndarray], stem_layers: list, track_sends: dict, impulse: np.ndarray,
                  pump, ending: np.ndarray | None, gain: float, frames: int, is_cancelled) -> None:
    """Each track's layers, its own reverb (the shared reverb is linear, so the tracks'
    reverbs sum to it), the pump on what the mix pumps, the ending and the mix's gain,
    a chunk at a time into stems_out (the mix's own steps, one track at a time)."""
    wets = {track: _reverb(send, impulse, frames, is_cancelled) for track, send in track_sends.items() if send and track in stems_out}
    pumped_buffer = np.empty((2, min(MIX_CHUNK_FRAMES, frames)), dtype=np.float32)
    for track, out in stems_out.items():
        layers = [(layer, pumped) for name, layer, pumped in stem_layers if name == track]
        wet = wets.get(track)
        for first in range(0, frames, MIX_CHUNK_FRAMES):
            _raise_if(is_cancelled)
            last = min(frames, first + MIX_CHUNK_FRAMES)
            chunk = out[:, first:last]
            pumped_chunk = pumped_buffer[:, : last - first]
            pumped_chunk.fill(0.0)
            for layer, pumped in layers:
                layer.mix_into(pumped_chunk if pumped else chunk, first, frames)
            if wet is not None:
                blocks = -(-(last - first) // REVERB_DECIMATION)
                pumped_chunk += upsample_range(wet, REVERB_DECIMATION, first // REVERB_DECIMATION, blocks)[:, : last - first]
            if pump is not None:
                pumped_chunk *= pump.envelope(first, last)
            chunk += pumped_chunk
            if ending is not None and last > frames - ending.size:
                lo = max(first, frames - ending.size)
                chunk[:, lo - first :] *= ending[lo - (frames - ending.size) : last - (frames - ending.size)]
        out *= np.float32(gain)


def _raise_if(is_cancelled: Callable[[], bool]) -> None:
    if is_cancelled():
        raise GenerationCancelled()
