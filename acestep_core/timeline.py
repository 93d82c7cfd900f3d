"""Timeline arithmetic shared by the Blender and REAPER hosts: frames, bars, cue sheets, channels.

Standard library only, pure functions. Times are seconds; where they come from frames
they are kept as exact `Fraction`s, so 29.97 fps (30000/1001) never drifts a frame:
seconds -> frames -> seconds round-trips exactly. Fractions mix freely with floats
(`float(x)` where a host API wants a float).

A cue sheet is the plan for scoring a cutscene: one section per marker (or region),
each cue starting at its section and running on past the section's end by the crossfade,
so the old cue fades out while the next fades in from the next section's first instant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, Sequence, Union

from acestep_core.errors import AceStepError

Number = Union[int, float, Fraction]

# Blender's sequencer has channels 1..128 (MAXSEQ); REAPER tracks have no such limit.
BLENDER_MAX_CHANNEL = 128

# Video rates that are written "23.976", "29.97", ... but are really N*1000/1001.
_NTSC_RATES = tuple(Fraction(n * 1000, 1001) for n in (24, 30, 48, 60, 120))
_NTSC_SNAP = 0.005
# Blender stores fps_base as a 32-bit float (1.001 reads back as 1.00100004673...);
# every preset and sane custom value is a ratio with a small denominator.
_FPS_BASE_MAX_DENOMINATOR = 1000


class TimelineError(AceStepError, ValueError):
    """Timeline input that cannot be turned into a plan; the message says what to change."""


class InvalidCueSheet(TimelineError):
    """Markers or regions that do not make a cue sheet (none, duplicates, nothing before the end)."""


class NoFreeChannel(TimelineError):
    """Every channel in the allowed range is used somewhere over the span."""


# -- frame rates, frames and seconds --------------------------------------------------


def frame_rate(fps: Number, fps_base: Number = 1) -> Fraction:
    """Exact frames per second from a host's fps and fps_base.

    Blender gives (30, 1.001) for 29.97; REAPER gives a float such as 29.97. Both come
    back as Fraction(30000, 1001). Raises TimelineError for a rate that is not positive.
    """
    if not _is_positive(fps) or not _is_positive(fps_base):
        raise TimelineError(f"the frame rate must be positive, got fps={fps!r} fps_base={fps_base!r}")
    base = fps_base if isinstance(fps_base, (int, Fraction)) else Fraction(fps_base).limit_denominator(_FPS_BASE_MAX_DENOMINATOR)
    rate = _exact(fps) / base
    if isinstance(fps, float):
        # A float rate such as 33.3: keep the value the host meant, not its binary noise.
        rate = rate.limit_denominator(1_000_000)
    for ntsc in _NTSC_RATES:
        if abs(rate - ntsc) < _NTSC_SNAP:
            return ntsc
    return rate


def frames_to_seconds(frames: Number, rate: Fraction) -> Fraction:
    """Seconds at a frame count (or frame offset): exact for whole frames."""
    return _exact(frames) / rate


def seconds_to_frames(seconds: Number, rate: Fraction) -> int:
    """The nearest whole frame to a time (ties round half up, never to even)."""
    return math.floor(_exact(seconds) * rate + Fraction(1, 2))


def seconds_to_frames_exact(seconds: Number, rate: Fraction) -> Fraction:
    """A time as a (possibly fractional) frame count."""
    return _exact(seconds) * rate


def snap_to_frames(seconds: Number, rate: Fraction) -> Fraction:
    """The time of the nearest whole frame, so lengths built from it stay whole frames."""
    return frames_to_seconds(seconds_to_frames(seconds, rate), rate)


def span_seconds(start_frame: int, end_frame: int, rate: Fraction) -> Fraction:
    """Seconds from one frame to another (end exclusive, as hosts count strip lengths)."""
    return frames_to_seconds(end_frame - start_frame, rate)


# -- bars and beats -----------------------------------------------------------------


def beats_to_seconds(beats: Number, bpm: Number) -> Fraction:
    _require_positive(bpm, "bpm")
    return _exact(beats) * 60 / _exact(bpm)


def seconds_to_beats(seconds: Number, bpm: Number) -> Fraction:
    _require_positive(bpm, "bpm")
    return _exact(seconds) * _exact(bpm) / 60


def bars_to_seconds(bars: Number, bpm: Number, beats_per_bar: int = 4) -> Fraction:
    """4 bars of 4/4 at 120 BPM -> 8 seconds."""
    _require_positive(beats_per_bar, "beats_per_bar")
    return beats_to_seconds(_exact(bars) * beats_per_bar, bpm)


def seconds_to_bars(seconds: Number, bpm: Number, beats_per_bar: int = 4) -> Fraction:
    _require_positive(beats_per_bar, "beats_per_bar")
    return seconds_to_beats(seconds, bpm) / beats_per_bar


def whole_bars_covering(seconds: Number, bpm: Number, beats_per_bar: int = 4) -> int:
    """The fewest whole bars that last at least `seconds` (at least one bar)."""
    return max(1, math.ceil(seconds_to_bars(seconds, bpm, beats_per_bar)))


# -- cue sheets ---------------------------------------------------------------------


@dataclass(frozen=True)
class CueSection:
    """One cue of a cue sheet. All times are seconds from the timeline's zero.

    The cue starts at `start` and plays to `cue_end` = `end` + `fade_out`: it fades in over
    its first `fade_in` seconds (the previous cue's tail) and fades out over the `fade_out`
    seconds after `end` (the next cue's head). `duration` is what to ask the generator for.
    """

    index: int
    name: str
    start: Fraction
    end: Fraction
    fade_in: Fraction
    fade_out: Fraction

    @property
    def length(self) -> Fraction:
        """The section itself, marker to next marker."""
        return self.end - self.start

    @property
    def cue_end(self) -> Fraction:
        return self.end + self.fade_out

    @property
    def duration(self) -> Fraction:
        """Length of the cue to generate, including the overlap into the next section."""
        return self.cue_end - self.start

    def frames(self, rate: Fraction) -> "CueFrames":
        """This section in whole frames (exact when the sheet was built with this rate)."""
        start = seconds_to_frames(self.start, rate)
        cue_end = seconds_to_frames(self.cue_end, rate)
        return CueFrames(
            start=start,
            end=seconds_to_frames(self.end, rate),
            cue_end=cue_end,
            duration=cue_end - start,
            fade_in=seconds_to_frames(self.fade_in, rate),
            fade_out=seconds_to_frames(self.fade_out, rate),
        )

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "name": self.name,
            "start": float(self.start),
            "end": float(self.end),
            "cue_end": float(self.cue_end),
            "duration": float(self.duration),
            "fade_in": float(self.fade_in),
            "fade_out": float(self.fade_out),
        }


@dataclass(frozen=True)
class CueFrames:
    """A section in whole frames: the cue occupies frames [start, cue_end)."""

    start: int
    end: int
    cue_end: int
    duration: int
    fade_in: int
    fade_out: int


@dataclass(frozen=True)
class CueSheet:
    sections: tuple[CueSection, ...]
    crossfade: Fraction

    @property
    def start(self) -> Fraction:
        return self.sections[0].start

    @property
    def end(self) -> Fraction:
        """Where the last cue stops."""
        return max(section.cue_end for section in self.sections)

    def __len__(self) -> int:
        return len(self.sections)

    def __iter__(self):
        return iter(self.sections)

    @classmethod
    def from_markers(
        cls,
        markers: Iterable[tuple[str, Number]],
        end: Number,
        crossfade: Number = 0,
        rate: Fraction | None = None,
    ) -> "CueSheet":
        """One section per marker, ending at the next marker or at `end` (the scene end).

        `markers` are (name, seconds) in any order. Markers at or after `end` start
        nothing and are left out. With `rate`, the crossfade is snapped to whole frames
        so every length in the sheet is whole frames.
        """
        ordered = sorted(((str(name), _exact(time)) for name, time in markers), key=lambda m: m[1])
        end = _exact(end)
        ordered = [m for m in ordered if m[1] < end]
        if not ordered:
            raise InvalidCueSheet(
                "there are no markers before the end of the scene; add a marker where each section "
                "of music should start and name it for the music (for example 'calm exploration')"
            )
        _reject_shared_times(ordered)
        spans = [
            (name, start, ordered[i + 1][1] if i + 1 < len(ordered) else end)
            for i, (name, start) in enumerate(ordered)
        ]
        return cls._from_spans(spans, crossfade, rate)

    @classmethod
    def from_regions(
        cls,
        regions: Iterable[tuple[str, Number, Number]],
        crossfade: Number = 0,
        rate: Fraction | None = None,
    ) -> "CueSheet":
        """One section per (name, start, end) region. A cue fades into the next only where
        the next region starts no later than this one ends; a gap means silence between."""
        ordered = sorted(((str(n), _exact(s), _exact(e)) for n, s, e in regions), key=lambda r: r[1])
        if not ordered:
            raise InvalidCueSheet("there are no regions; add a region for each section of music and name it for the music")
        for name, start, stop in ordered:
            if stop <= start:
                raise InvalidCueSheet(f"region {name!r} ends at {float(stop):g} s, not after its start at {float(start):g} s; give it a length")
        _reject_shared_times([(n, s) for n, s, _ in ordered])
        # Overlapping regions are cut at the next one's start: one cue at a time, plus the fade.
        spans = [
            (name, start, min(stop, ordered[i + 1][1]) if i + 1 < len(ordered) else stop)
            for i, (name, start, stop) in enumerate(ordered)
        ]
        return cls._from_spans(spans, crossfade, rate)

    @classmethod
    def _from_spans(
        cls, spans: Sequence[tuple[str, Fraction, Fraction]], crossfade: Number, rate: Fraction | None
    ) -> "CueSheet":
        if not _is_number(crossfade) or crossfade < 0:
            raise InvalidCueSheet(f"the crossfade must be zero or more seconds, got {crossfade!r}")
        crossfade = snap_to_frames(crossfade, rate) if rate is not None else _exact(crossfade)
        fades: list[Fraction] = []
        for (_, _, end), following in zip(spans, spans[1:]):
            _, next_start, next_end = following
            adjacent = next_start == end
            # A tail longer than the next section would run into the section after it.
            fades.append(min(crossfade, next_end - next_start) if adjacent else Fraction(0))
        fades.append(Fraction(0))
        sections = tuple(
            CueSection(
                index=i,
                name=name,
                start=start,
                end=end,
                fade_in=fades[i - 1] if i > 0 else Fraction(0),
                fade_out=fades[i],
            )
            for i, (name, start, end) in enumerate(spans)
        )
        return cls(sections=sections, crossfade=crossfade)

    def to_dict(self) -> dict:
        return {"crossfade": float(self.crossfade), "sections": [s.to_dict() for s in self.sections]}


def _reject_shared_times(ordered: Sequence[tuple[str, Fraction]]) -> None:
    for (first, at), (second, other_at) in zip(ordered, ordered[1:]):
        if at == other_at:
            raise InvalidCueSheet(
                f"markers {first!r} and {second!r} are both at {float(at):g} s; move or delete one "
                "so each section has a length"
            )


# -- channels -----------------------------------------------------------------------

OccupiedRange = tuple[int, Number, Number]


def channel_is_free(occupied: Iterable[OccupiedRange], channel: int, start: Number, end: Number) -> bool:
    """True when nothing on `channel` overlaps [start, end). Touching ends is not overlap."""
    return not any(c == channel and s < end and start < e for c, s, e in occupied)


def first_free_channels(
    occupied: Iterable[OccupiedRange],
    start: Number,
    end: Number,
    count: int = 1,
    lowest: int = 1,
    highest: int = BLENDER_MAX_CHANNEL,
    adjacent: bool = False,
) -> list[int]:
    """The lowest `count` channels free over all of [start, end), lowest first.

    `occupied` holds (channel, start, end) for every existing item, ends exclusive. With
    `adjacent`, the channels are one consecutive run (a music channel pair, say).
    Raises NoFreeChannel when the range lowest..highest has too few.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    busy = {c for c, s, e in occupied if s < end and start < e and lowest <= c <= highest}
    found: list[int] = []
    for channel in range(lowest, highest + 1):
        if channel in busy:
            if adjacent:
                found = []
            continue
        found.append(channel)
        if len(found) == count:
            return found
    raise NoFreeChannel(
        f"{'a run of ' if adjacent else ''}{count} free channel{'s' if count > 1 else ''} between "
        f"{lowest} and {highest} not found from {_format_time(start)} to {_format_time(end)}; "
        "free or delete strips there, or place the music elsewhere"
    )


def first_free_channel(
    occupied: Iterable[OccupiedRange],
    start: Number,
    end: Number,
    lowest: int = 1,
    highest: int = BLENDER_MAX_CHANNEL,
) -> int:
    """The lowest channel with nothing on it anywhere over [start, end)."""
    return first_free_channels(occupied, start, end, 1, lowest, highest)[0]


# -- helpers ------------------------------------------------------------------------


def _exact(value: Number) -> Fraction:
    if isinstance(value, Fraction):
        return value
    if isinstance(value, bool) or not _is_number(value):
        raise TimelineError(f"expected a finite number, got {value!r}")
    return Fraction(value)


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, Fraction)):
        return True
    return isinstance(value, float) and math.isfinite(value)


def _is_positive(value: object) -> bool:
    return _is_number(value) and value > 0  # type: ignore[operator]


def _require_positive(value: object, name: str) -> None:
    if not _is_positive(value):
        raise TimelineError(f"{name} must be a positive number, got {value!r}")


def _format_time(value: Number) -> str:
    return f"{float(value):g}"
