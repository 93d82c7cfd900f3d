"""The Blender panel's style pack selector in real bpy, against a real worker on the tiny
ACE-Step checkpoint with two packs trained by 'acestep-dcc packs train' (checkpoint and
packs are made by the worker's Python, so this runs on bpy 5.2 without torch too)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_packs_support import build_checkpoint, train_and_install, write_music
from worker_fixtures import WorkerProcess

from blender_fixtures import (  # noqa: F401  (fixtures)
    addon,
    blender_addon,
    bpy,
    draw_panels,
    strips_of,
    tick_until_idle,
    tick_until_placed,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def styled_worker(tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    checkpoint = build_checkpoint(models / "acestep-v15-tiny-turbo")
    process = WorkerProcess(tmp_path_factory.mktemp("packs-worker-home"), "acestep", checkpoint)
    music = write_music(tmp_path_factory.mktemp("music"))
    for name, seed in (("chip", 0), ("town", 1)):
        train_and_install(music, checkpoint, process.home, name, seed)
    process.start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ACESTEP_DCC_HOME", str(process.home))  # the add-on finds this worker
        yield process.client
    process.stop(timeout=10)


def test_the_selector_lists_the_workers_packs_and_generate_sends_the_chosen_one(addon, styled_worker):
    scene = bpy.context.scene
    settings = scene.acestep
    settings.prompt, settings.duration = "chiptune boss battle", 2.0
    assert bpy.ops.acestep.refresh_packs() == {"FINISHED"}
    style_packs = addon.module.style_packs
    assert [name for name, _ in style_packs.pack_names(settings, bpy.context, "")] == ["chip", "town"]
    assert [name for name, _ in style_packs.pack_names(settings, bpy.context, "to")] == ["town"]
    settings.style_pack, settings.style_scale = "town", 0.5
    assert not any("style pack" in label for label in draw_panels(addon, "ACESTEP_PT_main"))
    assert bpy.ops.acestep.generate() == {"FINISHED"}, addon.runtime.message
    tick_until_placed(addon, timeout=300)
    (strip,) = [s for s in strips_of(scene) if s.type == "SOUND"]
    job = styled_worker.status(strip["acestep_job"])
    assert (job.request["style"], job.request["style_scale"]) == ("town", 0.5)
    sidecar = json.loads(Path(job.outputs[0].sidecar_path).read_text())
    assert sidecar["style"]["name"] == "town" and sidecar["style"]["scale"] == 0.5


def test_a_pack_the_worker_does_not_have_is_said_in_the_panel_and_at_generate(addon, styled_worker):
    settings = bpy.context.scene.acestep
    settings.prompt, settings.duration = "chiptune", 2.0
    assert bpy.ops.acestep.refresh_packs() == {"FINISHED"}
    settings.style_pack = "nope"
    assert any("the worker has no style pack named 'nope'" in label for label in draw_panels(addon, "ACESTEP_PT_main"))
    bpy.ops.acestep.generate()
    tick_until_idle(addon, timeout=60)
    assert "no style pack named 'nope'" in addon.runtime.message and "Nothing was placed" in addon.runtime.message
    assert not [s for s in strips_of(bpy.context.scene) if s.type == "SOUND"]
    settings.style_pack = ""
    assert not any(label.startswith("the worker has no style pack") for label in draw_panels(addon, "ACESTEP_PT_main"))
