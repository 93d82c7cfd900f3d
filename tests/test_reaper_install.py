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
    "ACE-Step - Add layer to selected item.py",
    "ACE-Step - Cancel.py",
    "ACE-Step - Generate at edit cursor.py",
    "ACE-Step - Generate variations of selected item.py",
    "ACE-Step - Insert from library.py",
    "ACE-Step - Make intensity set.py",
    "ACE-Step - Refine selected item.py",
    "ACE-Step - Repaint time selection.py",
    "ACE-Step - Score regions.py",
    "ACE-Step - Split selected item into stems.py",
    "ACE-Step - Stop worker.py",
    "ACE-Step - Worker settings.py",
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
                   "acestep_core/timeline.py", "acestep_core/worker/discovery.py", "acestep_core/output_names.py",
                   "reapy/__init__.py"):
        assert (lib / module).is_file(), module
    assert not (lib / "acestep_core" / "backends").exists()  # the heavy parts stay out of REAPER
    settings = json.loads((lib / "acestep-dcc.json").read_text())
    assert settings["worker_command"] == ["/envs/acestep/bin/python", "-m", "acestep_core.worker"]
    assert report.scripts == [folder / name for name in ACTIONS]
    assert f"Installed {len(ACTIONS)} REAPER actions" in str(report)


def listed(name: str) -> str:
    """The name the README gives an action: "ACE-Step - Score regions.py" -> "ACE-Step: Score regions"."""
    return "ACE-Step: " + name[len("ACE-Step - "):-len(".py")]


def our_line(name: str, command: str | None = None) -> str:
    path = "acestep-dcc/" + name
    return f'SCR 4 0 {command or command_name(path)} "{listed(name)}" "{path}"'


def test_install_registers_each_action_in_reaper_kb_ini_once(resource):
    install_reaper(resource)
    kb = (resource / "reaper-kb.ini").read_text()
    assert kb.splitlines() == ["KEY 1 65 40001 0", REAPY_LINE, *[our_line(name) for name in ACTIONS]]
    assert all(len(command_name("acestep-dcc/" + name)) == 42 for name in ACTIONS)  # RS + 40 hex digits

    again = install_reaper(resource)
    assert again.kb_lines_added == [] and again.kb_lines_replaced == [] and len(again.kb_lines_present) == len(ACTIONS)
    assert (resource / "reaper-kb.ini").read_text() == kb
    assert "already registered" in str(again)


def test_reaper_lists_the_actions_under_the_names_the_readme_uses(resource):
    install_reaper(resource)
    app, rpr = start_reaper(resource)  # REAPER starting with this resource folder
    scripts = resource / "Scripts" / "acestep-dcc"
    shown = {rpr.RPR_kbd_getTextFromCmd(a.command_id, None): Path(a.path) for a in app.actions.values()}
    assert shown == {listed(name): scripts / name for name in ACTIONS} | {
        "Script: activate_reapy_server.py": Path("/opt/reapy/activate_reapy_server.py")}
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for name in ACTIONS:
        assert name[len("ACE-Step - "):-len(".py")] in readme, name
    command = rpr.RPR_NamedCommandLookup("_" + command_name("acestep-dcc/ACE-Step - Score regions.py"))
    assert app.actions[command].path == str(scripts / "ACE-Step - Score regions.py")


def test_reinstalling_rewrites_our_old_lines_in_place_and_leaves_the_rest(resource):
    """An older install listed the actions as "Custom: ACE-Step - ....py" (REAPER shows
    "Script: ACE-Step - ....py"); one was loaded by hand, so REAPER gave it its own id and
    a shortcut; the file has REAPER's Windows line ends. A reinstall renames our lines where
    they stand, keeps every id (shortcuts and toolbars still work), adds the missing action
    and touches nothing else."""
    def old(name: str, command: str | None = None) -> str:
        path = "acestep-dcc/" + name
        return f'SCR 4 0 {command or command_name(path)} "Custom: {name}" "{path}"'

    hand_loaded = "ACE-Step - Score regions.py"
    hand_id = "RS7c2d5e0d3b1a4f6e8c9b0a1d2e3f4a5b6c7d8e9f"
    shipped_before = [name for name in ACTIONS if name != "ACE-Step - Make intensity set.py"]
    before = ["KEY 1 65 40001 0", REAPY_LINE,
              *[old(name, hand_id if name == hand_loaded else None) for name in shipped_before],
              f"KEY 9 83 _{hand_id} 0",
              'SCR 4 0 RSfeed "Custom: ACE-Step - Generate at edit cursor.py" "elsewhere/ACE-Step - Generate at edit cursor.py"']
    kb = resource / "reaper-kb.ini"
    kb.write_bytes(("\r\n".join(before) + "\r\n").encode())

    report = install_reaper(resource)
    after = kb.read_bytes().decode()
    assert after.endswith("\r\n") and "\n" not in after.replace("\r\n", "")
    expected = ["KEY 1 65 40001 0", REAPY_LINE,
                *[our_line(name, hand_id if name == hand_loaded else None) for name in shipped_before],
                *before[-2:], our_line("ACE-Step - Make intensity set.py")]
    assert after.split("\r\n")[:-1] == expected
    assert report.kb_lines_replaced == [line for line in before if '"Custom: ACE-Step' in line and "elsewhere/" not in line]
    assert report.kb_lines_added == [our_line("ACE-Step - Make intensity set.py")]

    app, rpr = start_reaper(resource)
    names = {rpr.RPR_kbd_getTextFromCmd(a.command_id, None) for a in app.actions.values()}
    assert {listed(name) for name in ACTIONS} <= names
    assert not any(name.startswith("Script: ACE-Step") and "elsewhere" not in path
                   for name, path in ((rpr.RPR_kbd_getTextFromCmd(a.command_id, None), a.path)
                                      for a in app.actions.values()))
    again = install_reaper(resource)
    assert again.kb_lines_added == again.kb_lines_replaced == [] and kb.read_bytes().decode() == after


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
