"""The originality check's speed: query time per minute of query audio, on one core,
against a library of 1,000 references. Goal: <= 1 s per minute.

    .venv/bin/python bench/bench_originality.py [--references 1000] [--seconds 30]
        [--queries 6] [--query-seconds 60] [--workers 2] [--folder DIR]

The references are synthesised music, cheap and all different: for each one a random
key, tempo (70-170 BPM), chord progression, bass line and melody, played by additive
synth voices, written as 22.05 kHz mono FLAC into --folder (default: a temporary folder;
a folder given is kept, and indexed again only where files changed). The index is built
with ReferenceIndex.update in --workers processes (timed, printed per reference).

Then, in this process pinned to one CPU with one BLAS thread, each query runs as
`acestep-dcc check` does once the index is loaded: read the file, compute its features,
search the index and verify the best references. Half the queries are copies of a
reference (moved +1 semitone and 6 % faster by resampling, gain -6 dB, an excerpt of
20 s inside unrelated music), half unrelated music; the bench prints whether each was
flagged, so a fast but blind check shows.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: one core means one BLAS thread too
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from acestep_core.originality import THRESHOLD, ReferenceIndex  # noqa: E402
from acestep_core.originality.check import search  # noqa: E402
from acestep_core.originality.features import features_of_file  # noqa: E402

RATE = 22050
MAJOR, MINOR = [0, 2, 4, 5, 7, 9, 11], [0, 2, 3, 5, 7, 8, 10]
TABLE = 2048


def synthesise(seed: int, seconds: float) -> np.ndarray:
    """A random tune: chords, bass and melody in one key at one tempo (float32 mono)."""
    rng = np.random.default_rng(seed)
    scale = MAJOR if rng.random() < 0.5 else MINOR
    tonic = 48 + int(rng.integers(0, 12))
    beat = 60.0 / rng.uniform(70, 170)
    progression = rng.choice(7, size=int(rng.choice([4, 8])))  # scale degrees, one chord per bar
    out = np.zeros(int(seconds * RATE) + RATE, np.float32)
    # One wavetable per voice (5 harmonics, random brightness): a lookup per sample
    # instead of five sines keeps 1,000 references to a minute or two.
    cycle = np.arange(TABLE) / TABLE
    tables = [sum(b ** (h - 1) * np.sin(2 * np.pi * h * cycle) for h in range(1, 6)).astype(np.float32)
              for b in rng.uniform(0.3, 0.8, size=3)]

    def note(midi: float, start: float, length: float, level: float, voice: int) -> None:
        begin, count = int(start * RATE), int(length * RATE)
        if begin >= len(out) or count <= 0:
            return
        count = min(count, len(out) - begin)
        t = np.arange(count, dtype=np.float32) / RATE
        f0 = 440.0 * 2 ** ((midi - 69) / 12)
        wave = tables[voice][(t * (f0 * TABLE)).astype(np.int64) % TABLE]
        envelope = np.minimum(1.0, t / 0.01) * np.exp(-t * 2.5)
        out[begin: begin + count] += level * wave * envelope

    def pitch(degree: int, octave: int = 0) -> int:
        return tonic + scale[degree % 7] + 12 * (degree // 7 + octave)

    bar, t, k = 4 * beat, 0.0, 0
    while t < seconds:
        root = int(progression[k % len(progression)])
        for d in (0, 2, 4):
            note(pitch(root + d), t, bar, 0.12, 0)
        for b in range(4):
            note(pitch(root, -1), t + b * beat, beat * 0.9, 0.2, 1)
        step, degree = 0.0, root + 7
        while step < bar:
            length = beat * float(rng.choice([0.5, 0.5, 1.0, 1.5]))
            degree += int(rng.choice([-2, -1, 1, 2, 0, 3, -3]))
            degree = int(np.clip(degree, 5, 16))
            note(pitch(degree), t + step, length * 0.95, 0.25, 2)
            step += length
        t, k = t + bar, k + 1
    out = out[: int(seconds * RATE)]
    return (0.5 * out / max(1e-6, np.abs(out).max())).astype(np.float32)


def write_reference(job: tuple[Path, int, float]) -> None:
    path, seed, seconds = job
    if not path.exists():
        sf.write(str(path), synthesise(seed, seconds), RATE, subtype="PCM_16")


def make_queries(folder: Path, count: int, seconds: float, reference_seconds: float) -> list[tuple[Path, str]]:
    """Copies of references (seeds 0, 1, ...) and unrelated tunes (seeds from 10**6)."""
    import soxr

    queries = []
    for k in range(count):
        path = folder / f"query{k}.flac"
        if k % 2 == 0:
            kind = ["moved", "quieter", "excerpt"][(k // 2) % 3]
            original = synthesise(k, reference_seconds)
            if kind == "moved":  # resampled: +1 semitone and 6 % faster together
                copy = soxr.resample(original, RATE * 2 ** (1 / 12), RATE).astype(np.float32)
            elif kind == "quieter":
                copy = original * 10 ** (-6 / 20)
            else:
                copy = original[int(5 * RATE): int(25 * RATE)]
            filler = synthesise(10**6 + k, seconds)
            audio = np.concatenate([copy, filler])[: int(seconds * RATE)]
            audio = np.pad(audio, (0, max(0, int(seconds * RATE) - len(audio))))
            label = f"copy of ref{k:05d} ({kind})"
        else:
            audio, label = synthesise(10**6 + k, seconds), "unrelated"
        sf.write(str(path), audio, RATE, subtype="PCM_16")
        queries.append((path, label))
    return queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--references", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each reference")
    parser.add_argument("--queries", type=int, default=6)
    parser.add_argument("--query-seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for building the index")
    parser.add_argument("--folder", help="keep the references (and the index) here")
    args = parser.parse_args()

    temporary = None if args.folder else tempfile.TemporaryDirectory(prefix="bench-originality-")
    root = Path(args.folder or temporary.name)
    library = root / "references"
    library.mkdir(parents=True, exist_ok=True)
    jobs = [(library / f"ref{k:05d}.flac", k, args.seconds) for k in range(args.references)]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        list(pool.map(write_reference, jobs, chunksize=8))
    print(f"synthesised {args.references} references of {args.seconds:g} s in {time.perf_counter() - started:.1f} s")

    index = ReferenceIndex(root / "index.sqlite")
    started = time.perf_counter()
    report = index.update(library, workers=args.workers)
    took = time.perf_counter() - started
    if report.computed:
        print(f"indexed {len(report.computed)} references in {took:.1f} s with {args.workers} processes: "
              f"{took * args.workers / len(report.computed):.3f} CPU-s per reference "
              f"({took * args.workers / len(report.computed) / args.seconds * 60:.2f} s per minute of audio)")
    update_again = time.perf_counter()
    again = index.update(library)
    print(f"update with nothing changed: {time.perf_counter() - update_again:.2f} s ({again.unchanged} unchanged)")

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    started = time.perf_counter()
    references = index.references(library)
    load_s = time.perf_counter() - started
    print(f"loaded the index of {len(references.paths)} references ({references.patches.shape[0]} patches) in "
          f"{load_s:.2f} s (once per check run)")
    queries = make_queries(root, args.queries, args.query_seconds, args.seconds)
    features_of_file(queries[0][0])  # warm up: librosa's numba kernels compile or load on first use
    search(features_of_file(queries[0][0]), references)

    per_minute, rows = [], []
    for path, label in queries:
        started = time.perf_counter()
        features = features_of_file(path)
        analysed = time.perf_counter()
        matches = search(features, references)
        done = time.perf_counter()
        total = done - started
        per_minute.append(total / (features.duration / 60))
        top = matches[0] if matches else None
        rows.append((label, features.duration, analysed - started, done - analysed, total,
                     f"{Path(top.reference).stem} {top.score:.3f}" if top else "-", bool(top and top.flagged)))
    print(f"\none core, {len(references.paths)} references, threshold {THRESHOLD}, load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs:")
    print(f"{'query':32} {'audio s':>8} {'features':>9} {'search':>8} {'total':>7}  best match      flagged")
    for label, seconds, feats, found, total, best, flagged in rows:
        print(f"{label:32} {seconds:8.1f} {feats:9.3f} {found:8.3f} {total:7.3f}  {best:15} {flagged}")
    print(f"\nquery time per minute of audio: median {statistics.median(per_minute):.3f} s, "
          f"max {max(per_minute):.3f} s (goal <= 1 s), plus {load_s:.2f} s to load the index once")
    copies_found = sum(flagged for (label, *_, flagged) in rows if label.startswith("copy"))
    false_alarms = sum(flagged for (label, *_, flagged) in rows if label == "unrelated")
    print(f"copies flagged: {copies_found} of {sum(1 for r in rows if r[0].startswith('copy'))}; "
          f"unrelated flagged: {false_alarms} of {sum(1 for r in rows if r[0] == 'unrelated')}")
    if temporary is not None:
        temporary.cleanup()


if __name__ == "__main__":
    main()
