"""Refine in real Blender against a real sketch worker over HTTP: the active strip's
request is the refinement's, the new takes keep its seed wherever the user left it,
land above it, muted, and record the lineage, which the Generated Strip panel shows."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from blender_fixtures import (  # noqa: F401  (fixtures)
    LayoutStandIn,
    addon,
    blender_addon,
    bpy,
    draw_panels,
    strips_of,
    tick_until_placed,
)

PROMPT = "boss battle, rock"


def _generated_takes(addon, scene) -> list:
    settings = scene.acestep
    settings.prompt, settings.duration, settings.candidates = PROMPT, 4.0, 2
    settings.use_seed, settings.seed = True, 50
    settings.use_bpm, settings.bpm = True, 120.0
    settings.key = "E minor"
    scene.frame_current = 10
    assert bpy.ops.acestep.generate() == {"FINISHED"}, addon.runtime.message
    tick_until_placed(addon)
    return [s for s in strips_of(scene) if s.type == "SOUND"]


def _activate(scene, strip) -> None:
    scene.sequence_editor.active_strip = strip


def test_refine_keeps_the_seed_and_the_strips_show_the_lineage(addon, worker):
    scene = bpy.context.scene
    first, second = _generated_takes(addon, scene)
    _activate(scene, second)
    assert "[Refine...]" in draw_panels(addon, "ACESTEP_PT_generated_strip")
    # What the dialog opens with: the take's own request and seed, from its sidecar.
    parent = addon.module.refine_strip.parent_of(second)
    assert (parent.seed, parent.candidate, parent.request.prompt, parent.request.bpm, parent.request.key) == (
        51, 2, PROMPT, 120.0, "E minor")
    assert parent.job == second["acestep_job"]
    values = addon.module.refine_strip.dialog_values(parent)
    assert values == {"prompt": PROMPT, "candidates": 2, "seed": "51", "use_bpm": True, "bpm": 120.0, "key": "E minor",
                      "parent_text": f"{parent.path.name}, seed 51"}
    # The dialog draws those with real properties and icons (LayoutStandIn checks them).
    labels = []
    operator = SimpleNamespace(layout=LayoutStandIn(labels), bl_rna=bpy.ops.acestep.refine.get_rna_type(),
                               cover=True, cover_strength=0.5, **values)
    addon.module.refine_strip.ACESTEP_OT_refine.draw(operator, bpy.context)
    assert labels[0] == f"Refine {parent.path.name}, seed 51"

    assert bpy.ops.acestep.refine(prompt=f"{PROMPT}, faster, more double kick", use_bpm=True, bpm=150.0,
                                  candidates=2) == {"FINISHED"}, addon.runtime.message
    tick_until_placed(addon)
    assert "Refine" in addon.runtime.message
    refined = [s for s in strips_of(scene) if s.type == "SOUND" and s not in (first, second)]
    assert [(s.channel, s.frame_final_start, s.frame_final_duration, s.mute) for s in refined] == [
        (3, 10, 96, True), (4, 10, 96, True)]  # above the parent, over its span, muted
    assert [int(s["acestep_seed"]) for s in refined] == [51, 52]  # the parent's seed, then the next
    lineage = json.loads(refined[0]["acestep_lineage"])
    assert (lineage["parent_file"], lineage["parent_seed"], lineage["parent_candidate"], lineage["parent_job"]) == (
        Path(bpy.path.abspath(second.sound.filepath)).name, 51, 2, second["acestep_job"])
    assert lineage["changed"] == {"prompt": {"before": PROMPT, "after": f"{PROMPT}, faster, more double kick"},
                                  "bpm": {"before": 120.0, "after": 150.0}}
    sidecar = json.loads(Path(bpy.path.abspath(refined[0].sound.filepath) + ".json").read_text())
    assert sidecar["lineage"] == lineage and sidecar["request"]["key"] == "E minor"
    assert json.loads(refined[0]["acestep_request"])["lineage"] is None  # a variation of it is no refinement

    _activate(scene, refined[0])
    labels = draw_panels(addon, "ACESTEP_PT_generated_strip")
    name = lineage["parent_file"]
    assert f"Refined from {name} (seed 51," in " ".join(labels)
    assert any(label.startswith("Changed: prompt") for label in labels), " | ".join(labels)
    # Refining the refinement names its own parent; only what the script sets changes.
    assert bpy.ops.acestep.refine(candidates=1) == {"FINISHED"}, addon.runtime.message
    tick_until_placed(addon)
    [grandchild] = [s for s in strips_of(scene) if s.type == "SOUND" and "acestep_lineage" in s
                    and json.loads(s["acestep_lineage"])["parent_file"] != name]
    child_lineage = json.loads(grandchild["acestep_lineage"])
    assert child_lineage["parent_seed"] == 51 and int(grandchild["acestep_seed"]) == 51
    assert child_lineage["changed"] == {"candidates": {"before": 2, "after": 1}}


def test_a_missing_sidecar_falls_back_to_the_strip_and_a_broken_one_is_a_sentence(addon, worker):
    scene = bpy.context.scene
    _, second = _generated_takes(addon, scene)
    _activate(scene, second)
    sidecar = Path(bpy.path.abspath(second.sound.filepath) + ".json")
    sidecar.unlink()  # moved without it: the strip's own record still says how it was made
    parent = addon.module.refine_strip.parent_of(second)
    assert (parent.seed, parent.request.prompt) == (51, PROMPT)
    sidecar.write_text("{broken")
    with pytest.raises(RuntimeError, match="cannot be read"):  # an ERROR report, as Blender raises it to scripts
        bpy.ops.acestep.refine(prompt="faster")
    assert addon.runtime.message.startswith(f"the sidecar {sidecar.name} cannot be read (it is not valid JSON")
    assert addon.runtime.message_level == "ERROR" and not addon.tracker.busy


def test_a_cover_on_the_sketch_is_refused_with_the_reason(addon, worker):
    scene = bpy.context.scene
    _, second = _generated_takes(addon, scene)
    _activate(scene, second)
    before = len(strips_of(scene))
    with pytest.raises(RuntimeError, match="cannot make covers"):
        bpy.ops.acestep.refine(cover=True, cover_strength=0.4)
    assert addon.runtime.message == ("this worker's model cannot make covers (the sketch backend cannot); untick "
                                     "Cover to make it again with its seed and your changes, or connect to an "
                                     "ACE-Step model")
    assert len(strips_of(scene)) == before


def test_a_bad_seed_is_a_sentence_and_the_cover_strength_is_held_to_0_to_1(addon, worker):
    scene = bpy.context.scene
    _, second = _generated_takes(addon, scene)
    _activate(scene, second)
    with pytest.raises(RuntimeError, match="the seed must be"):
        bpy.ops.acestep.refine(seed="fifty")
    assert addon.runtime.message == "the seed must be a whole number from 0 to 4294967295, or empty to draw one; got 'fifty'"
    # Blender keeps the strength in range; the core refuses anything else (tests/test_refine.py).
    prop = bpy.ops.acestep.refine.get_rna_type().properties["cover_strength"]
    assert (prop.hard_min, prop.hard_max) == (0.0, 1.0)


@pytest.mark.slow
def test_a_cover_refinement_on_acestep(addon, request):
    """The tiny checkpoint's real cover task: the runner uploads the parent, the lineage
    names the parent's file and strength."""
    pytest.importorskip("torch", reason="building the tiny ACE-Step checkpoint needs torch in this Python")
    acestep_worker = request.getfixturevalue("acestep_worker")
    scene = bpy.context.scene
    settings = scene.acestep
    settings.prompt, settings.duration, settings.candidates = PROMPT, 2.0, 1
    settings.use_seed, settings.seed = True, 70
    assert bpy.ops.acestep.generate() == {"FINISHED"}, addon.runtime.message
    tick_until_placed(addon, timeout=300)
    [parent] = [s for s in strips_of(scene) if s.type == "SOUND"]
    _activate(scene, parent)
    assert bpy.ops.acestep.refine(cover=True, cover_strength=0.6, prompt="boss battle, metal") == {"FINISHED"}, \
        addon.runtime.message
    tick_until_placed(addon, timeout=300)
    [cover] = [s for s in strips_of(scene) if s.type == "SOUND" and s != parent]
    job = acestep_worker.status(cover["acestep_job"])
    assert job.request["task"] == "cover" and job.request["source_audio"].startswith("upload-")
    lineage = json.loads(cover["acestep_lineage"])
    assert (lineage["cover_strength"], lineage["parent_seed"], int(cover["acestep_seed"])) == (0.6, 70, 70)
    assert lineage["parent_file"] == Path(bpy.path.abspath(parent.sound.filepath)).name
    assert (cover.channel, cover.mute) == (parent.channel + 1, True)
