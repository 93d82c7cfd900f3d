"""Main_SaveProject's output: the parts of an .rpp file this model holds.

REAPER writes much more; these are the chunks a person or a script would look for
(TEMPO, MARKER, TRACK, ITEM with NOTES, takes and their SOURCE FILE).
"""

from __future__ import annotations

import time

from .model import APP_VERSION, Project


def _quote(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'


def rpp_lines(project: Project) -> list[str]:
    lines = [f'<REAPER_PROJECT 0.1 "{APP_VERSION}" {int(time.time())}']
    lines.append(f"  TEMPO {project.tempo.bpm:g} {project.tempo.num} {project.tempo.denom}")
    lines.append(f"  RECORD_PATH {_quote(project.record_path)} \"\"")
    lines.append(f"  CURSOR {project.cursor:.14f}")
    lines.append(f"  SELECTION {project.time_selection[0]:.14f} {project.time_selection[1]:.14f}")
    for marker in project.sorted_markers():
        flag = 1 if marker.is_region else 0
        lines.append(f"  MARKER {marker.number} {marker.position:.14f} {_quote(marker.name)} {flag} {marker.color} 1 {'R' if flag else 'B'} {marker.guid} 0")
        if marker.is_region:
            lines.append(f'  MARKER {marker.number} {marker.end:.14f} "" {flag}')
    for track in project.tracks:
        lines.append(f"  <TRACK {track.guid}")
        lines.append(f"    NAME {_quote(track.name)}")
        lines.append(f"    SEL {1 if track.selected else 0}")
        for item in track.sorted_items():
            lines.append("    <ITEM")
            lines.append(f"      POSITION {item.position:.14f}")
            lines.append(f"      LENGTH {item.length:.14f}")
            lines.append(f"      FADEIN 1 {item.values['D_FADEINLEN']:.6f} 0")
            lines.append(f"      FADEOUT 1 {item.values['D_FADEOUTLEN']:.6f} 0")
            lines.append(f"      SEL {1 if item.selected else 0}")
            lines.append(f"      IGUID {item.guid}")
            if item.notes:
                lines.append("      <NOTES")
                lines += [f"        |{line}" for line in item.notes.split("\n")]
                lines.append("      >")
            for index, take in enumerate(item.takes):
                if index:
                    lines.append("      TAKE SEL" if index == item.active else "      TAKE")
                lines.append(f"      NAME {_quote(take.name)}")
                lines.append(f"      SOFFS {take.values['D_STARTOFFS']:.14f}")
                lines.append(f"      GUID {take.guid}")
                if take.source is not None:
                    lines.append(f"      <SOURCE {take.source.info.type}")
                    lines.append(f"        FILE {_quote(take.source.filename)}")
                    lines.append("      >")
            lines.append("    >")
        lines.append("  >")
    lines.append(">")
    return lines


def write_rpp(project: Project, path: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(rpp_lines(project)) + "\n")
