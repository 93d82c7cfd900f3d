"""What the panel edits (per scene, saved in the .blend) and what a running job shows
(per window manager: never saved, never undone)."""

from __future__ import annotations

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from acestep_core import keywords
from acestep_core.request import MAX_STYLE_SCALE

from . import style_packs
from acestep_core.request import (MAX_BPM, MAX_CANDIDATES, MAX_DURATION_S, MAX_INTRO_BARS, MAX_LOUDNESS_LUFS, MAX_SEED,
                                  MIN_BPM, MIN_DURATION_S, MIN_LOUDNESS_LUFS, NOTE_NAMES, TRACK_NAMES)

# Enum item lists must outlive the properties that use them (Blender keeps pointers).
NONE = "NONE"  # an empty identifier would make the item a menu separator
_NONE_ITEM = (NONE, "-", "None")


def _word_items(category: str) -> list[tuple[str, str, str]]:
    return [_NONE_ITEM] + [(w, w, f"{category}: {w}") for w in keywords.WORDS_BY_CATEGORY[category]]


MOOD_ITEMS = _word_items("mood")
SCENE_ITEMS = _word_items("scene")
STYLE_ITEMS = _word_items("style")
TEMPO_ITEMS = _word_items("tempo")
# An ENUM_FLAG property holds at most 32 items: the library's instruments are split over
# INSTRUMENT_PROPS, in order (operators.ACESTEP_OT_use_template reads them all).
_FLAG_LIMIT = 32
_INSTRUMENTS = keywords.WORDS_BY_CATEGORY["instrument"]
INSTRUMENT_ITEM_GROUPS = [[(w, w, f"instrument: {w}", 1 << i) for i, w in enumerate(_INSTRUMENTS[start:start + _FLAG_LIMIT])]
                          for start in range(0, len(_INSTRUMENTS), _FLAG_LIMIT)]
INSTRUMENT_ITEMS = INSTRUMENT_ITEM_GROUPS[0]
INSTRUMENT_PROPS = ("instruments", "more_instruments")
assert len(INSTRUMENT_ITEM_GROUPS) <= len(INSTRUMENT_PROPS), "add a property to INSTRUMENT_PROPS"
KEY_ITEMS = [(NONE, "Any Key", "Let the music choose")] + [
    (f"{note} {mode}", f"{note} {mode}", "") for mode in ("major", "minor") for note in NOTE_NAMES
]
TIME_SIGNATURE_ITEMS = [(NONE, "Any", "Let the music choose"), ("4/4", "4/4", ""), ("3/4", "3/4", ""),
                        ("6/8", "6/8", ""), ("2/4", "2/4", "")]
DURATION_SOURCE_ITEMS = [
    ("SECONDS", "Seconds", "A length in seconds, placed at the playhead"),
    ("SELECTED", "Selected Strips", "Fit to the span of the selected strips"),
    ("PREVIEW", "Preview Range", "Fit to the preview range"),
    ("MARKERS", "Between Markers", "Fit to the span between two markers"),
]
QUALITY_ITEMS = [
    ("FAST", "Fast", "The model's own number of steps (a few seconds on a GPU)"),
    ("QUALITY", "Quality", "Twice the model's steps: slower, more detail"),
]
VARIATION_ITEMS = [
    ("SEED", "New Seed", "Same prompt and settings, a new seed"),
    ("COVER", "Cover", "A new take built on the selected strip's audio (when the worker's model can)"),
]
LOUDNESS_ITEMS = [
    (NONE, "As Generated", "Leave the loudness as the model made it"),
    ("console", "Console (-23 LUFS)", "EBU R128, what console platforms expect"),
    ("mobile", "Mobile (-16 LUFS)", "What mobile stores and streaming expect"),
    ("TARGET", "Target LUFS", "A loudness target of your own, in LUFS"),
]
# ACE-Step's own track names, for Add Layer and Split into Stems.
TRACK_ITEMS = [(name, name.replace("_", " ").title(), f"ACE-Step's {name} track") for name in TRACK_NAMES]
STEM_TRACK_ITEMS = [(name, label, tip, 1 << i) for i, (name, label, tip) in enumerate(TRACK_ITEMS)]
LEVEL_ITEMS = [("INFO", "Info", ""), ("WARNING", "Warning", ""), ("ERROR", "Error", "")]
WORKER_STATE_ITEMS = [
    ("UNKNOWN", "Not Checked", "Press Connect, or Generate, to find the worker"),
    ("STARTING", "Starting", "A worker is starting"),
    ("CONNECTED", "Connected", "The worker answers"),
    ("DOWN", "Not Running", "No worker answers"),
]


class AceStepSectionPrompt(bpy.types.PropertyGroup):
    """A prompt for the section that starts at one marker (the marker's name otherwise)."""

    marker: StringProperty(name="Marker")
    prompt: StringProperty(name="Prompt", description="Music for this section; empty uses the marker's name")


class AceStepSceneSettings(bpy.types.PropertyGroup):
    prompt: StringProperty(
        name="Prompt", description="What the music is, for example: tense boss battle, synthwave, fast drums",
    )
    mood: EnumProperty(name="Mood", items=MOOD_ITEMS)
    scene_word: EnumProperty(name="Scene", items=SCENE_ITEMS)
    style: EnumProperty(name="Style", items=STYLE_ITEMS)
    tempo_word: EnumProperty(name="Tempo", items=TEMPO_ITEMS)
    instruments: EnumProperty(name="Instruments", items=INSTRUMENT_ITEMS, options={"ENUM_FLAG"})
    more_instruments: EnumProperty(name="More Instruments", items=INSTRUMENT_ITEM_GROUPS[-1], options={"ENUM_FLAG"})

    duration_source: EnumProperty(name="Length", items=DURATION_SOURCE_ITEMS, default="SECONDS")
    duration: FloatProperty(name="Seconds", default=30.0, min=MIN_DURATION_S, max=MAX_DURATION_S, unit="TIME_ABSOLUTE")
    marker_from: StringProperty(name="From Marker")
    marker_to: StringProperty(name="To Marker")

    candidates: IntProperty(name="Candidates", default=1, min=1, max=MAX_CANDIDATES,
                            description="Takes to generate; all but the first are muted")
    use_seed: BoolProperty(name="Fixed Seed", description="Repeat a result; off draws a new seed each time")
    seed: IntProperty(name="Seed", default=0, min=0, max=min(MAX_SEED, 2**31 - 1))
    use_bpm: BoolProperty(name="BPM")
    bpm: FloatProperty(name="BPM", default=120.0, min=MIN_BPM, max=MAX_BPM)
    key: EnumProperty(name="Key", items=KEY_ITEMS)
    time_signature: EnumProperty(name="Time Signature", items=TIME_SIGNATURE_ITEMS)
    quality: EnumProperty(name="Quality", items=QUALITY_ITEMS, default="FAST")
    variation: EnumProperty(name="Variation", items=VARIATION_ITEMS, default="SEED")
    style_pack: StringProperty(name="Style Pack", search=style_packs.pack_names,
                               description="A style pack (LoRA) the worker has; empty: none")
    style_scale: FloatProperty(name="Strength", default=1.0, min=0.0, max=MAX_STYLE_SCALE,
                               description="How strongly the style pack applies (0: not at all)")

    crossfade: FloatProperty(name="Crossfade", default=1.0, min=0.0, max=30.0, unit="TIME_ABSOLUTE",
                             description="How long each cue overlaps the next, fading out as it fades in")
    score_style: StringProperty(name="Style Words",
                                description="Added to every section's prompt, for example: orchestral, strings")
    section_prompts: CollectionProperty(type=AceStepSectionPrompt)
    section_prompt_index: IntProperty()

    loop: BoolProperty(name="Loop", description="A seamless loop on whole bars; the strip is exactly one loop long "
                                                 "(after its intro, when Intro Bars is set)")
    loop_bars: IntProperty(name="Bars", default=0, min=0, max=256,
                           description="Bars in the loop; 0 fits the whole bars nearest the length")
    intro_bars: IntProperty(name="Intro Bars", default=0, min=0, max=MAX_INTRO_BARS,
                            description="Bars of intro that play once before the loop, in the same file (0: none); "
                                        "the strip is the intro and one loop, and the file's loop starts after the intro")
    intro_auto: BoolProperty(name="Auto Intro", description="The intro 'acestep-dcc generate --intro auto' makes: "
                                                            "4 bars, or 2 before a loop of 4 bars or fewer")
    loudness: EnumProperty(name="Loudness", items=LOUDNESS_ITEMS, default=NONE)
    loudness_lufs: FloatProperty(name="LUFS", default=-14.0, min=MIN_LOUDNESS_LUFS, max=MAX_LOUDNESS_LUFS,
                                 description="Integrated loudness to aim for (the true peak stays under -1 dBTP)")
    set_kind: EnumProperty(name="Kind", default="LAYERS", items=(
        ("LAYERS", "Layers", "Stems of one loop that stack (vertical remixing, as FMOD and Wwise do it): "
                             "layer 1 has the fewest parts, each layer above adds parts"),
        ("VARIANTS", "Variants", "Matched loops from sparse to full, one playing at a time "
                                 "(horizontal: switch between them)"),
    ))
    set_intensities: IntProperty(name="Intensities", default=3, min=1, max=8,
                                 description="How many levels: layers that stack, or variants to switch between")
    set_bars: IntProperty(name="Bars", default=16, min=0, max=256,
                          description="Bars in each loop; 0 fits the whole bars nearest the length")
    set_stingers: IntProperty(name="Stingers", default=2, min=0, max=8,
                              description="Short one-shot cues, placed after the loop")

    edit_prompt: StringProperty(
        name="Edit Prompt", description="Music for Repaint Selection and Add Layer; empty uses the strip's own prompt")
    stem_tracks: EnumProperty(
        name="Tracks", items=STEM_TRACK_ITEMS, options={"ENUM_FLAG"},
        description="Stems to make; none picked makes every part the sketch played, or the model's usual six")
    layer_track: EnumProperty(name="Instrument", items=TRACK_ITEMS, default="guitar",
                              description="The instrument Add Layer plays over the strip")
    layer_use_range: BoolProperty(
        name="Only in Range", description="Play the layer only in the preview range (or between the markers "
                                          "around the playhead), silent elsewhere")


class AceStepRuntime(bpy.types.PropertyGroup):
    """The one busy flag and what the panel shows while and after a job runs."""

    busy: BoolProperty()
    progress: FloatProperty(min=0.0, max=1.0, subtype="FACTOR")
    stage: StringProperty()
    task_label: StringProperty()
    message: StringProperty()
    message_level: EnumProperty(items=LEVEL_ITEMS, default="INFO")
    worker_state: EnumProperty(items=WORKER_STATE_ITEMS, default="UNKNOWN")
    worker_summary: StringProperty()
    worker_fix: StringProperty()
    worker_tasks: StringProperty()  # the model's supports_tasks, comma separated ("" until connected)


CLASSES = (AceStepSectionPrompt, AceStepSceneSettings, AceStepRuntime)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.acestep = PointerProperty(type=AceStepSceneSettings)
    bpy.types.WindowManager.acestep = PointerProperty(type=AceStepRuntime)


def unregister():
    del bpy.types.WindowManager.acestep
    del bpy.types.Scene.acestep
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
