"""The licence every cue carries: read from the model folder's card, LICENSE file and
download record (never invented), written into the sidecar and the WAV INFO chunk, and
printed once by the CLI. Real generation on a copy of the tiny checkpoint and on the
sketch, read back with wavinfo (a reader nobody here wrote)."""

from __future__ import annotations

import json
import shutil
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import wavinfo

from acestep_core.cli import main
from acestep_core.library import CueLibrary, LibraryQuery
from acestep_core.licence import backend_licence, model_licence, project_licence
from acestep_core.model_folder import DOWNLOAD_RECORD

ROOT = Path(__file__).resolve().parents[1]

CARD = """---
license: apache-2.0
license_name: Apache License 2.0
license_link: https://www.apache.org/licenses/LICENSE-2.0
library_name: diffusers
pipeline_tag: text-to-audio
---
# A test checkpoint

Random weights. It produces noise.

## Licence

Music generated with this checkpoint may be used in **commercial** projects under the Apache 2.0 terms. Credit is
welcome but not required.
"""


@pytest.fixture
def carded_checkpoint(tiny_checkpoint: Path, tmp_path: Path) -> Path:
    """A copy of the tiny checkpoint whose model card states a licence."""
    folder = tmp_path / "acestep-v15-carded"
    shutil.copytree(tiny_checkpoint, folder)
    (folder / "README.md").write_text(CARD, encoding="utf-8")
    return folder


def test_the_licence_is_read_from_the_model_cards_front_matter(carded_checkpoint: Path):
    licence = model_licence(carded_checkpoint)
    assert licence.known and licence.source == "model card front matter (README.md)"
    assert (licence.id, licence.name, licence.link) == (
        "apache-2.0", "Apache License 2.0", "https://www.apache.org/licenses/LICENSE-2.0")
    # the card's own sentence about commercial use, quoted as written (markup dropped)
    assert licence.commercial_use == ("Music generated with this checkpoint may be used in commercial projects "
                                      "under the Apache 2.0 terms.")
    assert licence.summary.startswith("apache-2.0 Apache License 2.0 (model card front matter (README.md))")
    assert licence.commercial_use in licence.summary


def test_a_license_file_is_read_when_the_card_says_nothing(tiny_checkpoint: Path, tmp_path: Path):
    folder = tmp_path / "with-license-file"
    shutil.copytree(tiny_checkpoint, folder)
    (folder / "LICENSE").write_text("\n   MIT License\n\nCopyright (c) 2026 Someone\n\nPermission is hereby ...\n")
    licence = model_licence(folder)
    assert licence.known and licence.source == "LICENSE file" and licence.licence_file == "LICENSE"
    assert licence.name == "MIT License" and licence.id is None
    assert licence.summary == "MIT License (LICENSE file)"
    assert licence.commercial_use is None  # the tiny card says nothing about it


def test_nothing_said_is_unknown_with_where_to_read_the_card(tiny_checkpoint: Path, tmp_path: Path):
    # The tiny card has front matter but no license: unknown, pointing at the card in the folder.
    licence = model_licence(tiny_checkpoint)
    assert not licence.known and licence.id is None and licence.source is None
    assert licence.summary == f"licence unknown: read the model card at {tiny_checkpoint / 'README.md'}"
    # With a download record the card's address is the Hub's, at the downloaded revision.
    folder = tmp_path / "downloaded"
    shutil.copytree(tiny_checkpoint, folder)
    (folder / DOWNLOAD_RECORD).write_text(json.dumps({"repo_id": "ACE-Step/acestep-v15-turbo-diffusers",
                                                      "revision": "0123abc"}))
    assert model_licence(folder).summary == ("licence unknown: read the model card at https://huggingface.co/"
                                             "ACE-Step/acestep-v15-turbo-diffusers/blob/0123abc/README.md")
    # No card at all, and a broken front matter: unknown, never an error.
    (folder / DOWNLOAD_RECORD).unlink()
    (folder / "README.md").unlink()
    assert model_licence(folder).summary == f"licence unknown: read the model card at {folder}"
    (folder / "README.md").write_text("---\nlicense: [unclosed\n---\nno licence here\n")
    assert not model_licence(folder).known


def test_the_download_record_can_carry_the_licence(tiny_checkpoint: Path, tmp_path: Path):
    folder = tmp_path / "recorded"
    shutil.copytree(tiny_checkpoint, folder)
    (folder / DOWNLOAD_RECORD).write_text(json.dumps({"repo_id": "owner/model", "license": "mit"}))
    licence = model_licence(folder)
    assert licence.known and licence.id == "mit" and licence.source == "download record"
    assert licence.model_card == "https://huggingface.co/owner/model"


def test_the_sketch_states_the_projects_own_licence():
    licence = project_licence()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert licence.known and licence.id == pyproject["project"]["license"]["text"] == "Apache-2.0"
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").lstrip().startswith("Apache License")
    installed = metadata.metadata("acestep-dcc")
    assert licence.id in (installed.get("License-Expression"), installed.get("License"))
    assert "sketch" in licence.applies_to and "no ML model" in licence.summary
    assert "sketch" not in licence.summary  # the CLI names the backend once, in its own line

    class Info:  # what a backend that says nothing gets: unknown, with where to look
        name, licence, model_id, model_path = "acestep", None, "owner/model", None

    assert backend_licence(Info())["summary"] == "licence unknown: read the model card at https://huggingface.co/owner/model"


def test_a_cue_carries_the_cards_licence_in_its_sidecar_and_info_chunk(carded_checkpoint: Path, tmp_path: Path,
                                                                        capsys):
    out = tmp_path / "cue.wav"
    assert main(["generate", "boss battle, rock", "--seconds", "2", "--seed", "3", "--candidates", "2",
                 "-o", str(out), "--model", str(carded_checkpoint)]) == 0
    err = capsys.readouterr().err
    expected = model_licence(carded_checkpoint)
    # printed once for the run, not once per candidate
    assert [line for line in err.splitlines() if "licence:" in line] == [f"acestep-dcc: licence: {expected.summary}"]
    for name in ("cue-1.wav", "cue-2.wav"):
        sidecar = json.loads((tmp_path / f"{name}.json").read_text())
        assert sidecar["licence"] == expected.to_dict()
        info = wavinfo.WavInfoReader(str(tmp_path / name)).info
        assert info.copyright == expected.summary[:250]
        assert f"licence: {expected.summary}" in info.comment
    # and the cue library finds them by it, with the model they came from
    found = CueLibrary().search(LibraryQuery(licence="apache-2.0", backend="acestep", text="boss"))
    assert {c.path for c in found} >= {str((tmp_path / n).resolve()) for n in ("cue-1.wav", "cue-2.wav")}
    assert {c.model for c in found if c.path.startswith(str(tmp_path.resolve()))} == {"acestep-v15-carded"}


def test_a_sketch_cue_carries_acestep_dccs_licence(tmp_path: Path, capsys):
    out = tmp_path / "sketch.wav"
    assert main(["generate", "calm exploration, ambient", "--seconds", "2", "--backend", "sketch", "--stems",
                 "-o", str(out)]) == 0
    err = capsys.readouterr().err
    summary = project_licence().summary
    assert err.count(f"acestep-dcc: licence: {summary}") == 1
    sidecar = json.loads((tmp_path / "sketch.wav.json").read_text())
    assert sidecar["licence"]["id"] == "Apache-2.0" and sidecar["licence"]["summary"] == summary
    assert wavinfo.WavInfoReader(str(out)).info.copyright == summary
    for stem in sidecar["stems"]:  # each stem's own sidecar says it too
        assert json.loads((tmp_path / f"{stem['file']}.json").read_text())["licence"] == sidecar["licence"]


def test_splitting_a_sketch_cue_says_its_licence_once(tmp_path: Path, capsys):
    out = tmp_path / "mix.wav"
    assert main(["generate", "boss battle, rock", "--seconds", "2", "--backend", "sketch", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["stems", str(out), "--tracks", "drums"]) == 0
    assert capsys.readouterr().err.count(f"acestep-dcc: licence: {project_licence().summary}") == 1
    assert json.loads((tmp_path / "mix.drums.wav.json").read_text())["licence"]["id"] == "Apache-2.0"
