"""SketchBackend: the procedural arranger behind the backend protocol (see ../base.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from acestep_core.backends.base import BackendInfo, RawAudio
from acestep_core.backends.sketch.arrangement import (
    MusicalChoices, arrange, candidate_parts, choose_musical_choices, seeded_stream,
)
from acestep_core.backends.sketch.mixing import part_track, render_candidate
from acestep_core.backends.sketch.synthesis import SAMPLE_RATE
from acestep_core.backends.sketch.words import not_rendered
from acestep_core.errors import BackendUnavailable, GenerationCancelled
from acestep_core.keywords import PromptTags, parse_prompt
from acestep_core.musical_plan import TempoKeyPlan, plan_tempo_and_key
from acestep_core.progress import CancelCheck, Progress, ProgressCallback, step_stage
from acestep_core.request import GenerationRequest

LABEL = "sketch (procedural, no ML model)"


class SketchBackend:
    """A deterministic arranger: chords in the key, bass, drums and a lead at the exact tempo.

    Needs no weights and loads instantly. Tempo, key, style and length come from the
    request and its prompt and are shared by all candidates; everything a seed decides
    (progressions, voicings, grooves, fills, the melody, the sounds' noise) comes from
    numpy.random.default_rng streams of that seed alone (arrangement.seeded_stream), so
    the same seed gives the same samples, bit for bit.

    Length: the cue is exactly round(duration * SAMPLE_RATE) frames (44.1 kHz), and its bars are exact at
    the tempo from frame 0. How it ends is what a musician would do with that length:
    - a whole number of bars: the groove runs to the bar line (a 5 ms declick);
    - otherwise the groove stops at the last whole bar and a final tonic chord rings
      through the part bar that is left, fading over its second half;
    - a part bar under one beat is too short to ring: the groove plays through it and
      fades over its last beat;
    - a loop request (request.loop): the groove runs to the last frame untouched, because
      the finishing step folds what follows the loop over its start.
    request.intensity (0..1) plays every section at one energy (sparse, groove, full),
    with the same song underneath: the layers of a dynamic-music set.
    """

    name = "sketch"

    def load(self, on_progress: ProgressCallback | None = None) -> None:
        return None

    def unload(self) -> None:
        return None

    @property
    def loaded(self) -> bool:
        return True

    def describe(self) -> BackendInfo:
        return BackendInfo(
            name=self.name, label=LABEL, model_path=None, model_id=None, device="cpu", dtype="float32",
            loaded=True, defaults={}, supports_tasks=("text2music",), supports_stems=True,
            loops_on_grid=True,
        )

    def generate(self, request: GenerationRequest, seeds: list[int], on_progress: ProgressCallback,
                 is_cancelled: CancelCheck) -> RawAudio:
        if request.task != "text2music":
            raise BackendUnavailable(
                f"the {request.task} task needs the ACE-Step model; the sketch backend only writes new music. "
                "Run 'acestep-dcc download-model', then pass --model or set ACESTEP_DCC_MODEL"
            )
        if len(seeds) != request.candidates:
            raise ValueError(f"expected one seed per candidate ({request.candidates}), got {len(seeds)}")
        tags = parse_prompt(request.prompt)
        choices = choose_musical_choices(request, tags)
        # A take may play some of the style's optional parts too (arrangement.candidate_parts).
        steps_per_candidate = len(choices.parts) + len(choices.style.optional) + 1
        total = steps_per_candidate * len(seeds)
        done = 0

        def step_done() -> None:
            nonlocal done
            done = min(done + 1, total)
            on_progress(Progress(step_stage(done, total), done / total))

        # Each candidate is mixed straight into its row: the cue is never copied. The rows
        # are (channels, frames) views of interleaved frames, the layout files and
        # finishing use, so finishing at this rate takes them as they are (no transpose).
        samples = np.empty((len(seeds), choices.frames, 2), dtype=np.float32).transpose(0, 2, 1)
        stems = _stem_arrays(request, choices, len(seeds))
        arrangements = []
        for k, (row, seed) in enumerate(zip(samples, seeds)):
            if is_cancelled():
                raise GenerationCancelled()
            started = done
            arrangement = arrange(choices, seed)
            # The optional parts this take leaves out count as done first, so the mix stays the last step.
            for _ in range(steps_per_candidate - 1 - len(candidate_parts(choices, seed))):
                step_done()
            render_candidate(arrangement, choices, seeded_stream(seed, "sound"), step_done, is_cancelled, out=row,
                             stems_out=None if stems is None else {track: rows[k] for track, rows in stems.items()})
            # A step with nothing to do (a drum part with no hits) still counts.
            while done < started + steps_per_candidate:
                step_done()
            arrangements.append({"seed": int(seed), **arrangement.summary})
        settings = _settings(request, choices, tags, arrangements, [candidate_parts(choices, seed) for seed in seeds])
        if stems is not None:
            played = _played_tracks(choices)
            settings["stems"] = list(stems)
            # Which of the arrangement's parts each stem plays, and from which energy (0 intro,
            # 1 verse, 2 chorus) each comes in: a dynamic-music set orders its layers by them.
            settings["stem_parts"] = {track: [{"role": part.role, "min_energy": part.min_energy}
                                              for part in choices.parts if part_track(part) == track]
                                      for track in stems}
            left_out = [track for track in played if track not in stems]
            missing = [track for track in (request.tracks or []) if track not in played]
            if left_out or missing:
                settings["stems_note"] = "; ".join(
                    ([f"the stems leave out {', '.join(left_out)} (not asked for)"] if left_out else [])
                    + ([f"this sketch plays no {', '.join(missing)}"] if missing else []))
        return RawAudio(samples, SAMPLE_RATE, settings=settings, stems=stems)


def _played_tracks(choices: MusicalChoices) -> list[str]:
    """The tracks (ACE-Step's names) the sketch's parts play on, in the arrangement's order."""
    return list(dict.fromkeys(part_track(part) for part in choices.parts))


def _stem_arrays(request: GenerationRequest, choices: MusicalChoices, candidates: int) -> dict | None:
    """Zeroed (candidates, 2, frames) arrays for the stems asked for (request.tracks, else
    every track the sketch plays); None without request.stems."""
    if not request.stems:
        return None
    wanted = request.tracks or None
    return {track: np.zeros((candidates, 2, choices.frames), dtype=np.float32)
            for track in _played_tracks(choices) if wanted is None or track in wanted}


def _settings(request: GenerationRequest, choices: MusicalChoices, tags: PromptTags, arrangements: list[dict],
              parts_by_take: list) -> dict:
    """What the sketch chose, JSON-able, for the sidecar. `not_rendered`: the prompt's
    library words this cue does not play (words.not_rendered); the sidecar repeats it at
    its top level, the CLI and the hosts say it."""
    unplayed = not_rendered(tags, _words_plan(request, choices, tags, arrangements[0]["seed"]), choices.style.style_id, choices.style_from,
                            parts_by_take, choices.style.kit)
    if choices.sparse and "ballad" in unplayed:
        unplayed.remove("ballad")  # it thinned the arrangement, whatever style plays
    settings = {
        "bpm": choices.bpm,
        "bpm_from": choices.bpm_from,
        "key": choices.key,
        "key_from": choices.key_from,
        "time_signature": choices.time_signature,
        "time_signature_from": choices.time_signature_from,
        "beats_per_bar": choices.beats_per_bar,
        "style": choices.style.style_id,
        "style_from": choices.style_from,
        "bars": choices.bars_covering,
        "groove_bars": choices.groove_bars,
        "bar_seconds": choices.bar_frames / SAMPLE_RATE,
        "ending": choices.ending,
        "whole_bars": choices.ending == "whole bars",
        "energy": "by section" if choices.energy is None else choices.energy,
        "parts": [f"{p.role}: {p.patch or p.writer}" for p in choices.parts],
        "drum_kit": choices.style.kit,
        "instruments_added": list(choices.instruments_added),
        "instruments_removed": list(choices.instruments_removed),
        "sparse": choices.sparse,
        "not_rendered": unplayed,
        "prompt_tags": tags.to_dict(),
        "arrangements": arrangements,
    }
    if request.lyrics.strip():
        settings["lyrics"] = "not sung: the sketch backend has no voice"
    return settings


def _words_plan(request: GenerationRequest, choices: MusicalChoices, tags: PromptTags, seed: int) -> TempoKeyPlan:
    """The plan as the prompt alone makes it, for what the prompt's words decided.

    Generation hands the backend a planned request (musical_plan.planned_request), so its
    bpm, key and meter all read "request"; the prompt's own plan, where it chose what the
    cue plays, says which words chose it. Where the request's value differs, it was asked."""
    own = plan_tempo_and_key(replace(request, bpm=None, key=None, time_signature=None), tags,
                             seed=seed)
    return replace(
        own,
        bpm_from=own.bpm_from if own.bpm == choices.bpm else "request",
        key_from=own.key_from if own.key == choices.key else "request",
        time_signature_from=own.time_signature_from if own.time_signature == choices.time_signature else "request",
    )
