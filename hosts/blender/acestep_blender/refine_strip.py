"""Refine the active strip: its request opens in a dialog with everything filled in (from
the file's sidecar, else what the strip recorded), the user edits it, and the new
candidates keep the parent's seed and settings wherever the user left them alone
(acestep_core.refine). They land above the parent, over its span, muted, as takes of
one new group; their strips record the lineage, which the Generated Strip panel shows.

A cover of the parent needs a model that covers (the sketch cannot): the dialog says
so and a cover is refused in a sentence, rather than quietly made another way.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from acestep_core.errors import AceStepError, InvalidRequest
from acestep_core.output_names import sidecar_path
from acestep_core.refine import ParentCue, ParentUnreadable, lineage_lines, parent_from_metadata, read_parent, \
    refine_request
from acestep_core.request import MAX_CANDIDATES, MAX_SEED

from . import compat, worker_link
from .operators import PlaceResults, active_strip, fail, not_busy, start
from .audio_files import resolve_output_folder
from .cue_plans import BadInput, generation_seconds, scene_rate, short_label
from .properties import KEY_ITEMS, NONE
from .strip_records import PROP_CANDIDATE, PROP_JOB, PROP_LINEAGE, PROP_REQUEST, PROP_SEED
from .tasks import CueJob, CuePlan, Task

REFINE = "REFINE"


def strip_file(strip) -> Path:
    sound = getattr(strip, "sound", None)
    if sound is None:
        raise BadInput(f"'{strip.name}' has no sound file to refine; select a sound strip that ACE-Step made")
    return Path(bpy.path.abspath(sound.filepath, library=sound.library))


def parent_of(strip) -> ParentCue:
    """The strip's cue as made: its sidecar (beside its file), else what the strip recorded
    when it was placed. BadInput (one sentence) when neither says how it was made."""
    path = strip_file(strip)
    job = str(strip.get(PROP_JOB) or "") or None
    try:
        return read_parent(path, job)
    except ParentUnreadable as exc:
        if PROP_REQUEST not in strip or sidecar_path(path).is_file():
            raise BadInput(str(exc)) from None  # no record, or a sidecar that is broken: say so
    try:  # moved without its sidecar: the strip's own record of the request and seed
        seed = int(str(strip.get(PROP_SEED, "")))
    except ValueError:
        seed = None
    try:
        metadata = {"request": json.loads(strip[PROP_REQUEST]), "seed": seed,
                    "candidate": int(strip.get(PROP_CANDIDATE, 1))}
        return parent_from_metadata(metadata, path, job)
    except (ValueError, TypeError, ParentUnreadable) as exc:
        raise BadInput(f"'{strip.name}' has no readable sidecar and its own record cannot be read ({exc}); "
                       "generate it again") from None


def plan_refine(context, addon, strip, changes: dict, cover_strength: float | None) -> Task:
    """The refinement as a task: one job, its candidates stacked above `strip`, muted."""
    scene = compat.sequencer_scene(context)
    parent = parent_of(strip)
    start, end = compat.strip_span(strip)
    rate = scene_rate(scene)
    source = None
    if cover_strength is not None:
        link = worker_link.link
        link.connect(addon)
        if link.client is not None and link.health is None:
            link.refresh_health()
        if link.client is not None and not link.supports("cover"):
            raise BadInput("this worker's model cannot make covers (the sketch backend cannot); untick Cover to "
                           "make it again with its seed and your changes, or connect to an ACE-Step model")
        source = parent.path
        if not source.is_file():
            raise BadInput(f"the audio of '{strip.name}' is missing ({source}); find it, or untick Cover")
    changes = dict(changes)
    if cover_strength is None:  # a cover is as long as the parent's audio; otherwise the strip's span
        changes["duration"] = generation_seconds(end - start, rate)
    try:
        # The lineage names the parent's file; the runner puts the upload's id in source_audio.
        request = refine_request(parent, changes, cover_strength, cover_source=str(parent.path))
    except InvalidRequest as exc:
        raise BadInput(f"{exc}; change it and press Refine again") from None
    if source is not None:
        request = dataclasses.replace(request, source_audio=None)
    folder, notice = resolve_output_folder(addon.output_folder, bpy.data.filepath)
    plan = CuePlan(name=f"{short_label(request.prompt)} refined", frame_start=start, frames=end - start,
                   lowest_channel=strip.channel + 1, muted=True)
    return Task(REFINE, f"Refine '{short_label(strip.name)}'", scene.name, folder,
                [CueJob(request, plan, source_audio=source)], notice=notice)


def dialog_values(parent: ParentCue) -> dict:
    """The Refine dialog's fields as the parent was made (headless Blender never shows
    the dialog, so the tests read this)."""
    request = parent.request
    values = {"prompt": request.prompt, "candidates": min(request.candidates, MAX_CANDIDATES),
              "seed": "" if parent.seed is None else str(parent.seed), "use_bpm": request.bpm is not None,
              "key": request.key if request.key in {item[0] for item in KEY_ITEMS} else NONE,
              "parent_text": f"{parent.path.name}, seed {parent.seed}"}
    if request.bpm is not None:
        values["bpm"] = request.bpm
    return values


class ACESTEP_OT_refine(bpy.types.Operator):
    """Open the active strip's request with everything filled in; the new takes keep its seed
    and settings wherever you leave them alone (or are a cover of it), above it, muted"""

    bl_idname = "acestep.refine"
    bl_label = "Refine"
    bl_options = {"REGISTER"}

    prompt: StringProperty(name="Prompt", description="What to change, e.g. 'faster, more double kick'")
    candidates: IntProperty(name="Candidates", min=1, max=MAX_CANDIDATES, default=1)
    seed: StringProperty(name="Seed", description="The parent's seed; change it for another take")
    use_bpm: BoolProperty(name="Set BPM")
    bpm: FloatProperty(name="BPM", min=30.0, max=300.0, default=120.0)
    key: EnumProperty(name="Key", items=KEY_ITEMS)
    cover: BoolProperty(name="Cover", description="Make the takes as a cover of this strip's audio "
                                                  "(needs an ACE-Step model)")
    cover_strength: FloatProperty(name="Strength", min=0.0, max=1.0, default=0.5,
                                  description="How closely the cover follows the parent: 0 loosely, 1 closely")
    parent_text: StringProperty(options={"HIDDEN", "SKIP_SAVE"})

    @classmethod
    def poll(cls, context):
        try:
            return not_busy(context) and getattr(active_strip(context), "type", None) == "SOUND"
        except Exception:
            return False

    def invoke(self, context, event):
        try:
            parent = parent_of(active_strip(context))
        except AceStepError as exc:
            return fail(self, context, str(exc))
        self.fill_from(parent)
        return context.window_manager.invoke_props_dialog(self, width=420)

    def fill_from(self, parent: ParentCue) -> None:
        for name, value in dialog_values(parent).items():
            setattr(self, name, value)

    def draw(self, context):
        layout = self.layout
        layout.label(text=f"Refine {self.parent_text}", icon="FILE_REFRESH")
        layout.prop(self, "prompt", text="")
        col = layout.column(align=True)
        col.prop(self, "candidates")
        col.prop(self, "seed")
        row = col.row(align=True)
        row.prop(self, "use_bpm", text="")
        sub = row.row(align=True)
        sub.active = self.use_bpm
        sub.prop(self, "bpm")
        col.prop(self, "key")
        row = layout.row(align=True)
        row.prop(self, "cover")
        sub = row.row(align=True)
        sub.active = self.cover
        sub.prop(self, "cover_strength", slider=True)
        link = worker_link.link
        if self.cover and link.client is not None and link.health is not None and not link.supports("cover"):
            layout.label(text="This model cannot make covers (the sketch cannot)", icon="ERROR")

    def changes(self) -> dict:
        """The fields given (the dialog sets them all; a script may set a few) as request
        fields; the parent's value stays in every other one."""
        given = self.properties.is_property_set
        changes = {}
        if given("prompt"):
            changes["prompt"] = " ".join(self.prompt.split())
        if given("candidates"):
            changes["candidates"] = self.candidates
        if given("seed"):
            text = self.seed.strip()
            try:
                changes["seed"] = int(text) if text else None
            except ValueError:
                raise BadInput(f"the seed must be a whole number from 0 to {MAX_SEED}, or empty to draw one; "
                               f"got {text!r}") from None
        if given("use_bpm") or given("bpm"):
            changes["bpm"] = round(float(self.bpm), 3) if self.use_bpm else None
        if given("key"):
            changes["key"] = None if self.key == NONE else self.key
        return changes

    def execute(self, context):
        strip = active_strip(context)
        strength = round(float(self.cover_strength), 4) if self.cover else None
        return start(self, context, lambda addon: plan_refine(context, addon, strip, self.changes(), strength))


class ACESTEP_OT_place_refine(PlaceResults, bpy.types.Operator):
    bl_idname = "acestep.place_refine"
    bl_label = "Refine"


def lineage_of(strip) -> list[str]:
    """What the Generated Strip panel says of where the strip came from ([] for none)."""
    try:
        return lineage_lines(json.loads(strip[PROP_LINEAGE]))
    except (KeyError, ValueError, TypeError):
        return []


CLASSES = (ACESTEP_OT_refine, ACESTEP_OT_place_refine)
register, unregister = bpy.utils.register_classes_factory(CLASSES)
