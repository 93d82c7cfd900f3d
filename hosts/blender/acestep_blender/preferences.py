"""Add-on preferences: how to reach the worker, the model it starts with, where audio goes, and its format.

Everything else reads them through `addon_settings(context)`, a plain snapshot that
falls back to the defaults when the add-on's preferences are not there (never None).
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass

import bpy
from bpy.props import EnumProperty, FloatProperty, StringProperty

ADDON_ID = __package__
DEFAULT_OUTPUT_FOLDER = "//acestep_audio/"
# A worker Blender starts loads the model at once, frees its memory after this long
# without a job, and exits after this long without a request from any host (0: never).
DEFAULT_IDLE_UNLOAD_MINUTES = 10.0
DEFAULT_IDLE_EXIT_MINUTES = 30.0
# Preferences belong to no .blend, so 4.5+ warns about "//" unless told it is meant.
_BLEND_RELATIVE = {"PATH_SUPPORTS_BLEND_RELATIVE"} if bpy.app.version >= (4, 5, 0) else set()

CONNECTION_ITEMS = [
    ("LOCAL", "This Computer", "Use the worker running on this computer, or start one"),
    ("REMOTE", "Another Computer", "Use a worker on another computer by its URL and token"),
]
FORMAT_ITEMS = [
    ("wav", "WAV", "16-bit 44.1 kHz WAV, what game engines expect"),
    ("flac", "FLAC", "Lossless and smaller"),
    ("ogg", "Ogg Vorbis", "Small, lossy"),
]


@dataclass(frozen=True)
class AddonSettings:
    connection: str = "LOCAL"
    worker_python: str = ""
    worker_command: str = ""
    model_folder: str = ""
    remote_url: str = ""
    remote_token: str = ""
    output_folder: str = DEFAULT_OUTPUT_FOLDER
    output_format: str = "wav"
    idle_unload_minutes: float = DEFAULT_IDLE_UNLOAD_MINUTES
    idle_exit_minutes: float = DEFAULT_IDLE_EXIT_MINUTES

    def start_command(self) -> list[str] | None:
        """The command that starts a worker here, with the lifetime flags, or None to let
        the client decide (which, inside Blender, asks the user to set one)."""
        if self.worker_command.strip():
            command = split_command(self.worker_command)
        elif self.worker_python.strip():
            command = [bpy.path.abspath(self.worker_python.strip()), "-m", "acestep_core.worker"]
            if self.model_folder.strip():
                command += ["--model", bpy.path.abspath(self.model_folder.strip())]
        else:
            return None
        # A flag the Worker Command already gives is the user's choice.
        return command + [part for flag in self.lifetime_flags() if flag[0] not in command for part in flag]

    def lifetime_flags(self) -> list[tuple[str, ...]]:
        """--preload (the model loads while the user writes a prompt), and the idle flags
        that are not 0."""
        flags = [("--preload",)]
        if self.idle_unload_minutes > 0:
            flags.append(("--idle-unload", f"{self.idle_unload_minutes:g}"))
        if self.idle_exit_minutes > 0:
            flags.append(("--idle-exit", f"{self.idle_exit_minutes:g}"))
        return flags


    def start_setting(self) -> str:
        """The preference start_command's program comes from, as the messages name it."""
        return "the program in Worker Command" if self.worker_command.strip() else "Worker Python"


def split_command(command: str) -> list[str]:
    """Split like a shell would, keeping Windows backslashes (C:\\Python\\python.exe)."""
    if os.name != "nt":
        return shlex.split(command)
    return [part[1:-1] if len(part) > 1 and part[0] == part[-1] == '"' else part
            for part in shlex.split(command, posix=False)]


class AceStepPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    connection: EnumProperty(name="Worker", items=CONNECTION_ITEMS, default="LOCAL")
    worker_python: StringProperty(
        name="Worker Python",
        description="Python executable of the environment where acestep-dcc's worker is installed "
        "(it has torch and diffusers; Blender's own Python does not need them)",
        subtype="FILE_PATH",
    )
    worker_command: StringProperty(
        name="Worker Command",
        description="Full command that starts the worker, instead of Worker Python "
        "(for example: acestep-dcc worker --backend sketch); the idle settings below are added to it",
    )
    model_folder: StringProperty(
        name="Model Folder",
        description="ACE-Step model folder passed to a worker this add-on starts "
        "(empty: the worker's configured model, or the sketch backend)",
        subtype="DIR_PATH",
    )
    remote_url: StringProperty(name="URL", description="For example http://192.168.1.20:8765")
    remote_token: StringProperty(
        name="Token", description="The token from that worker's discovery file", subtype="PASSWORD"
    )
    output_folder: StringProperty(
        name="Audio Folder",
        description="Where generated audio is saved; // means beside the .blend, so the project "
        "moves with its audio",
        default=DEFAULT_OUTPUT_FOLDER,
        subtype="DIR_PATH",
        options=_BLEND_RELATIVE,
    )
    output_format: EnumProperty(name="Format", items=FORMAT_ITEMS, default="wav")
    idle_unload_minutes: FloatProperty(
        name="Unload model after idle (min)",
        description="A worker this add-on starts frees the model's memory after this many minutes "
        "without a job, and loads it again for the next one (0: never)",
        default=DEFAULT_IDLE_UNLOAD_MINUTES, min=0.0, soft_max=240.0,
    )
    idle_exit_minutes: FloatProperty(
        name="Stop worker after idle (min)",
        description="A worker this add-on starts exits after this many minutes without a request "
        "from Blender or another host, so it never outlives Blender for long (0: never)",
        default=DEFAULT_IDLE_EXIT_MINUTES, min=0.0, soft_max=1440.0,
    )

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "connection", expand=True)
        if self.connection == "LOCAL":
            layout.prop(self, "worker_python")
            layout.prop(self, "worker_command")
            layout.prop(self, "model_folder")
            layout.label(text="A running worker is found by itself; these start one when none runs.", icon="INFO")
            row = layout.row()
            row.prop(self, "idle_unload_minutes")
            row.prop(self, "idle_exit_minutes")
        else:
            layout.prop(self, "remote_url")
            layout.prop(self, "remote_token")
        layout.separator()
        layout.prop(self, "output_folder")
        layout.prop(self, "output_format")


def addon_settings(context=None) -> AddonSettings:
    try:
        addon = (context or bpy.context).preferences.addons.get(ADDON_ID)
        prefs = addon.preferences if addon is not None else None
    except AttributeError:
        prefs = None
    if prefs is None:
        return AddonSettings()
    return AddonSettings(
        connection=prefs.connection,
        worker_python=prefs.worker_python,
        worker_command=prefs.worker_command,
        model_folder=prefs.model_folder,
        remote_url=prefs.remote_url,
        remote_token=prefs.remote_token,
        output_folder=prefs.output_folder or DEFAULT_OUTPUT_FOLDER,
        output_format=prefs.output_format,
        idle_unload_minutes=prefs.idle_unload_minutes,
        idle_exit_minutes=prefs.idle_exit_minutes,
    )


CLASSES = (AceStepPreferences,)


register, unregister = bpy.utils.register_classes_factory(CLASSES)
