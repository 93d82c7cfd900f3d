"""Real Blender (the `bpy` module) with the ACE-Step extension installed from its built zip.

Imported by the tests/test_blender_*.py modules. The same files run under every bpy
version (5.0 in .venv, 4.5 LTS in .venv-blender45): version differences live in the
add-on's compat module, not here.

- `blender_addon` (session): builds the extension zip with acestep_core.install.blender,
  installs it the way Blender does (extensions.package_install_files) into a temporary
  local repository, enabled; disabled again at the end (4.5 hangs at exit otherwise
  when operator classes stay registered after an undo).
- `addon` (per test): a fresh scene as the window's scene, the add-on's state reset.
- `tick_until_idle`: calls the add-on's timer tick as Blender would (headless Blender
  does not fire timers), until the task is done.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import pytest

# Keep Blender's user folders out of the real home, when bpy is not imported yet.
if "bpy" not in sys.modules:
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="acestep-blender-user-"))

bpy = pytest.importorskip("bpy", reason="real Blender as a Python module (pip install bpy) runs these tests")

from acestep_core.install.blender import build_extension_zip  # noqa: E402

BLENDER_VERSION = bpy.app.version
TICK_TIMEOUT_S = 120.0


@dataclass
class InstalledAddon:
    module: ModuleType
    module_name: str
    zip_path: Path
    repo_dir: Path

    @property
    def preferences(self):
        return bpy.context.preferences.addons[self.module_name].preferences

    @property
    def tracker(self):
        return self.module.job_tracking.tracker

    @property
    def link(self):
        return self.module.worker_link.link

    @property
    def runtime(self):
        return bpy.context.window_manager.acestep

    def tick(self):
        return self.module.job_tracking.tick()


class ExitBeforeBpy4Destructors:
    """bpy 4.x can hang forever once Python has finished: a C++ static destructor destroys
    the condition variable that bpy's sound "delayed close" thread still waits on (not
    seen with bpy 5.0). When pytest is done, leave with its exit status before C++
    destructors run. Registered only on bpy < 5.0."""

    exit_status = 0

    def pytest_sessionfinish(self, session, exitstatus):
        self.exit_status = int(exitstatus)

    def pytest_unconfigure(self, config):
        atexit.register(self._exit_now)

    def _exit_now(self):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(self.exit_status)


@pytest.fixture(scope="session")
def blender_addon(tmp_path_factory: pytest.TempPathFactory, pytestconfig) -> InstalledAddon:
    if BLENDER_VERSION < (5, 0, 0) and not pytestconfig.pluginmanager.has_plugin("acestep-bpy4-exit"):
        pytestconfig.pluginmanager.register(ExitBeforeBpy4Destructors(), "acestep-bpy4-exit")
    zip_path = build_extension_zip(tmp_path_factory.mktemp("extension-zip"))
    repo_dir = tmp_path_factory.mktemp("extension-repo")
    before = {r.module for r in bpy.context.preferences.extensions.repos}
    bpy.ops.preferences.extension_repo_add(name="acestep_tests", type="LOCAL", use_custom_directory=True,
                                           custom_directory=str(repo_dir))
    repo = next(r for r in bpy.context.preferences.extensions.repos if r.module not in before)
    result = bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo=repo.module,
                                                      enable_on_install=True)
    assert result == {"FINISHED"}
    module_name = f"bl_ext.{repo.module}.acestep_blender"
    assert module_name in bpy.context.preferences.addons, "the extension did not enable"
    installed = InstalledAddon(sys.modules[module_name], module_name, zip_path, repo_dir)
    yield installed
    installed.module.job_tracking.forget_everything()
    # Removing the repository disables (unregisters) its add-ons, as in Blender's UI.
    index = list(bpy.context.preferences.extensions.repos).index(repo)
    bpy.ops.preferences.extension_repo_remove(index=index)
    assert not hasattr(bpy.types.Scene, "acestep"), "unregister left the scene settings behind"


@pytest.fixture
def addon(blender_addon: InstalledAddon, monkeypatch, tmp_path, recwarn) -> InstalledAddon:
    """A clean slate per test: new 24 fps scene as the window's scene, no task, no worker
    link, default preferences; unsaved audio goes to this test's temporary folder. Fails
    the test when the add-on's own code used an API this Blender deprecates (5.2 warns
    about the frame_final_* names it removes in 6.0)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    _reset(blender_addon)
    bpy.ops.wm.read_homefile(use_empty=True)  # an unsaved file with no strips, like File > New
    scene = bpy.context.window.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    scene.frame_start, scene.frame_end = 1, 1000
    yield blender_addon
    if blender_addon.tracker.busy:
        blender_addon.module.job_tracking.cancel_task()
    _reset(blender_addon)
    deprecated = addon_deprecations(blender_addon, recwarn)
    assert not deprecated, "the add-on uses deprecated Blender API: " + "; ".join(deprecated)


def addon_deprecations(installed: InstalledAddon, recorded) -> list[str]:
    """'file:line: message' of each DeprecationWarning raised from the add-on's own code."""
    folder = str(Path(installed.module.__file__).parent)
    return sorted({f"{Path(w.filename).name}:{w.lineno}: {w.message}" for w in recorded
                   if issubclass(w.category, DeprecationWarning) and w.filename.startswith(folder)})


def _reset(installed: InstalledAddon) -> None:
    installed.module.job_tracking.forget_everything()
    installed.tracker.say("")
    installed.link.reset()
    prefs = installed.preferences
    for name in ("worker_python", "worker_command", "model_folder", "remote_url", "remote_token"):
        setattr(prefs, name, "")
    prefs.connection, prefs.output_folder, prefs.output_format = "LOCAL", "//acestep_audio/", "wav"


def tick_until_idle(installed: InstalledAddon, timeout: float = TICK_TIMEOUT_S, on_tick=None) -> int:
    """Call the timer tick, sleeping the interval it asks for (capped), until no task
    runs and no worker is starting. Returns how many ticks it took."""
    deadline = time.monotonic() + timeout
    ticks = 0
    while True:
        interval = installed.tick()
        ticks += 1
        if on_tick is not None:
            on_tick(ticks)
        if interval is None:
            return ticks
        if time.monotonic() > deadline:
            raise AssertionError(f"still busy after {timeout:g} s: {installed.runtime.stage} / {installed.runtime.message}")
        time.sleep(min(interval, 0.05))


def tick_until_placed(installed: InstalledAddon, timeout: float = TICK_TIMEOUT_S, on_tick=None) -> int:
    """tick_until_idle for a task that must land: fails with what the add-on said when it did not."""
    ticks = tick_until_idle(installed, timeout, on_tick)
    runtime = installed.runtime
    assert runtime.message_level != "ERROR" and "Nothing was placed" not in runtime.message, runtime.message
    return ticks


def scene_rate(scene) -> Fraction:
    from acestep_core.timeline import frame_rate

    return frame_rate(scene.render.fps, scene.render.fps_base)


def strips_of(scene) -> list:
    editor = scene.sequence_editor
    if editor is None:
        return []
    strips = editor.strips if hasattr(editor, "strips") else editor.sequences
    return sorted(strips, key=lambda s: (s.channel, s.frame_final_start))


def add_blocker(scene, name: str, channel: int, start: int, end: int):
    """A color strip occupying `channel` over [start, end): something already in the edit."""
    editor = scene.sequence_editor or scene.sequence_editor_create()
    strips = editor.strips if hasattr(editor, "strips") else editor.sequences
    strip = strips.new_effect(name=name, type="COLOR", channel=channel, frame_start=start, frame_end=end) \
        if "frame_end" in [p.identifier for p in strips.bl_rna.functions["new_effect"].parameters] \
        else strips.new_effect(name=name, type="COLOR", channel=channel, frame_start=start, length=end - start)
    strip.frame_final_duration = end - start
    return strip


def volume_at(scene, strip_name: str, frame: int) -> float:
    """The strip's volume as Blender evaluates its animation at `frame`."""
    scene.frame_set(frame)
    editor = scene.sequence_editor
    strips = editor.strips_all if hasattr(editor, "strips_all") else editor.sequences_all
    return strips[strip_name].volume


def copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target)


class LayoutStandIn:
    """Blender's UILayout as panels use it, checking what real Blender would reject:
    unknown properties, operators and icons. Records every label."""

    ICONS = set(bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items.keys())

    def __init__(self, labels=None):
        self.labels = labels if labels is not None else []
        self.active = True
        self.enabled = True

    def _child(self, *args, **kwargs):
        return LayoutStandIn(self.labels)

    row = column = box = split = grid_flow = _child

    def label(self, text="", icon="NONE", **_):
        assert icon in self.ICONS, f"unknown icon {icon!r}"
        self.labels.append(text)

    def prop(self, data, name, **_):
        assert name in data.bl_rna.properties, f"{type(data).__name__} has no property {name!r}"

    def prop_search(self, data, name, search_data, search_name, **_):
        assert name in data.bl_rna.properties and search_name in search_data.bl_rna.properties

    def operator(self, idname, text="", icon="NONE", **_):
        assert icon in self.ICONS, f"unknown icon {icon!r}"
        module, name = idname.split(".")
        assert hasattr(getattr(bpy.ops, module), name), f"no operator {idname}"
        self.labels.append(f"[{text or idname}]")

    def progress(self, factor=0.0, type="BAR", text=""):
        self.labels.append(text)

    def template_list(self, list_type, list_id, data, name, active_data, active_name, **_):
        assert hasattr(bpy.types, list_type)
        assert name in data.bl_rna.properties and active_name in active_data.bl_rna.properties

    def separator(self, **_):
        pass


def draw_panels(installed: InstalledAddon, only: str | None = None) -> list[str]:
    """Every label (and [button]) the add-on's panels that show now would draw (or just
    the panel class named `only`)."""
    from types import SimpleNamespace

    labels: list[str] = []
    for panel_class in installed.module.panel.CLASSES:
        if only is not None and panel_class.__name__ != only:
            continue
        if issubclass(panel_class, bpy.types.Panel) and panel_class.poll(bpy.context):
            panel_class.draw(SimpleNamespace(layout=LayoutStandIn(labels)), bpy.context)
    return labels
