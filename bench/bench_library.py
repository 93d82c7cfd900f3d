"""The cue library at the size of a real project's music folder.

    .venv/bin/python bench/bench_library.py [--cues 10000] [--repeats 20]

Writes --cues sidecars (and empty stand-in audio files) shaped like generate's, with
prompts drawn from the keyword library, indexes them with `library add`, then times the
searches the hosts send (words only; words with a BPM range, key and loop; tag fields;
the newest 50 with no filter) as medians over --repeats, and one incremental add of an
unchanged folder. Goal: a search answers in 50 ms or less at 10,000 cues, so a host's
Search button feels instant.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from acestep_core import keywords  # noqa: E402
from acestep_core.library import CueLibrary, LibraryQuery  # noqa: E402

GOAL_S = 0.050
KEYS = [f"{note} {mode}" for note in ("C", "D", "E", "F", "G", "A", "B") for mode in ("major", "minor")]


def write_cues(folder: Path, count: int, seed: int = 1) -> None:
    pick = random.Random(seed)
    words = keywords.WORDS_BY_CATEGORY
    for number in range(count):
        prompt = ", ".join([pick.choice(words["mood"]) + " " + pick.choice(words["scene"]), pick.choice(words["style"]),
                            pick.choice(words["instrument"])])
        bpm = float(pick.randrange(60, 190))
        looped = pick.random() < 0.5
        sidecar = {
            "file": f"cue-{number}.wav", "software": "acestep-dcc 0.1.0", "created": f"2026-12-04T10:{number % 60:02d}:00+00:00",
            "backend": {"name": "sketch", "label": "sketch (procedural, no ML model)"},
            "licence": {"summary": "Apache-2.0 (acestep-dcc's own licence; its own code made this audio, no ML model)"},
            "request": {"prompt": prompt, "bpm": bpm}, "seed": number, "candidate": 1,
            "duration_written": pick.choice((8.0, 15.0, 30.0, 60.0)),
            "loop": {"bars": pick.choice((4, 8, 16)), "loop_start": 0, "loop_end_exclusive": 1} if looped else None,
            "tempo": {"used": bpm}, "key": {"used": pick.choice(KEYS)},
        }
        sub = folder / f"batch-{number // 1000}"
        sub.mkdir(exist_ok=True)
        (sub / f"cue-{number}.wav").write_bytes(b"")
        (sub / f"cue-{number}.wav.json").write_text(json.dumps(sidecar), encoding="utf-8")


def median_s(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cues", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp) / "music"
        folder.mkdir()
        write_cues(folder, args.cues)
        library = CueLibrary(Path(temp) / "library.sqlite3")
        started = time.perf_counter()
        report = library.add_folder(folder)
        add_s = time.perf_counter() - started
        print(f"indexed {len(report.indexed)} cues in {add_s:.2f} s ({1000 * add_s / max(1, args.cues):.2f} ms a cue)")
        started = time.perf_counter()
        library.add_folder(folder)
        print(f"library add of the same folder again: {time.perf_counter() - started:.2f} s")
        queries = {
            "words 'boss'": LibraryQuery(text="boss"),
            "'boss' 140-160 BPM, E minor, loop": LibraryQuery(text="boss", bpm_min=140, bpm_max=160, key="E minor",
                                                              loop=True),
            "style rock, instrument drums": LibraryQuery(style="rock", instrument="drums"),
            "newest 50, no filter": LibraryQuery(),
        }
        worst = 0.0
        for name, query in queries.items():
            found = len(library.search(query))
            seconds = median_s(lambda: library.search(query), args.repeats)
            worst = max(worst, seconds)
            print(f"search {name}: {1000 * seconds:.1f} ms median ({found} cues listed)")
        print(f"slowest search {1000 * worst:.1f} ms at {args.cues} cues; goal {1000 * GOAL_S:.0f} ms: "
              f"{'met' if worst <= GOAL_S else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
