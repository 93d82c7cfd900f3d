"""`acestep-dcc install reaper` against a temporary REAPER resource folder, and the
ReaPack index."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from acestep_core.install.reaper import (
    ReaperInstallError, command_name, install_reaper, library_files, reapack_index, script_files,
)
from reaper_standin import start_reaper

REPO = Path(__file__).resolve().parent.parent
ACTIONS = [
    "ACE-Step - Cancel.py",
    "ACE-Step - Generate at edit cursor.py",
    "ACE-Step - Generate variations of selected item.py",
    "ACE-Step - Make intensity set.py",
    "ACE-Step - Score regions.py",
]
REAPY_LINE = 'SCR 4 0 RSreapy0123 "Custom: activate_reapy_server.py" /opt/reapy/activate_reapy_server.py'


@pytest.fixture
def resource(tmp_path: Path) -> Path:
    folder = tmp_path / "REAPER"
    folder.mkdir()
    (folder / "reaper.ini").write_text("[REAPER]\n")
    # what a user with reapy configured has: reapy writes its line with no newline
    (folder / "reaper-kb.ini").write_text("KEY 1 65 40001 0\n" + REAPY_LINE)
    return folder


def test_install_copies_the_actions_and_what_they_import(resource):
    report = install_reaper(resource, worker_command=["/envs/acestep/bin/python", "-m", "acestep_core.worker"])
    folder = resource / "Scripts" / "acestep-dcc"
    assert sorted(p.name for p in folder.glob("*.py")) == ACTIONS
    for script in script_files():
        assert (folder / script.name).read_bytes() == script.read_bytes()
    lib = folder / "lib"
    for module in ("acestep_reaper/actions.py", "acestep_reaper/project.py", "acestep_core/client.py",
                   "acestep_core/timeline.py", "acestep_core/worker/discovery.py", "reapy/__init__.py"):
        assert (lib / module).is_file(), module
    assert not (lib / "acestep_core" / "backends").exists()  # the heavy parts stay out of REAPER
    settings = json.loads((lib / "acestep-dcc.json").read_text())
    assert settings["worker_command"] == ["/envs/acestep/bin/python", "-m", "acestep_core.worker"]
    assert report.scripts == [folder / name for name in ACTIONS]
    assert f"Installed {len(ACTIONS)} REAPER actions" in str(report)


def test_install_registers_each_action_in_reaper_kb_ini_once(resource):
    install_reaper(resource)
    kb = (resource / "reaper-kb.ini").read_text()
    expected = [
        f'SCR 4 0 {command_name("acestep-dcc/" + name)} "Custom: {name}" "acestep-dcc/{name}"' for name in ACTIONS
    ]
    assert kb.splitlines() == ["KEY 1 65 40001 0", REAPY_LINE, *expected]
    assert all(len(command_name("acestep-dcc/" + name)) == 42 for name in ACTIONS)  # RS + 40 hex digits

    again = install_reaper(resource)
    assert again.kb_lines_added == [] and len(again.kb_lines_present) == len(ACTIONS)
    assert (resource / "reaper-kb.ini").read_text() == kb
    assert "already registered" in str(again)


def test_reaper_reads_the_registered_actions(resource):
    install_reaper(resource)
    app, rpr = start_reaper(resource)  # REAPER starting with this resource folder
    scripts = resource / "Scripts" / "acestep-dcc"
    registered = {a.description: Path(a.path) for a in app.actions.values()}
    assert registered == {f"Custom: {name}": scripts / name for name in ACTIONS} | {
        "Custom: activate_reapy_server.py": Path("/opt/reapy/activate_reapy_server.py")}
    command = rpr.RPR_NamedCommandLookup("_" + command_name("acestep-dcc/ACE-Step - Score regions.py"))
    assert app.actions[command].path == str(scripts / "ACE-Step - Score regions.py")


def test_reinstalling_over_an_older_install_registers_only_the_new_action(resource):
    install_reaper(resource)
    kb = resource / "reaper-kb.ini"
    new = "acestep-dcc/ACE-Step - Make intensity set.py"
    older = [line for line in kb.read_text().splitlines() if not line.endswith(f'"{new}"')]
    kb.write_text("\n".join(older) + "\n")  # what an install from before the action left
    report = install_reaper(resource)
    assert report.kb_lines_added == [f'SCR 4 0 {command_name(new)} "Custom: ACE-Step - Make intensity set.py" "{new}"']
    assert kb.read_text().splitlines() == older + report.kb_lines_added
    assert install_reaper(resource).kb_lines_added == []


def test_a_missing_resource_folder_says_what_to_do(tmp_path):
    with pytest.raises(ReaperInstallError, match="--resource-path"):
        install_reaper(tmp_path / "nowhere")


def test_the_reapack_index_is_current_and_lists_every_file():
    committed = (REPO / "hosts" / "reaper" / "index.xml").read_text(encoding="utf-8")
    assert committed == reapack_index(), (
        "hosts/reaper/index.xml is out of date; regenerate it with: python -c \"from acestep_core.install.reaper "
        "import reapack_index; open('hosts/reaper/index.xml', 'w').write(reapack_index())\"")
    root = ElementTree.fromstring(committed)
    sources = root.findall(".//source")
    mains = sorted(s.get("file") for s in sources if s.get("main") == "main")
    assert mains == ACTIONS
    files = {s.get("file") for s in sources}
    assert {"lib/acestep_reaper/actions.py", "lib/acestep_core/client.py", "lib/acestep_core/timeline.py"} <= files
    for source in sources:
        relative = source.text.split("/main/", 1)[1].replace("%20", " ")
        assert (REPO / relative).is_file(), relative
    assert len(files) == len(ACTIONS) + len(library_files())


def test_the_installed_library_starts_a_real_worker(resource, tmp_path):
    """REAPER's lib/ holds only the host-side core; starting the worker from there must
    not let that partial copy hide the worker's own acestep_core."""
    import os
    import subprocess
    import sys

    install_reaper(resource)  # default worker command: this Python
    lib = resource / "Scripts" / "acestep-dcc" / "lib"
    script = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(lib)!r})\n"
        "from acestep_core import client\n"
        "assert client.__file__.startswith(sys.path[0]), client.__file__\n"
        "command = json.load(open(sys.path[0] + '/acestep-dcc.json'))['worker_command']\n"
        "process = client.start_worker(command + ['--backend', 'sketch'])\n"
        "import time\n"
        "deadline = time.monotonic() + 60\n"
        "found = None\n"
        "while found is None and time.monotonic() < deadline:\n"
        "    found = client.check_started(process)\n"
        "    time.sleep(0.2)\n"
        "assert found is not None, 'the worker did not answer'\n"
        "print(found.health()['backend'])\n"
        "found.shutdown()\n"
    )
    env = {**os.environ, "ACESTEP_DCC_HOME": str(tmp_path / "home")}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, "-S", "-c", script], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    log = (tmp_path / "home" / "state" / "worker.log")
    assert result.returncode == 0, result.stderr + (log.read_text() if log.exists() else "")
    assert "sketch" in result.stdout
