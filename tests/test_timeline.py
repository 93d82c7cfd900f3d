"""The timeline arithmetic both hosts share: exact frame rates, bars, cue sheets, channels."""

from __future__ import annotations

import ast
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acestep_core import timeline
from acestep_core.errors import AceStepError
from acestep_core.timeline import (
    CueSheet,
    InvalidCueSheet,
    NoFreeChannel,
    TimelineError,
    bars_to_seconds,
    channel_is_free,
    first_free_channel,
    first_free_channels,
    frame_rate,
    frames_to_seconds,
    seconds_to_bars,
    seconds_to_frames,
    snap_to_frames,
    span_seconds,
    whole_bars_covering,
)

NTSC_30 = Fraction(30000, 1001)
# (fps, fps_base) as Blender's presets store them; fps_base is a float32 in Blender.
BLENDER_PRESETS = [
    (24, 1.0, Fraction(24)),
    (25, 1.0, Fraction(25)),
    (30, 1.0, Fraction(30)),
    (50, 1.0, Fraction(50)),
    (60, 1.0, Fraction(60)),
    (24, 1.001, Fraction(24000, 1001)),
    (30, 1.001, NTSC_30),
    (60, 1.001, Fraction(60000, 1001)),
    (30, 1.0010000467300415, NTSC_30),  # what Blender reads back for 1.001
    (24, 1.0010000467300415, Fraction(24000, 1001)),
]

rates = st.sampled_from([r for _, _, r in BLENDER_PRESETS] + [Fraction(12), Fraction(120), Fraction(48000, 1001)])
frames = st.integers(min_value=-100_000, max_value=10_000_000)


# -- frame rates --------------------------------------------------------------------


@pytest.mark.parametrize("fps, fps_base, expected", BLENDER_PRESETS)
def test_frame_rate_from_blender_presets_is_exact(fps, fps_base, expected):
    assert frame_rate(fps, fps_base) == expected


@pytest.mark.parametrize(
    "written, expected",
    [(29.97, NTSC_30), (23.976, Fraction(24000, 1001)), (59.94, Fraction(60000, 1001)), (25.0, 25), (33.3, Fraction(333, 10))],
)
def test_frame_rate_from_a_float_means_what_an_editor_means(written, expected):
    # REAPER and users write 29.97 for the NTSC rate 30000/1001, not for 2997/100.
    assert frame_rate(written) == expected


@pytest.mark.parametrize("fps, fps_base", [(0, 1), (-24, 1), (24, 0), (float("nan"), 1), (float("inf"), 1), (True, 1)])
def test_frame_rate_rejects_nonsense_with_a_sentence(fps, fps_base):
    with pytest.raises(TimelineError, match="frame rate must be positive"):
        frame_rate(fps, fps_base)


def test_timeline_errors_belong_to_the_family():
    assert issubclass(TimelineError, AceStepError)
    assert issubclass(InvalidCueSheet, TimelineError) and issubclass(NoFreeChannel, TimelineError)


# -- frames and seconds -------------------------------------------------------------


@given(frames, rates)
def test_frames_seconds_round_trip_exactly(count, rate):
    assert seconds_to_frames(frames_to_seconds(count, rate), rate) == count


@given(frames, rates)
def test_frame_times_through_float_still_land_on_the_frame(count, rate):
    # A host that hands back float seconds (REAPER, a JSON file) must not lose a frame.
    assert seconds_to_frames(float(frames_to_seconds(count, rate)), rate) == count


def test_29_97_fps_hour_is_frame_accurate():
    # 107892 frames is one hour of 29.97 video; a float 29.97 rate drifts 3.6 frames by then.
    assert frames_to_seconds(107892, NTSC_30) == Fraction(107892 * 1001, 30000)
    assert seconds_to_frames(3600, NTSC_30) == 107892


@given(st.fractions(min_value=-1000, max_value=100_000), rates)
def test_seconds_to_frames_is_the_nearest_frame(seconds, rate):
    nearest = seconds_to_frames(seconds, rate)
    assert abs(seconds * rate - nearest) <= Fraction(1, 2)


@given(st.fractions(min_value=0, max_value=10_000), rates)
def test_snap_to_frames_is_idempotent_and_whole(seconds, rate):
    snapped = snap_to_frames(seconds, rate)
    assert (snapped * rate).denominator == 1
    assert snap_to_frames(snapped, rate) == snapped


def test_span_seconds_counts_end_exclusive():
    assert span_seconds(1, 25, Fraction(24)) == 1
    assert span_seconds(0, 30, NTSC_30) == Fraction(1001, 1000)


def test_rounding_half_frames_goes_up_not_to_even():
    assert seconds_to_frames(Fraction(1, 48), Fraction(24)) == 1
    assert seconds_to_frames(Fraction(3, 48), Fraction(24)) == 2


def test_non_numbers_are_refused():
    with pytest.raises(TimelineError, match="finite number"):
        frames_to_seconds(float("nan"), Fraction(24))
    with pytest.raises(TimelineError, match="finite number"):
        seconds_to_frames("1.0", Fraction(24))


# -- bars and beats -----------------------------------------------------------------


@pytest.mark.parametrize(
    "bars, bpm, beats_per_bar, seconds",
    [(4, 120, 4, 8), (1, 60, 3, 3), (8, 90, 4, Fraction(64, 3)), (2, 140, 6, Fraction(36, 7))],
)
def test_bars_to_seconds(bars, bpm, beats_per_bar, seconds):
    assert bars_to_seconds(bars, bpm, beats_per_bar) == seconds


@given(
    st.fractions(min_value=0, max_value=1000),
    st.integers(min_value=30, max_value=300),
    st.sampled_from([2, 3, 4, 6]),
)
def test_bars_seconds_round_trip(bars, bpm, beats_per_bar):
    assert seconds_to_bars(bars_to_seconds(bars, bpm, beats_per_bar), bpm, beats_per_bar) == bars


@given(st.floats(min_value=0.01, max_value=600), st.integers(min_value=30, max_value=300), st.sampled_from([2, 3, 4, 6]))
def test_whole_bars_covering_is_the_fewest_that_last_long_enough(seconds, bpm, beats_per_bar):
    bars = whole_bars_covering(seconds, bpm, beats_per_bar)
    assert bars_to_seconds(bars, bpm, beats_per_bar) >= Fraction(seconds)
    assert bars == 1 or bars_to_seconds(bars - 1, bpm, beats_per_bar) < Fraction(seconds)


@pytest.mark.parametrize("bpm", [0, -120, float("nan"), None])
def test_bars_need_a_positive_bpm(bpm):
    with pytest.raises(TimelineError, match="bpm must be a positive number"):
        bars_to_seconds(4, bpm)


# -- cue sheets from markers --------------------------------------------------------


def test_three_named_markers_make_three_crossfaded_cues():
    sheet = CueSheet.from_markers(
        [("victory fanfare", 20), ("calm exploration", 0), ("boss appears", 8)], end=30, crossfade=1
    )
    assert [s.name for s in sheet] == ["calm exploration", "boss appears", "victory fanfare"]
    assert [(s.start, s.end) for s in sheet] == [(0, 8), (8, 20), (20, 30)]
    assert [(s.fade_in, s.fade_out) for s in sheet] == [(0, 1), (1, 1), (1, 0)]
    assert [s.duration for s in sheet] == [9, 13, 10]
    assert [s.index for s in sheet] == [0, 1, 2]
    assert (sheet.start, sheet.end, len(sheet)) == (0, 30, 3)


def test_markers_at_or_after_the_end_start_nothing():
    sheet = CueSheet.from_markers([("a", 0), ("late", 30), ("later", 31)], end=30, crossfade=2)
    assert [(s.name, s.start, s.end, s.fade_out) for s in sheet] == [("a", 0, 30, 0)]


def test_crossfade_never_runs_past_the_next_section():
    sheet = CueSheet.from_markers([("a", 0), ("short", 10), ("c", 10.5)], end=20, crossfade=2)
    assert sheet.sections[0].fade_out == Fraction(1, 2)
    assert sheet.sections[1].fade_in == Fraction(1, 2)
    assert sheet.sections[1].fade_out == 2
    assert sheet.sections[0].cue_end == sheet.sections[2].start


@pytest.mark.parametrize(
    "markers, end, message",
    [
        ([], 10, "no markers before the end"),
        ([("late", 12)], 10, "no markers before the end"),
        ([("a", 2), ("b", 2)], 10, "'a' and 'b' are both at 2 s"),
    ],
)
def test_marker_problems_say_what_to_do(markers, end, message):
    with pytest.raises(InvalidCueSheet, match=message):
        CueSheet.from_markers(markers, end=end)


@pytest.mark.parametrize("crossfade", [-1, float("nan"), "1"])
def test_crossfade_must_be_zero_or_more(crossfade):
    with pytest.raises(InvalidCueSheet, match="crossfade must be zero or more"):
        CueSheet.from_markers([("a", 0)], end=10, crossfade=crossfade)


@pytest.mark.parametrize("fps, fps_base", [(24, 1.0), (30, 1.0010000467300415)])
def test_cue_sheet_from_marker_frames_is_frame_accurate(fps, fps_base):
    rate = frame_rate(fps, fps_base)
    marker_frames = {"calm exploration": 1, "boss appears": 241, "victory fanfare": 613}
    scene_end_exclusive = 901
    sheet = CueSheet.from_markers(
        [(n, frames_to_seconds(f, rate)) for n, f in marker_frames.items()],
        end=frames_to_seconds(scene_end_exclusive, rate),
        crossfade=0.5,
        rate=rate,
    )
    cues = [s.frames(rate) for s in sheet]
    assert [c.start for c in cues] == [1, 241, 613]
    assert [c.end for c in cues] == [241, 613, 901]
    fade = seconds_to_frames(0.5, rate)  # 12 at 24 fps, 15 at 29.97
    assert [c.fade_out for c in cues] == [fade, fade, 0]
    assert [c.duration for c in cues] == [240 + fade, 372 + fade, 288]
    for section, cue in zip(sheet, cues):
        # The seconds asked of the generator are exactly the frames placed.
        assert section.duration * rate == cue.duration


@st.composite
def marker_layouts(draw):
    rate = draw(rates)
    starts = draw(st.lists(st.integers(min_value=0, max_value=50_000), min_size=1, max_size=12, unique=True))
    end = max(starts) + draw(st.integers(min_value=1, max_value=5000))
    crossfade = draw(st.floats(min_value=0, max_value=10))
    return rate, starts, end, crossfade


@given(marker_layouts())
def test_cue_sheet_properties(layout):
    rate, starts, end, crossfade = layout
    sheet = CueSheet.from_markers(
        [(f"m{f}", frames_to_seconds(f, rate)) for f in starts], frames_to_seconds(end, rate), crossfade, rate
    )
    sections = sheet.sections
    assert len(sections) == len(starts)
    # Sections tile the timeline from the first marker to the end, in order.
    assert sections[0].start == frames_to_seconds(min(starts), rate)
    assert sections[-1].end == frames_to_seconds(end, rate)
    for previous, following in zip(sections, sections[1:]):
        assert previous.end == following.start
        # One overlap per boundary: the old cue's tail is the new cue's head.
        assert previous.fade_out == following.fade_in
        assert 0 <= previous.fade_out <= min(sheet.crossfade, following.length)
        # A tail reaches at most the start of the section after next.
        assert previous.cue_end <= following.end
    assert sections[0].fade_in == 0 and sections[-1].fade_out == 0
    for section in sections:
        cue = section.frames(rate)
        assert section.length > 0
        assert section.duration == section.length + section.fade_out
        assert (section.duration * rate).denominator == 1, "every length is whole frames"
        assert cue.duration == cue.cue_end - cue.start == seconds_to_frames(section.duration, rate)
        assert cue.fade_in + cue.fade_out <= cue.duration


@given(marker_layouts())
def test_cue_sheet_ignores_marker_order(layout):
    rate, starts, end, crossfade = layout
    markers = [(f"m{f}", frames_to_seconds(f, rate)) for f in starts]
    forward = CueSheet.from_markers(markers, frames_to_seconds(end, rate), crossfade, rate)
    backward = CueSheet.from_markers(list(reversed(markers)), frames_to_seconds(end, rate), crossfade, rate)
    assert forward == backward


def test_cue_sheet_to_dict_is_json_ready():
    sheet = CueSheet.from_markers([("a", 0), ("b", 4)], end=10, crossfade=0.25)
    assert sheet.to_dict() == {
        "crossfade": 0.25,
        "sections": [
            {"index": 0, "name": "a", "start": 0.0, "end": 4.0, "cue_end": 4.25, "duration": 4.25, "fade_in": 0.0, "fade_out": 0.25},
            {"index": 1, "name": "b", "start": 4.0, "end": 10.0, "cue_end": 10.0, "duration": 6.0, "fade_in": 0.25, "fade_out": 0.0},
        ],
    }


# -- cue sheets from regions (REAPER) -----------------------------------------------


def test_adjacent_regions_crossfade_and_gaps_stay_silent():
    sheet = CueSheet.from_regions([("intro", 0, 10), ("fight", 10, 30), ("after gap", 40, 50)], crossfade=2)
    assert [(s.fade_in, s.fade_out) for s in sheet] == [(0, 2), (2, 0), (0, 0)]
    assert [s.duration for s in sheet] == [12, 20, 10]


def test_overlapping_regions_are_cut_at_the_next_start():
    sheet = CueSheet.from_regions([("a", 0, 12), ("b", 10, 20)], crossfade=1)
    assert [(s.start, s.end, s.fade_out) for s in sheet] == [(0, 10, 1), (10, 20, 0)]


@pytest.mark.parametrize(
    "regions, message",
    [([], "no regions"), ([("empty", 5, 5)], "'empty' ends at 5 s, not after its start"), ([("a", 0, 4), ("b", 0, 8)], "both at 0 s")],
)
def test_region_problems_say_what_to_do(regions, message):
    with pytest.raises(InvalidCueSheet, match=message):
        CueSheet.from_regions(regions)


def test_regions_and_markers_agree_when_regions_tile_the_timeline():
    markers = CueSheet.from_markers([("a", 0), ("b", 5), ("c", 9)], end=15, crossfade=1)
    regions = CueSheet.from_regions([("a", 0, 5), ("b", 5, 9), ("c", 9, 15)], crossfade=1)
    assert markers == regions


# -- channels -----------------------------------------------------------------------


def test_first_free_channel_skips_anything_overlapping_the_span():
    occupied = [(1, 0, 100), (2, 50, 60), (3, 200, 300), (4, 0, 10)]
    assert first_free_channel(occupied, 55, 150) == 3
    assert first_free_channel(occupied, 100, 200) == 1  # touching ends is not overlap
    assert first_free_channel(occupied, 0, 400, lowest=2) == 5


def test_free_channels_for_candidates_and_music_pairs():
    occupied = [(1, 0, 100), (3, 0, 100), (6, 0, 100)]
    assert first_free_channels(occupied, 0, 50, count=3) == [2, 4, 5]
    assert first_free_channels(occupied, 0, 50, count=2, adjacent=True) == [4, 5]
    assert first_free_channels(occupied, 0, 50, count=3, adjacent=True) == [7, 8, 9]


def test_no_free_channel_says_where_and_what_to_do():
    occupied = [(c, 0, 10) for c in range(1, 129)]
    with pytest.raises(NoFreeChannel, match="1 free channel between 1 and 128 not found from 5 to 6; free or delete"):
        first_free_channel(occupied, 5, 6)
    assert first_free_channel(occupied, 10, 20) == 1


def test_count_must_be_positive():
    with pytest.raises(ValueError):
        first_free_channels([], 0, 1, count=0)


occupied_ranges = st.lists(
    st.tuples(st.integers(1, 12), st.integers(0, 500), st.integers(1, 200)).map(lambda t: (t[0], t[1], t[1] + t[2])),
    max_size=40,
)


@given(occupied_ranges, st.integers(0, 600), st.integers(1, 300), st.integers(1, 4), st.booleans())
def test_free_channels_are_free_lowest_and_ordered(occupied, start, length, count, adjacent):
    end = start + length
    channels = first_free_channels(occupied, start, end, count=count, highest=32, adjacent=adjacent)
    assert len(channels) == count and channels == sorted(channels)
    assert all(channel_is_free(occupied, c, start, end) for c in channels)
    if adjacent:
        assert channels == list(range(channels[0], channels[0] + count))
    # Nothing lower would have done: every skipped channel below the last is busy (or breaks the run).
    if not adjacent:
        skipped = set(range(1, channels[-1])) - set(channels)
        assert not any(channel_is_free(occupied, c, start, end) for c in skipped)
    else:
        for first in range(1, channels[0]):
            assert not all(channel_is_free(occupied, c, start, end) for c in range(first, first + count))


@given(occupied_ranges, st.integers(0, 600), st.integers(1, 300))
def test_placing_on_the_free_channel_never_overlaps(occupied, start, length):
    end = start + length
    channel = first_free_channel(occupied, start, end, highest=64)
    for c, s, e in occupied:
        assert c != channel or e <= start or end <= s


# -- host Pythons -------------------------------------------------------------------


def test_timeline_imports_only_the_standard_library_and_core_types():
    tree = ast.parse(Path(timeline.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported - set(sys.stdlib_module_names) - {"__future__"} <= {"acestep_core"}
