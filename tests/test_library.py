"""The cue library: every cue the CLI makes is indexed (SQLite, FTS5) and found again by
each field; `library add DIR` indexes existing cues from their sidecars; moved and
deleted files are marked missing, never a crash; a library that cannot be written never
fails a generation. Real sketch cues made by the real CLI, in a library of each test's own."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from acestep_core.cli import main
from acestep_core.errors import InvalidRequest
from acestep_core.library import CueLibrary, LibraryQuery, default_library_path, parse_range
from acestep_core.licence import project_licence


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    """A user data folder (and so a library) of this test's own."""
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def generate(out: Path, prompt: str, *args: str) -> None:
    assert main(["generate", prompt, "--backend", "sketch", "-o", str(out), *args]) == 0


def make_cues(folder: Path) -> Path:
    """Three cues made by the CLI: a boss loop at 150 BPM in E minor, a calm ambient cue
    at 80 BPM in D major, and a chase at 170 BPM in E minor (not a loop)."""
    generate(folder / "boss.wav", "tense boss battle, synthwave, drums", "--bpm", "150", "--key", "E minor",
             "--loop", "4", "--seed", "11")
    generate(folder / "calm.wav", "calm exploration, ambient, piano", "--bpm", "80", "--key", "D major",
             "--seconds", "4", "--seed", "12")
    generate(folder / "chase.wav", "chase, rock, electric guitar", "--bpm", "170", "--key", "E minor",
             "--seconds", "3", "--seed", "13")
    return folder


@pytest.fixture
def cues(home: Path, tmp_path: Path) -> Path:
    return make_cues(tmp_path / "cues")


@pytest.fixture(scope="module")
def shared_library(tmp_path_factory) -> CueLibrary:
    """make_cues' cues in a library of this module's own, for the tests that only search."""
    home = tmp_path_factory.mktemp("library-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ACESTEP_DCC_HOME", str(home))
        make_cues(tmp_path_factory.mktemp("cues"))
        return CueLibrary(default_library_path())


def names(found) -> list[str]:
    return sorted(cue.name for cue in found)


def test_every_cue_the_cli_makes_is_indexed_with_what_its_sidecar_says(cues: Path):
    library = CueLibrary()
    assert library.path == default_library_path() and library.path.is_file()
    [boss] = library.search(LibraryQuery(text="boss"))
    sidecar = json.loads((cues / "boss.wav.json").read_text())
    assert boss.path == str((cues / "boss.wav").resolve()) and boss.sidecar_path == str((cues / "boss.wav.json").resolve())
    assert boss.prompt == "tense boss battle, synthwave, drums"
    assert (boss.moods, boss.scenes, boss.styles, boss.instruments) == (["tense"], ["boss battle"], ["synthwave"], ["drums"])
    assert (boss.bpm, boss.key, boss.loop, boss.loop_bars, boss.seed) == (150.0, "E minor", True, 4, 11)
    assert boss.duration == pytest.approx(sidecar["duration_written"])
    assert (boss.backend, boss.licence) == ("sketch", project_licence().summary)
    assert boss.originality_flagged is None and not boss.missing  # unchecked: null, not False


@pytest.mark.parametrize("query, expected", [
    (LibraryQuery(text="boss"), ["boss.wav"]),
    (LibraryQuery(text="BATTLE synth"), ["boss.wav"]),  # any case, words as prefixes, all of them
    (LibraryQuery(text="e minor"), ["boss.wav", "chase.wav"]),  # the key is a tag too
    (LibraryQuery(text="calm.wav"), ["calm.wav"]),  # and the file name
    (LibraryQuery(text='boss" (* -^'), ["boss.wav"]),  # FTS5 syntax typed by a user is only words
    (LibraryQuery(mood="tense"), ["boss.wav"]),
    (LibraryQuery(scene="exploration"), ["calm.wav"]),
    (LibraryQuery(scene="Boss Fight"), ["boss.wav"]),  # an alias finds its library word
    (LibraryQuery(style="rock"), ["chase.wav"]),
    (LibraryQuery(instrument="piano"), ["calm.wav"]),
    (LibraryQuery(bpm_min=140, bpm_max=160), ["boss.wav"]),
    (LibraryQuery(bpm_min=140), ["boss.wav", "chase.wav"]),
    (LibraryQuery(bpm_max=100), ["calm.wav"]),
    (LibraryQuery(key="Em"), ["boss.wav", "chase.wav"]),  # spelled any way the request takes
    (LibraryQuery(key="D major"), ["calm.wav"]),
    (LibraryQuery(loop=True), ["boss.wav"]),
    (LibraryQuery(loop=False), ["calm.wav", "chase.wav"]),
    (LibraryQuery(duration_min=3.5, duration_max=4.5), ["calm.wav"]),
    (LibraryQuery(backend="sketch"), ["boss.wav", "calm.wav", "chase.wav"]),
    (LibraryQuery(backend="acestep"), []),
    (LibraryQuery(model="procedural"), ["boss.wav", "calm.wav", "chase.wav"]),
    (LibraryQuery(licence="apache"), ["boss.wav", "calm.wav", "chase.wav"]),
    (LibraryQuery(licence="mit license"), []),
    (LibraryQuery(seed=13), ["chase.wav"]),
    (LibraryQuery(text="boss", bpm_min=140, bpm_max=160, key="E minor", loop=True), ["boss.wav"]),
    (LibraryQuery(text="boss", loop=False), []),
])
def test_search_by_each_field(shared_library: CueLibrary, query: LibraryQuery, expected: list[str]):
    assert names(shared_library.search(query)) == expected


def test_the_originality_result_is_indexed_when_the_sidecar_has_one(cues: Path, tmp_path: Path):
    """The originality check (another package) writes `originality` into the sidecar;
    the library indexes `flagged`, and a cue never checked is neither flagged nor passed."""
    checked = tmp_path / "checked"
    checked.mkdir()
    for name, flagged in (("boss", True), ("calm", False)):
        shutil.copy(cues / f"{name}.wav", checked / f"{name}.wav")
        sidecar = json.loads((cues / f"{name}.wav.json").read_text())
        sidecar["originality"] = {"flagged": flagged, "matches": [{"reference": "theme.flac", "score": 0.9 if flagged
                                                                  else 0.1, "flagged": flagged, "ranges": []}]}
        (checked / f"{name}.wav.json").write_text(json.dumps(sidecar))
    library = CueLibrary()
    library.add_folder(checked)
    assert [c.path for c in library.search(LibraryQuery(flagged=True))] == [str((checked / "boss.wav").resolve())]
    assert [c.path for c in library.search(LibraryQuery(flagged=False))] == [str((checked / "calm.wav").resolve())]
    assert "FLAGGED" in library.search(LibraryQuery(flagged=True))[0].summary()


def test_a_deleted_file_is_marked_missing_never_a_crash(cues: Path):
    library = CueLibrary()
    (cues / "chase.wav").unlink()
    found = library.search(LibraryQuery(key="E minor"))
    assert [(c.name, c.missing) for c in found] == [("boss.wav", False), ("chase.wav", True)]  # present first
    assert "(missing)" in found[1].summary()
    assert names(library.search(LibraryQuery(key="E minor", include_missing=False))) == ["boss.wav"]
    assert library.get(found[1].id).missing
    assert [p.name for p in library.present_files()] == ["boss.wav", "calm.wav"]
    # back in place: present again
    generate(cues / "chase.wav", "chase, rock, electric guitar", "--seconds", "3", "--seed", "13", "--overwrite")
    assert not [c for c in library.search(LibraryQuery(key="E minor")) if c.missing]


def test_library_add_indexes_existing_cues_and_finds_moved_ones(cues: Path, tmp_path: Path, capsys):
    """A folder of cues made elsewhere (another library), a sidecar of something else, a
    sidecar whose audio is gone; then a cue moved to another folder keeps its entry."""
    elsewhere = tmp_path / "elsewhere-home"
    other = tmp_path / "other"
    other.mkdir()
    for name in ("boss.wav", "boss.wav.json", "calm.wav", "calm.wav.json"):
        shutil.copy(cues / name, other / name)
    (other / "notes.wav.json").write_text(json.dumps({"title": "not ours"}))
    (other / "gone.wav.json").write_text((cues / "chase.wav.json").read_text())
    (other / "sub").mkdir()
    shutil.copy(cues / "chase.wav", other / "sub" / "chase.wav")
    shutil.copy(cues / "chase.wav.json", other / "sub" / "chase.wav.json")

    library = CueLibrary(elsewhere / "library.sqlite3")
    report = library.add_folder(other)
    assert sorted(Path(p).name for p in report.indexed) == ["boss.wav", "calm.wav", "chase.wav"]  # and below
    assert sorted((Path(p).name, why.split(" ")[0]) for p, why in report.skipped) == [("gone.wav.json", "its"),
                                                                                    ("notes.wav.json", "not")]
    [chase] = library.search(LibraryQuery(text="chase"))
    # moved: the old place is gone, the new one is indexed into the same entry
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in ("chase.wav", "chase.wav.json"):
        shutil.move(other / "sub" / name, moved / name)
    assert library.add_folder(other).missing == [chase.path]
    library.add_folder(moved)
    [again] = library.search(LibraryQuery(text="chase"))
    assert (again.id, again.path, again.missing) == (chase.id, str((moved / "chase.wav").resolve()), False)
    # adding a folder twice indexes each cue once
    library.add_folder(other)
    assert len(library.search(LibraryQuery())) == 3

    # the CLI's own verb, into the user's library
    assert main(["library", "add", str(moved), "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["indexed"] == [str((moved / "chase.wav").resolve())]
    assert "indexed 1 cue from" in out.err


def test_library_add_reads_a_sidecar_again_only_when_it_changed(cues: Path):
    """The originality check (or a user) rewrites a sidecar: the next add sees it; an
    unchanged one is not read again (its entry keeps its time of indexing)."""
    library = CueLibrary()
    library.add_folder(cues)
    before = {c.name: c.indexed_at for c in library.search(LibraryQuery())}
    sidecar = json.loads((cues / "calm.wav.json").read_text())
    sidecar["originality"] = {"flagged": True, "matches": []}
    (cues / "calm.wav.json").write_text(json.dumps(sidecar))
    library.add_folder(cues)
    after = {c.name: c.indexed_at for c in library.search(LibraryQuery())}
    assert after["boss.wav"] == before["boss.wav"] and after["chase.wav"] == before["chase.wav"]
    assert after["calm.wav"] > before["calm.wav"]
    assert names(library.search(LibraryQuery(flagged=True))) == ["calm.wav"]


def test_cli_library_search_prints_cues_and_json(cues: Path, capsys):
    capsys.readouterr()
    assert main(["library", "search", "boss", "--bpm", "140-160", "--key", "E minor", "--loop", "--json"]) == 0
    out = capsys.readouterr()
    [cue] = json.loads(out.out)
    assert (cue["path"], cue["bpm"], cue["key"], cue["loop"]) == (str((cues / "boss.wav").resolve()), 150.0, "E minor", True)
    assert "1 cue found" in out.err
    assert main(["library", "search", "--style", "rock", "--no-loop"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("chase.wav: 170 BPM, E minor, 3.0 s; Apache-2.0") and str(cues / "chase.wav") in text
    assert main(["library", "search", "nothing-like-this"]) == 0
    assert "0 cues found" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--bpm", "fast"], "--bpm must be a number or a range such as 140-160, got 'fast'"),
    (["--bpm", "160-140"], "--bpm '160-140' runs backwards; put the lower number first, such as 140-160"),
    (["--key", "H minor"], "key must be a note and a mode such as 'E minor' or 'Bb major', got 'H minor'"),
    (["--limit", "0"], "limit must be from 1 to 500, got 0"),
    (["--mood", "tenze"], "'tenze' is not a mood word of the keyword library; did you mean 'tense' or 'intense'?"),
    (["--style", "boss battle"], "'boss battle' is not a style word of the keyword library; the style words are: "
                                 "rock, "),
])
def test_bad_search_values_are_one_sentence_each(home: Path, capsys, args, message):
    assert main(["library", "search", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"acestep-dcc: {message}" if not message.endswith(", ") else err.startswith(f"acestep-dcc: {message}")


def test_library_add_refuses_a_folder_that_is_not_there(home: Path, tmp_path: Path, capsys):
    assert main(["library", "add", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.strip() == (f"acestep-dcc: {tmp_path / 'nowhere'} is not a folder; give the folder "
                                               "that holds the cues and their .wav.json sidecars")


def test_ranges():
    assert parse_range("140-160", "bpm", "bpm") == (140.0, 160.0)
    assert parse_range(" 140 ", "bpm", "bpm") == (140.0, 140.0)
    assert parse_range("140-", "bpm", "bpm") == (140.0, None)
    assert parse_range("-90.5", "bpm", "bpm") == (None, 90.5)
    assert parse_range("", "bpm", "bpm") == (None, None)
    with pytest.raises(InvalidRequest):
        parse_range("-", "bpm", "bpm")


def test_stems_and_sets_are_indexed_too(home: Path, tmp_path: Path):
    generate(tmp_path / "mix.wav", "boss battle, rock", "--seconds", "3", "--stems", "--seed", "5")
    found = CueLibrary().search(LibraryQuery(text="boss"))
    tracks = sorted(cue.track or "mix" for cue in found)
    assert "mix" in tracks and "drums" in tracks and len(tracks) == len(json.loads(
        (tmp_path / "mix.wav.json").read_text())["stems"]) + 1
    assert main(["set", "stealth, electronic", "--intensities", "2", "--bars", "2", "--stingers", "1", "--backend",
                 "sketch", "-o", str(tmp_path / "set")]) == 0
    manifest = json.loads((tmp_path / "set" / "stealth-electronic-set.json").read_text())
    in_set = CueLibrary().search(LibraryQuery(text="stealth"))
    assert sorted(c.name for c in in_set) == sorted(Path(p).name for p in _set_files(manifest))


def _set_files(manifest: dict) -> list[str]:
    files = [manifest["base"]["file"]] + [layer["file"] for layer in manifest.get("layers") or []]
    return files + [stinger["file"] for stinger in manifest.get("stingers") or []]


def test_a_library_that_cannot_be_written_never_fails_a_generation(home: Path, tmp_path: Path, capsys):
    (home / "library.sqlite3").mkdir(parents=True)  # a folder where the database would be
    out = tmp_path / "cue.wav"
    generate(out, "victory fanfare, orchestral", "--seconds", "2")
    assert out.is_file() and (tmp_path / "cue.wav.json").is_file()
    err = capsys.readouterr().err
    assert (f"acestep-dcc: warning: cue.wav could not be added to the cue library (the cue library "
            f"{home / 'library.sqlite3'} cannot be used (unable to open database file); free some disk space or fix "
            "its folder's permissions, or move the file away to start a new library); add them later with "
            "'acestep-dcc library add FOLDER'") in err
    # and the library's own commands say the same in one sentence, exit 2, no traceback
    assert main(["library", "search", "boss"]) == 2
    assert capsys.readouterr().err.strip() == (f"acestep-dcc: the cue library {home / 'library.sqlite3'} cannot be "
                                               "used (unable to open database file); free some disk space or fix "
                                               "its folder's permissions, or move the file away to start a new "
                                               "library")
