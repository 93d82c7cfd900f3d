"""The CLI's issue-13 flags (--track, --tracks, --range, --reference, --stems) become the
request's fields, and their mistakes are one sentence before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from acestep_core.cli import build_parser, main, request_from_args
from acestep_core.request import TASKS


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "take.wav"
    sf.write(path, np.zeros((2 * 48000, 2), dtype=np.float32), 48000)
    return path


def request_for(*args: str):
    request, _ = request_from_args(build_parser().parse_args(["generate", "music", *args]))
    return request


@pytest.mark.skipif(not {"lego", "complete"} <= set(TASKS), reason="lego and complete are not in request.TASKS yet")
def test_lego_and_complete_flags_become_the_request_fields(source: Path):
    lego = request_for("--task", "lego", "--track", "guitar", "--source", str(source), "--range", "0.5", "1.5")
    assert (lego.task, lego.track, lego.repaint_start, lego.repaint_end) == ("lego", "guitar", 0.5, 1.5)
    assert lego.source_audio == str(source.resolve())
    complete = request_for("--task", "complete", "--tracks", "drums, bass", "--source", str(source))
    assert complete.tracks == ["drums", "bass"]


def test_flags_become_the_request_fields(source: Path):
    repaint = request_for("--task", "repaint", "--source", str(source), "--range", "0.25", "1")
    assert (repaint.repaint_start, repaint.repaint_end) == (0.25, 1.0)
    extract = request_for("--task", "extract", "--track", "drums", "--source", str(source))
    assert (extract.task, extract.track, extract.source_audio) == ("extract", "drums", str(source.resolve()))
    reference = request_for("--reference", str(source), "--stems", "--tracks", "drums")
    assert (reference.reference_audio, reference.stems, reference.tracks) == (str(source.resolve()), True, ["drums"])
    assert request_for().stems is False and request_for().tracks is None


def test_range_and_repaint_flags_together_are_refused(source: Path, tmp_path: Path, capsys):
    code = main(["generate", "music", "--task", "repaint", "--source", str(source), "--range", "0", "1",
                 "--repaint-start", "0", "-o", str(tmp_path / "out.wav")])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "acestep-dcc: --range and --repaint-start/--repaint-end say the same thing; pass only --range START END")
    assert not (tmp_path / "out.wav").exists()


def test_a_missing_reference_is_named(tmp_path: Path, capsys):
    assert main(["generate", "music", "--reference", str(tmp_path / "nope.wav"), "-o", str(tmp_path / "x.wav")]) == 2
    assert capsys.readouterr().err.strip() == f"acestep-dcc: the reference audio file {tmp_path / 'nope.wav'} does not exist"
    assert list(tmp_path.iterdir()) == []


def test_the_sketch_refuses_a_reference_clip_before_any_work(source: Path, tmp_path: Path, capsys):
    out = tmp_path / "cue.wav"
    assert main(["generate", "calm", "--seconds", "2", "--backend", "sketch", "--reference", str(source),
                 "-o", str(out)]) == 2
    assert "the sketch backend cannot follow a reference clip" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob("cue*"))
