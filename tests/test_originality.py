"""The originality check (acestep_core.originality) on real music and real transformations.

The music is the sketch backend's (chords in a key, bass, drums and a lead melody), made
with the real CLI. Copies of one cue are made with ffmpeg: rubberband pitch shifts of
+-3 semitones and time stretches of +-10 %, gain, Ogg Vorbis and MP3 encodes, and a 12 s
excerpt inside a longer file; each must be flagged against a reference library holding
the cue. Other cues of the same prompt and style (other seeds) must not be.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from acestep_core.originality import THRESHOLD, ReferenceIndex, check_candidates, check_files

pytest.importorskip("librosa", reason="the originality check needs librosa (the originality extra)")
FFMPEG = shutil.which("ffmpeg")
pytestmark = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg makes the copies (apt-get install ffmpeg)")

REPO_ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "acestep_core.cli"]
BOSS = "tense boss battle, synthwave, fast drums"
FOREST = "calm forest exploration, acoustic guitar, flute"
HERO = "heroic orchestral fanfare, brass, strings"
CHASE = "dark synthwave chase, arpeggios"
EXCERPT = (8.0, 20.0)  # seconds of the boss cue copied into the excerpt file
# (name, ffmpeg audio filter or None, output extension, codec options)
COPIES = {
    "up 3 semitones": ("rubberband=pitch=1.189207", "wav", []),
    "down 3 semitones": ("rubberband=pitch=0.840896", "wav", []),
    "10 % slower": ("rubberband=tempo=0.9", "wav", []),
    "10 % faster": ("rubberband=tempo=1.1", "wav", []),
    "9 dB quieter": ("volume=-9dB", "wav", []),
    "Ogg Vorbis q2": (None, "ogg", ["-c:a", "libvorbis", "-q:a", "2"]),
    "MP3 96 kb/s": (None, "mp3", ["-c:a", "libmp3lame", "-b:a", "96k"]),
    "+2 semitones, 8 % slower, quieter, MP3": ("rubberband=pitch=1.122462:tempo=0.92,volume=-5dB", "mp3",
                                               ["-c:a", "libmp3lame", "-b:a", "128k"]),
}


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ, ACESTEP_DCC_HOME=str(home))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.pop("ACESTEP_DCC_REFERENCE_LIBRARY", None)
    return env


def _generate(folder: Path, home: Path, prompt: str, seed: int, name: str, candidates: int = 1) -> list[Path]:
    output = folder / f"{name}.wav"
    subprocess.run([*CLI, "generate", prompt, "--seconds", "30", "--seed", str(seed), "--backend", "sketch",
                    "--candidates", str(candidates), "-o", str(output)],
                   check=True, capture_output=True, env=_env(home), cwd=REPO_ROOT)
    return [output] if candidates == 1 else [folder / f"{name}-{k}.wav" for k in range(1, candidates + 1)]


def _ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="session")
def music(tmp_path_factory) -> dict:
    """References (boss, forest, hero), copies of the boss cue, and other music."""
    root = tmp_path_factory.mktemp("originality")
    home = root / "home"
    refs, made = root / "references", root / "made"
    refs.mkdir(), made.mkdir()
    boss = _generate(refs, home, BOSS, 1, "boss")[0]
    _generate(refs, home, FOREST, 11, "forest")
    _generate(refs, home, HERO, 21, "hero")
    copies = {}
    for k, (name, (filters, extension, codec)) in enumerate(COPIES.items()):
        path = made / f"copy{k}.{extension}"
        _ffmpeg("-i", str(boss), *(["-af", filters] if filters else []), *codec, str(path))
        copies[name] = path
    # Same prompts, other seeds: other chords and melodies in the same key, tempo and style.
    same_style = {f"{BOSS} (seed {seed})": path for seed, path in zip((2, 3, 4), _generate(made, home, BOSS, 2, "boss",
                                                                                             candidates=3))}
    same_style[f"{CHASE} (seed 5)"] = _generate(made, home, CHASE, 5, "chase")[0]
    before = _generate(made, home, FOREST, 12, "forest12")[0]
    after = _generate(made, home, HERO, 22, "hero22")[0]
    same_style[f"{FOREST} (seed 12)"], same_style[f"{HERO} (seed 22)"] = before, after
    excerpt = made / "excerpt.wav"
    _ffmpeg("-i", str(before), "-i", str(boss), "-i", str(after), "-filter_complex",
            f"[1:a]atrim={EXCERPT[0]}:{EXCERPT[1]},asetpts=N/SR/TB[x];[0:a][x][2:a]concat=n=3:v=0:a=1", str(excerpt))
    copies["12 s excerpt inside 72 s"] = excerpt
    index = ReferenceIndex(root / "index.sqlite")
    index.update(refs)
    return {"root": root, "home": home, "refs": refs, "boss": boss, "copies": copies, "same_style": same_style,
            "index": index, "before_s": 30.0}


@pytest.mark.parametrize("copy", list(COPIES) + ["12 s excerpt inside 72 s"])
def test_a_copy_of_a_reference_is_flagged(music, copy):
    (result,) = check_files([music["copies"][copy]], music["refs"], index=music["index"])
    top = result.matches[0]
    assert result.flagged and top.flagged, f"{copy}: {[(m.reference, m.score) for m in result.matches]}"
    assert Path(top.reference) == music["boss"].resolve()
    assert THRESHOLD <= top.score <= 1.0
    [near] = top.ranges
    assert near["file"][1] - near["file"][0] >= 8.0 and near["reference"][1] - near["reference"][0] >= 8.0
    print(f"{copy}: score {top.score}, {top.transposed_semitones:+d} semitones, tempo x{top.tempo_ratio}, {near}")


def test_the_match_says_how_the_copy_was_moved(music):
    """The transposition and tempo found are the ones ffmpeg applied."""
    moved = {name: check_files([music["copies"][name]], music["refs"], index=music["index"])[0].matches[0]
             for name in ("up 3 semitones", "down 3 semitones", "10 % slower", "10 % faster", "9 dB quieter")}
    assert moved["up 3 semitones"].transposed_semitones == 3
    assert moved["down 3 semitones"].transposed_semitones == -3
    assert moved["10 % slower"].tempo_ratio == pytest.approx(0.9, abs=0.026)
    assert moved["10 % faster"].tempo_ratio == pytest.approx(1.1, abs=0.026)
    quiet = moved["9 dB quieter"]
    assert (quiet.transposed_semitones, quiet.tempo_ratio, quiet.score) == (0, 1.0, pytest.approx(1.0, abs=0.005))


def test_an_excerpt_is_found_where_it_is_in_both_files(music):
    (result,) = check_files([music["copies"]["12 s excerpt inside 72 s"]], music["refs"], index=music["index"])
    [near] = result.matches[0].ranges
    start = music["before_s"]
    # The range is where the match holds, inside the excerpt: at most a second past either
    # end, at most 1.25 s short of either (the 1 s around a joint is half other music, and
    # the range's ends are trimmed where that second is under the threshold), and the same
    # stretch in both files.
    for found, (low, high) in ((near["file"], (start, start + EXCERPT[1] - EXCERPT[0])), (near["reference"], EXCERPT)):
        assert low - 1.0 <= found[0] <= low + 1.25 and high - 1.25 <= found[1] <= high + 1.0, (found, low, high)
    assert near["file"][0] - start == pytest.approx(near["reference"][0] - EXCERPT[0], abs=0.5)


@pytest.mark.parametrize("other", [f"{BOSS} (seed {seed})" for seed in (2, 3, 4)]
                         + [f"{CHASE} (seed 5)", f"{FOREST} (seed 12)", f"{HERO} (seed 22)"])
def test_other_music_of_the_same_style_is_not_flagged(music, other):
    (result,) = check_files([music["same_style"][other]], music["refs"], index=music["index"])
    print(f"{other}: {[(Path(m.reference).name, m.score) for m in result.matches]}")
    assert not result.flagged
    assert result.matches and all(m.score < THRESHOLD for m in result.matches), "scored, and under the threshold"


def test_candidates_are_checked_against_each_other(music):
    same = music["root"] / "candidate-copy.wav"
    shutil.copy(music["boss"], same)
    results = check_candidates([music["boss"], same, music["same_style"][f"{BOSS} (seed 2)"]])
    assert [r.flagged for r in results] == [True, True, False]
    assert Path(results[0].matches[0].reference) == same and results[0].matches[0].score == pytest.approx(1.0, abs=0.01)


def test_the_index_is_built_once_and_updated_by_path_size_and_mtime(music, tmp_path):
    refs = tmp_path / "refs"
    refs.mkdir()
    first, second = (shutil.copy(music["refs"] / name, refs / name) for name in ("boss.wav", "forest.wav"))
    index = ReferenceIndex(tmp_path / "index.sqlite")
    report = index.update(refs, workers=2)  # analysed in two processes
    assert sorted(report.computed) == sorted(map(str, (first, second))) and report.unchanged == 0
    again = index.update(refs)
    assert (again.computed, again.unchanged, again.removed) == ([], 2, [])
    os.utime(first, ns=(os.stat(first).st_atime_ns, os.stat(first).st_mtime_ns + 10**9))
    touched = index.update(refs)
    assert (touched.computed, touched.unchanged) == ([str(first)], 1)
    Path(second).unlink()
    (refs / "sub").mkdir()
    third = shutil.copy(music["refs"] / "hero.wav", refs / "sub" / "hero.wav")
    (refs / "notes.wav").write_text("not audio")
    changed = index.update(refs)
    assert changed.removed == [str(second)] and changed.computed == [str(third)]
    assert [path for path, _ in changed.unreadable] == [str(refs / "notes.wav")]
    assert "is not audio that acestep-dcc can read" in changed.unreadable[0][1]
    assert index.references(refs).paths == sorted([str(first), str(third)])
    assert index.references(tmp_path / "elsewhere").paths == []  # rows of other folders stay apart


def _check(music, *args: str, home: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "check", *args, "--index", str(music["root"] / "index.sqlite")],
                          capture_output=True, text=True, env=_env(home or music["home"]), cwd=REPO_ROOT)


def test_cli_check_prints_json_and_exits_1_when_something_is_flagged(music):
    copy, other = music["copies"]["up 3 semitones"], music["same_style"][f"{BOSS} (seed 2)"]
    done = _check(music, str(copy), str(other), "--against", str(music["refs"]), "--json")
    assert done.returncode == 1, done.stderr
    first, second = json.loads(done.stdout)
    assert first["file"] == str(copy) and first["flagged"] and not second["flagged"]
    top = first["matches"][0]
    assert set(top) >= {"reference", "score", "flagged", "ranges"}
    assert top["reference"] == str(music["boss"].resolve()) and top["flagged"] is True
    assert set(top["ranges"][0]) == {"file", "reference"}
    assert len(second["matches"]) == 3, "every reference of the library is listed (--top 5)"


def test_cli_check_exits_0_when_nothing_is_flagged_and_says_so(music):
    other = music["same_style"][f"{BOSS} (seed 3)"]
    done = _check(music, str(other), "--against", str(music["refs"]), "--top", "1")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"{other}: original (no reference scores {THRESHOLD} or more)" and len(lines) == 2


@pytest.mark.parametrize("problem", ["missing", "not audio", "no library", "library not a folder"])
def test_cli_check_usage_errors_exit_2_with_one_sentence(music, problem, tmp_path):
    text = tmp_path / "cue.wav"
    text.write_text("this is not audio")
    args = {"missing": [str(tmp_path / "nothere.wav"), "--against", str(music["refs"])],
            "not audio": [str(text), "--against", str(music["refs"])],
            "no library": [str(music["boss"])],
            "library not a folder": [str(music["boss"]), "--against", str(text)]}[problem]
    done = _check(music, *args, home=tmp_path / "home")
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    expected = {"missing": f"{tmp_path / 'nothere.wav'} does not exist; give the path of an audio file",
                "not audio": f"{text} is not audio that acestep-dcc can read",
                "no library": "no reference library to check against; give one with --against DIR",
                "library not a folder": f"the reference library {text} is not a folder"}[problem]
    assert line.startswith(f"acestep-dcc: {expected}")


def test_cli_check_without_librosa_says_how_to_install_it(music):
    blocked = ("import sys; sys.modules['librosa'] = None; from acestep_core.cli import main; "
               f"sys.exit(main(['check', {str(music['boss'])!r}, '--against', {str(music['refs'])!r}, "
               f"'--index', {str(music['root'] / 'other.sqlite')!r}]))")
    done = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, env=_env(music["home"]),
                          cwd=REPO_ROOT)
    assert done.returncode == 2
    assert done.stderr.strip() == ("acestep-dcc: the originality check needs librosa, which is not installed; "
                                   "install it with pip install 'acestep-dcc[originality]'")


def test_generate_against_a_library_records_the_check_and_warns(music, tmp_path):
    """The boss prompt at seed 1 is the reference's own music: flagged; seed 7 is not."""
    home = tmp_path / "home"
    env = dict(_env(home), ACESTEP_DCC_REFERENCE_LIBRARY=str(music["refs"]))  # the setting, not the option
    done = subprocess.run([*CLI, "generate", BOSS, "--seconds", "30", "--seed", "1", "--candidates", "2",
                           "-o", str(tmp_path / "cue.wav")], capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    first, second = (json.loads((tmp_path / f"cue-{k}.wav.json").read_text()) for k in (1, 2))
    record = first["originality"]
    assert record["checked_against"] == [str(music["refs"].resolve()), "other candidates", "cue library"]
    assert record["flagged"] is True and record["threshold"] == THRESHOLD and "chroma" in record["method"]
    assert record["matches"][0]["reference"] == str(music["boss"].resolve())
    assert record["matches"][0]["score"] == pytest.approx(1.0, abs=0.01)
    assert any(w.startswith("originality check: this cue is close to boss.wav") for w in first["warnings"])
    assert "warning: cue-1.wav: originality check: this cue is close to boss.wav" in done.stderr
    assert (f"originality: checked against {music['refs'].resolve()}, the other candidates and the cue library: "
            "FLAGGED cue-1.wav") in done.stderr
    assert second["originality"]["flagged"] is False and not any("originality" in w for w in second["warnings"])
    assert {m["reference"] for m in second["originality"]["matches"]} >= {str(tmp_path / "cue-1.wav")}

    done = subprocess.run([*CLI, "generate", BOSS, "--seconds", "30", "--seed", "7", "-o", str(tmp_path / "new.wav"),
                           "--against", str(music["refs"]), "--json"], capture_output=True, text=True, env=_env(home),
                          cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "new.wav.json").read_text())["originality"]
    assert json.loads(done.stdout)[0]["originality"] == record, "--json gives the sidecar's record"
    assert record["flagged"] is False and "nothing flagged" in done.stderr
    compared = {m["reference"] for m in record["matches"]}
    assert {str(tmp_path / "cue-1.wav"), str(tmp_path / "cue-2.wav")} <= compared, "the cue library's cues too"


def test_check_library_compares_with_the_cues_made_so_far(music, tmp_path):
    """A cue the CLI made is in the cue library: a copy of it is flagged against it with
    --library (no reference folder needed), and the cue itself is not compared with itself."""
    home = tmp_path / "home"
    (made,) = _generate(tmp_path, home, BOSS, 1, "made")
    copy = tmp_path / "copy.ogg"
    _ffmpeg("-i", str(made), "-af", "rubberband=pitch=0.840896", "-c:a", "libvorbis", str(copy))
    done = _check(music, str(copy), str(made), "--library", "--json", home=home)
    assert done.returncode == 1, done.stderr
    of_copy, of_made = json.loads(done.stdout)
    assert of_copy["flagged"] and of_copy["matches"][0]["reference"] == str(made.resolve())
    assert of_copy["matches"][0]["transposed_semitones"] == -3
    assert of_made["matches"] == [] and not of_made["flagged"]


def test_generate_refuses_a_missing_library_before_generating(tmp_path):
    done = subprocess.run([*CLI, "generate", BOSS, "--seconds", "4", "-o", str(tmp_path / "cue.wav"), "--against",
                           str(tmp_path / "nothere")], capture_output=True, text=True, env=_env(tmp_path / "home"),
                          cwd=REPO_ROOT)
    assert done.returncode == 2 and not (tmp_path / "cue.wav").exists()
    assert done.stderr.splitlines()[-1].startswith(f"acestep-dcc: the reference library {tmp_path / 'nothere'} is "
                                                   "not a folder")


def test_generate_reads_the_library_from_config_json(music, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.json").write_text(json.dumps({"reference_library": str(music["refs"])}))
    done = subprocess.run([*CLI, "generate", BOSS, "--seconds", "30", "--seed", "1", "-o", str(tmp_path / "cue.wav")],
                          capture_output=True, text=True, env=_env(home), cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "cue.wav.json").read_text())["originality"]
    assert record["flagged"] and record["checked_against"][0] == str(music["refs"].resolve())


def test_a_worker_refuses_a_missing_library_at_start(tmp_path):
    done = subprocess.run([sys.executable, "-m", "acestep_core.worker", "--backend", "sketch", "--against",
                           str(tmp_path / "nothere")], capture_output=True, text=True, env=_env(tmp_path / "home"),
                          cwd=REPO_ROOT, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().startswith(f"acestep-dcc worker: the reference library {tmp_path / 'nothere'} is not "
                                          "a folder")


@pytest.mark.parametrize("kind", ["silence", "a fifth of a second"])
def test_silence_and_tiny_files_are_checked_without_error_and_pass(music, tmp_path, kind):
    import numpy as np
    import soundfile as sf

    path = tmp_path / f"{kind}.wav"
    if kind == "silence":
        sf.write(str(path), np.zeros((44100 * 10, 2), np.float32), 44100)
    else:
        sf.write(str(path), 0.3 * np.sin(np.linspace(0, 2 * np.pi * 88, 8820)).astype(np.float32), 44100)
    (result,) = check_files([path], music["refs"], index=music["index"])
    assert not result.flagged and all(m.score == 0.0 for m in result.matches)


PAIR_PROMPTS = (BOSS, FOREST, HERO, CHASE, "sad piano ballad", "retro chiptune level, upbeat",
                "smoky jazz club, saxophone", "epic battle, rock, electric guitar")


def test_no_two_sketch_cues_of_different_seeds_are_flagged(tmp_path):
    """Eight prompts, three seeds each (24 cues, 276 pairs, every seed different): cues of
    one prompt share its key, tempo, instruments and often a progression for a section;
    none is the other's melody and harmony, so no pair may be flagged."""
    import itertools

    from acestep_core.originality.features import features_of_file
    from acestep_core.originality.matching import align

    cues = [path for k, prompt in enumerate(PAIR_PROMPTS, start=1)
            for path in _generate(tmp_path, tmp_path / "home", prompt, 10 * k, f"p{k}", candidates=3)]
    chroma = {path: features_of_file(path).chroma for path in cues}
    scores = sorted(((align(chroma[a], chroma[b], THRESHOLD).score, a.name, b.name)
                     for a, b in itertools.combinations(cues, 2)), reverse=True)
    print("highest pairs:", scores[:3])
    assert scores[0][0] < THRESHOLD, f"flagged pairs: {[s for s in scores if s[0] >= THRESHOLD]}"


def test_a_set_checks_its_base_cue_variants_and_stingers(music, tmp_path):
    """`set --against DIR` checks every cue it generates: a set made again with the first
    set's folder as the reference library is flagged against it, cue for cue."""
    home = tmp_path / "home"

    def make_set(folder: Path, against: Path) -> subprocess.CompletedProcess:
        return subprocess.run([*CLI, "set", BOSS, "--variants", "2", "--stingers", "1", "--bars", "4", "--seed", "3",
                               "--backend", "sketch", "--against", str(against), "-o", str(folder)],
                              capture_output=True, text=True, env=_env(home), cwd=REPO_ROOT)

    first = make_set(tmp_path / "first", music["refs"])
    assert first.returncode == 0, first.stderr
    sidecars = sorted((tmp_path / "first").glob("*.wav.json"))
    assert len(sidecars) == 4  # the base, two variants, one stinger
    for sidecar in sidecars:
        record = json.loads(sidecar.read_text())["originality"]
        assert record["checked_against"][0] == str(music["refs"].resolve()) and record["flagged"] is False
    again = make_set(tmp_path / "again", tmp_path / "first")
    assert again.returncode == 0, again.stderr
    for sidecar in sorted((tmp_path / "again").glob("*.wav.json")):
        record = json.loads(sidecar.read_text())["originality"]
        assert record["flagged"] is True, sidecar.name
        # Its twin in the first set is among the matches, as close as a copy (the top
        # variant can tie with the base: it plays the base's whole arrangement).
        twin = [m for m in record["matches"] if Path(m["reference"]).name == sidecar.name.removesuffix(".json")]
        assert twin and twin[0]["score"] >= 0.99, (sidecar.name, record["matches"])
    assert "originality check: this cue is close to" in again.stderr
