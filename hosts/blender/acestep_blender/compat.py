"""The few places Blender 4.2-4.5 and 5.x differ for a sequencer add-on.

- Strips live in `sequence_editor.sequences` up to 4.x and `.strips` from 4.4 on
  (`sequences` is gone in 5.0).
- 5.x edits the workspace's `context.sequencer_scene`, which may differ from
  `context.scene`; before 5.0 the sequencer always shows `context.scene`.
- 5.2 names a strip's span left_handle, right_handle and duration (content_duration
  for the source's length, content_start for the frame its source begins at); the
  frame_final_*, frame_duration and frame_start names warn there and go in 6.0.
  strip_span, set_strip_length, content_length and content_start read either.
"""

from __future__ import annotations

import bpy


def sequencer_scene(context) -> "bpy.types.Scene | None":
    return getattr(context, "sequencer_scene", None) or getattr(context, "scene", None)


def sequence_editor(scene, create: bool = False):
    """The scene's sequence editor; None when it has none and `create` is False."""
    if scene is None:
        return None
    editor = scene.sequence_editor
    if editor is None and create:
        editor = scene.sequence_editor_create()
    return editor


def top_strips(editor):
    """The strips at the top level (not inside meta strips): where channels are shared."""
    # hasattr, not truthiness: an empty collection is falsy.
    return editor.strips if hasattr(editor, "strips") else editor.sequences


def _has_handles(strip) -> bool:
    return "left_handle" in strip.bl_rna.properties


def strip_span(strip) -> tuple[int, int]:
    """(first frame, end frame exclusive) of what the strip shows on the timeline."""
    if _has_handles(strip):
        return strip.left_handle, strip.right_handle
    return strip.frame_final_start, strip.frame_final_end


def set_strip_length(strip, frames: int) -> None:
    """Move the right handle so the strip shows `frames` frames from its start."""
    if _has_handles(strip):
        strip.duration = frames
    else:
        strip.frame_final_duration = frames


def set_strip_span(strip, start: int, end: int) -> None:
    """Move both handles so the strip shows [start, end) of its source, which stays put."""
    if _has_handles(strip):
        strip.left_handle, strip.right_handle = start, end
    else:
        strip.frame_final_start, strip.frame_final_end = start, end


def content_start(strip) -> float:
    """The timeline frame where the strip's source (its sound file's first sample) begins."""
    return strip.content_start if _has_handles(strip) else strip.frame_start


def set_content_start(strip, frame: float) -> None:
    """Slide the strip's source (and its handles with it) so the source begins at `frame`."""
    if _has_handles(strip):
        strip.content_start = frame
    else:
        strip.frame_start = frame


def content_length(strip) -> int:
    """Frames of the strip's source (the sound file), whatever the handles show."""
    return strip.content_duration if _has_handles(strip) else strip.frame_duration


def occupied_ranges(editor, exclude=()) -> list[tuple[int, int, int]]:
    """(channel, first frame, end frame exclusive) of every top-level strip."""
    if editor is None:
        return []
    skip = {s.name for s in exclude}
    return [(s.channel, *strip_span(s)) for s in top_strips(editor) if s.name not in skip]


def selected_strips(scene) -> list:
    editor = sequence_editor(scene)
    if editor is None:
        return []
    return [s for s in top_strips(editor) if s.select]


def tag_sequencer_redraw(context=None) -> None:
    """Redraw every open sequencer, so progress shows without the mouse moving."""
    wm = getattr(context or bpy.context, "window_manager", None)
    if wm is None:
        return
    for window in wm.windows:
        screen = window.screen
        if screen is None:
            continue
        for area in screen.areas:
            if area.type == "SEQUENCE_EDITOR":
                area.tag_redraw()
