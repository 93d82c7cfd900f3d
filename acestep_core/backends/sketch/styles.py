"""The styles the sketch backend plays: tempo and key habits, progressions, drum kit and
groove, and the parts (which note writer plays which patch in which register)."""

from __future__ import annotations

from dataclasses import dataclass



@dataclass(frozen=True)
class Part:
    """One line of the arrangement.

    `role` groups parts for the prompt's instrument words ("no drums", "no bass");
    `writer` names the note writer in arrangement.WRITERS; `patch` names the sound in
    instruments.PATCHES; notes stay in [low, high]. A part plays in sections whose energy
    (0 intro/breakdown, 1 verse, 2 chorus) is at least `min_energy`. Parts on the
    "ducked" bus pump under the kick. `echo` is (delay in beats, feedback, repeats).
    """

    role: str
    writer: str
    patch: str = ""
    low: int = 48
    high: int = 72
    min_energy: int = 0
    bus: str = "dry"
    level: float = 1.0
    echo: tuple[float, float, int] | None = None


@dataclass(frozen=True)
class Progressions:
    """Four-chord progressions in one mode, as Roman numerals.

    `home` progressions hold the tonic twice: verses, intros and short cues use them to
    set up the key. Choruses may also take an `away` one, which travels further.
    """

    home: tuple[tuple[str, ...], ...]
    away: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class StyleSpec:
    """How one style plays. `tonics` are the pitch classes it favours when no key is asked."""

    style_id: str
    default_bpm: float
    default_mode: str
    tonics: tuple[int, ...]
    major: Progressions
    minor: Progressions
    kit: str
    groove: str
    parts: tuple[Part, ...]
    bars_per_chord: int = 1
    swing: float = 0.0  # 0 straight eighths .. 1 triplet eighths
    sidechain: float = 0.0  # how deep the kick ducks the "ducked" bus, 0..1
    reverb: str = "plate"
    # The palette a seed draws from (arrangement.candidate_parts): `alternatives` may stand
    # in for the style's part of the same role (on the same stem track), and each of the
    # `optional` parts plays in about half the takes. Both stay on tracks the style's own
    # parts play, so every take has the same stems.
    alternatives: tuple[Part, ...] = ()
    optional: tuple[Part, ...] = ()

    def progressions(self, minor: bool) -> Progressions:
        return self.minor if minor else self.major


DRUMS = Part("drums", "drums")

# Every progression opens on the tonic and heads back to it or to the dominant, so the
# key is heard as the key (i-VI-III-VII alone reads as its relative major).
_MINOR = Progressions(
    home=(("i", "VI", "VII", "i"), ("i", "iv", "V", "i"), ("i", "iv", "i", "V"), ("i", "iv", "VII", "i"),
          ("i", "VII", "iv", "i"), ("i", "VI", "V", "i")),
    away=(("i", "VI", "iv", "V"), ("i", "iv", "VI", "V"), ("i", "VII", "VI", "V"), ("i", "III", "iv", "V")),
)
_MAJOR = Progressions(
    home=(("I", "IV", "V", "I"), ("I", "IV", "I", "V"), ("I", "V", "IV", "I"), ("I", "ii", "V", "I"),
          ("I", "vi", "V", "I")),
    away=(("I", "V", "vi", "IV"), ("I", "vi", "IV", "V"), ("I", "IV", "vi", "V"), ("I", "IV", "ii", "V")),
)

STYLES: dict[str, StyleSpec] = {
    "rock": StyleSpec(
        "rock", 132.0, "minor", (4, 9, 2, 7),
        Progressions(_MAJOR.home + (("I", "bVII", "IV", "I"),), _MAJOR.away), _MINOR,
        kit="rock", groove="rock", reverb="room",
        parts=(
            DRUMS,
            Part("bass", "bass_eighths", "picked_bass", 35, 47),
            Part("chords", "power_chords", "power_chord", 40, 52, level=0.8),
            Part("pad", "sustain", "rock_organ", 55, 74, level=1.7),
            Part("lead", "melody", "lead_guitar", 64, 86, min_energy=2, echo=(0.75, 0.3, 2)),
        ),
        alternatives=(
            Part("bass", "octave_eighths", "picked_bass", 35, 47),
            Part("pad", "piano_rhythm", "piano", 55, 74, level=1.0),
            Part("lead", "melody", "lead_guitar", 60, 81, min_energy=2, echo=(0.5, 0.25, 2)),
        ),
        optional=(Part("arp", "arp16", "rock_organ", 60, 79, min_energy=2, level=0.6),),
    ),
    "synthwave": StyleSpec(
        "synthwave", 108.0, "minor", (9, 4, 2, 11),
        _MAJOR, _MINOR, kit="synthwave", groove="synthwave", sidechain=0.6, reverb="plate",
        parts=(
            DRUMS,
            Part("bass", "octave_eighths", "retro_bass", 35, 47, bus="ducked"),
            Part("chords", "sustain", "supersaw_pad", 55, 76, bus="ducked"),
            Part("arp", "arp16", "arp_pluck", 60, 84, min_energy=1, bus="ducked", level=0.8, echo=(0.75, 0.35, 2)),
            Part("lead", "melody", "square_lead", 67, 88, min_energy=2, echo=(0.75, 0.4, 3)),
        ),
        alternatives=(
            Part("bass", "bass_eighths", "retro_bass", 35, 47, bus="ducked"),
            Part("chords", "sustain", "soft_pad", 55, 76, bus="ducked", level=1.2),
            Part("arp", "arp16", "pulse_arp", 60, 84, min_energy=1, bus="ducked", level=0.7, echo=(0.75, 0.35, 2)),
            Part("lead", "melody", "pulse_lead", 67, 88, min_energy=2, level=0.8, echo=(0.75, 0.4, 3)),
        ),
        optional=(Part("pad", "bell_pulse", "glass_bell", 72, 91, min_energy=1, level=0.8),),
    ),
    "orchestral": StyleSpec(
        "orchestral", 100.0, "minor", (2, 0, 7, 9),
        _MAJOR, _MINOR, kit="orchestral", groove="orchestral", reverb="hall",
        parts=(
            DRUMS,
            Part("bass", "half_notes", "contrabass", 35, 47),
            Part("chords", "sustain", "string_ensemble", 50, 76),
            Part("arp", "ostinato", "string_staccato", 50, 67, min_energy=1, level=0.9),
            Part("lead", "melody", "horn", 58, 79, min_energy=2),
        ),
        alternatives=(
            Part("arp", "arp16", "string_staccato", 55, 74, min_energy=1, level=0.8),
            Part("lead", "melody", "horn", 53, 74, min_energy=2),
        ),
        optional=(Part("pad", "sustain", "horn", 48, 67, min_energy=1, level=0.6),),
    ),
    "chiptune": StyleSpec(
        "chiptune", 150.0, "major", (0, 7, 2, 5),
        _MAJOR, _MINOR, kit="chiptune", groove="chiptune", reverb="room",
        parts=(
            DRUMS,
            Part("bass", "chip_bounce", "nes_triangle", 36, 50),
            Part("chords", "chip_arp", "pulse_arp", 60, 79, level=0.8),
            Part("lead", "melody", "pulse_lead", 72, 91, min_energy=1, echo=(0.5, 0.3, 1)),
        ),
        alternatives=(
            Part("chords", "arp16", "pulse_arp", 60, 79, level=0.8),
            Part("chords", "stabs", "pulse_arp", 60, 79, level=0.9),
            Part("lead", "melody", "square_lead", 72, 91, min_energy=1, level=0.8, echo=(0.5, 0.3, 1)),
        ),
        optional=(Part("arp", "bell_pulse", "pulse_arp", 79, 96, min_energy=2, level=0.5),),
    ),
    "lofi": StyleSpec(
        "lofi", 80.0, "major", (5, 0, 10, 3, 7),
        Progressions(home=(("Imaj7", "IVmaj7", "Imaj7", "V7"), ("Imaj7", "ii7", "V7", "Imaj7")),
                     away=(("Imaj7", "vi7", "ii7", "V7"), ("Imaj7", "IVmaj7", "ii7", "V7"),
                           ("Imaj7", "vi7", "IVmaj7", "V7"))),
        Progressions(home=(("i7", "iv7", "i7", "V7"), ("i7", "iv7", "V7", "i7")),
                     away=(("i7", "iv7", "VImaj7", "V7"), ("i7", "VImaj7", "iv7", "V7"))),
        kit="lofi", groove="lofi", swing=0.6, reverb="room",
        parts=(
            DRUMS,
            Part("bass", "lofi_bass", "round_bass", 35, 47),
            Part("chords", "comp", "electric_piano", 50, 70),
            Part("lead", "melody", "soft_lead", 65, 84, min_energy=2, level=0.8),
            Part("texture", "crackle"),
        ),
        alternatives=(
            Part("chords", "comp", "piano", 50, 70, level=0.9),
            Part("lead", "melody", "glass_bell", 67, 86, min_energy=2, level=0.7),
        ),
        optional=(Part("arp", "bell_pulse", "glass_bell", 72, 91, min_energy=1, level=0.5),),
    ),
    "ambient": StyleSpec(
        "ambient", 70.0, "major", (2, 4, 9, 7, 0),
        Progressions(home=(("Iadd9", "IV", "I", "V"), ("I", "IV", "I", "V")),
                     away=(("I", "V", "vi", "IV"), ("Iadd9", "vi", "IV", "V"))),
        Progressions(home=(("i", "VI", "iv", "i"), ("i", "VI", "VII", "i")),
                     away=(("i", "iv", "VI", "V"), ("i", "VII", "VI", "iv"))),
        kit="none", groove="none", bars_per_chord=2, reverb="hall",
        parts=(
            Part("chords", "sustain", "evolving_pad", 50, 74, level=0.8),
            Part("pad", "drone", "sub_drone", 35, 47, level=0.8),
            Part("arp", "bell_pulse", "glass_bell", 67, 91, level=2.0, echo=(2.0, 0.35, 2)),
        ),
        alternatives=(
            Part("chords", "sustain", "soft_pad", 52, 76, level=0.9),
            Part("chords", "sustain", "supersaw_pad", 50, 72, level=0.5),
            Part("arp", "arp16", "glass_bell", 67, 91, level=1.2, echo=(2.0, 0.35, 2)),
            Part("arp", "bell_pulse", "arp_pluck", 60, 84, level=1.2, echo=(0.75, 0.35, 2)),
        ),
        optional=(
            Part("lead", "melody", "soft_lead", 62, 81, min_energy=1, level=0.6, echo=(1.0, 0.35, 2)),
            Part("arp", "chip_arp", "arp_pluck", 60, 84, min_energy=2, level=0.5, echo=(0.75, 0.3, 1)),
        ),
    ),
    "electronic": StyleSpec(
        "electronic", 124.0, "minor", (9, 5, 0, 7),
        _MAJOR, _MINOR, kit="electronic", groove="four_on_floor", sidechain=0.7, reverb="plate",
        parts=(
            DRUMS,
            Part("bass", "offbeat", "offbeat_bass", 38, 50, bus="ducked", level=0.7),
            Part("chords", "stabs", "stab", 55, 74, bus="ducked", level=1.2),
            Part("pad", "sustain", "soft_pad", 55, 76, min_energy=1, bus="ducked", level=0.8),
            Part("lead", "melody", "arp_pluck", 67, 88, min_energy=2, echo=(0.75, 0.35, 2)),
        ),
        alternatives=(
            Part("chords", "stabs", "supersaw_pad", 55, 74, bus="ducked", level=0.9),
            Part("pad", "sustain", "supersaw_pad", 55, 76, min_energy=1, bus="ducked", level=0.5),
            Part("lead", "melody", "square_lead", 67, 88, min_energy=2, level=0.8, echo=(0.75, 0.35, 2)),
        ),
        optional=(Part("arp", "arp16", "arp_pluck", 60, 84, min_energy=1, bus="ducked", level=0.6, echo=(0.75, 0.35, 2)),),
    ),
    "pop": StyleSpec(
        "pop", 110.0, "major", (0, 7, 2, 5, 9),
        _MAJOR, _MINOR, kit="pop", groove="pop", reverb="plate",
        parts=(
            DRUMS,
            Part("bass", "pop_bass", "pop_bass", 35, 47),
            Part("chords", "piano_rhythm", "piano", 52, 74),
            Part("pad", "sustain", "soft_pad", 55, 76, min_energy=2, level=0.6),
            Part("lead", "melody", "soft_lead", 67, 86, min_energy=2),
        ),
        alternatives=(
            Part("chords", "comp", "electric_piano", 52, 72),
            Part("pad", "sustain", "supersaw_pad", 55, 76, min_energy=2, level=0.4),
            Part("lead", "melody", "square_lead", 67, 86, min_energy=2, level=0.7),
        ),
        optional=(Part("arp", "bell_pulse", "glass_bell", 72, 91, min_energy=1, level=0.6),),
    ),
    "horror": StyleSpec(
        # Harmony that will not settle: the tonic with a minor ninth (a semitone cluster), the
        # Neapolitan a semitone up, the diminished chord on the tritone; a tonic-and-tritone
        # drone under it, two high notes a semitone apart rocking over it, a detuned music box.
        "horror", 66.0, "minor", (1, 6, 11, 4),
        Progressions(home=(("I", "bII", "Ib9", "#iv°"), ("I", "#iv°", "Ib9", "bII")),
                     away=(("I", "bVI", "#iv°", "bII"), ("Ib9", "bII", "bVI", "#iv°"))),
        Progressions(home=(("ib9", "bII", "ib9", "#iv°"), ("ib9", "#iv°", "ib9", "bII"), ("ib9", "bIIb9", "#iv°", "ib9")),
                     away=(("ib9", "bVI", "#iv°", "vii°"), ("ib9", "bII", "bVI", "#iv°"), ("ib9", "#iv°", "bII", "V"))),
        kit="none", groove="none", bars_per_chord=2, reverb="hall",
        parts=(
            Part("pad", "tritone_drone", "sub_drone", 33, 45, level=0.9),
            Part("chords", "sustain", "evolving_pad", 48, 70, level=0.8),
            Part("lead", "creep", "string_ensemble", 70, 86, min_energy=1, level=0.6),
            Part("arp", "bell_pulse", "music_box", 72, 91, level=1.3, echo=(2.0, 0.4, 2)),
        ),
        alternatives=(
            Part("chords", "sustain", "string_ensemble", 46, 70, level=0.6),
            Part("arp", "arp8", "music_box", 72, 91, level=0.9, echo=(2.0, 0.4, 2)),
        ),
        optional=(Part("arp", "bell_pulse", "glass_bell", 84, 100, min_energy=2, level=0.6, echo=(2.0, 0.4, 2)),),
    ),
    "folk": StyleSpec(
        "folk", 108.0, "major", (7, 2, 9, 0, 4),
        Progressions(_MAJOR.home + (("I", "IV", "I", "V"),), _MAJOR.away), _MINOR,
        kit="folk", groove="pop", reverb="room",
        parts=(
            DRUMS,
            Part("bass", "half_notes", "upright_bass", 35, 47),
            Part("chords", "strum", "acoustic_guitar", 40, 64),
            Part("lead", "melody", "fiddle", 62, 84, min_energy=1, level=0.9),
        ),
        alternatives=(
            Part("chords", "fingerpick", "acoustic_guitar", 43, 69),
            Part("lead", "melody", "fiddle", 67, 88, min_energy=1, level=0.8),
        ),
        optional=(Part("arp", "arp8", "harp", 55, 84, min_energy=2, level=0.6),),
    ),
    "jazz": StyleSpec(
        "jazz", 120.0, "major", (5, 10, 3, 0, 7),
        # The tonic as add9 more than maj7: Cmaj7 holds E minor whole, and reads as it.
        Progressions(home=(("Iadd9", "ii7", "V7", "Iadd9"), ("Iadd9", "vi7", "ii7", "V7"), ("Iadd9", "IV7", "ii7", "V7")),
                     away=(("Imaj7", "vi7", "ii7", "V7"), ("Iadd9", "VI7", "ii7", "V7"), ("Iadd9", "IVmaj7", "ii7", "V7"))),
        Progressions(home=(("i7", "iv7", "V7", "i7"), ("i7", "VImaj7", "ii°", "V7")),
                     away=(("i7", "iv7", "VII7", "IIImaj7"), ("i7", "VImaj7", "iv7", "V7"))),
        kit="brushes", groove="jazz", swing=0.65, reverb="room",
        parts=(
            DRUMS,
            Part("bass", "walking", "upright_bass", 31, 50),
            Part("chords", "comp", "piano", 50, 70, level=0.9),
            Part("lead", "melody", "saxophone", 55, 79, min_energy=1),
        ),
        alternatives=(
            Part("chords", "comp", "electric_piano", 50, 70),
            Part("lead", "melody", "saxophone", 60, 82, min_energy=1, echo=(0.75, 0.25, 1)),
        ),
    ),
}

# The stem each patch plays on, by ACE-Step's track names (request.TRACK_NAMES).
PATCH_TRACKS = {
    "supersaw_pad": "synth", "arp_pluck": "synth", "square_lead": "synth", "stab": "synth", "soft_pad": "synth",
    "pulse_lead": "synth", "pulse_arp": "synth", "soft_lead": "synth", "evolving_pad": "synth",
    "sub_drone": "synth", "glass_bell": "synth", "power_chord": "guitar", "lead_guitar": "guitar",
    "rock_organ": "keyboard", "electric_piano": "keyboard", "piano": "keyboard",
    "string_ensemble": "strings", "string_staccato": "strings", "horn": "brass",
    "acoustic_guitar": "guitar", "harp": "strings", "fiddle": "strings", "saxophone": "woodwinds", "flute": "woodwinds",
    "choir": "backing_vocals", "music_box": "synth",
}


def part_track(part: Part) -> str:
    """The stem a part plays on, by ACE-Step's track names (request.TRACK_NAMES)."""
    if part.role in ("drums", "bass"):
        return part.role
    if part.writer == "crackle":
        return "fx"
    return PATCH_TRACKS.get(part.patch, "synth")


# Parts the prompt's instrument words add when the style does not already play them.
ADDED_BY_WORD: dict[str, Part] = {
    "arpeggio": Part("arp", "arp16", "arp_pluck", 60, 84, min_energy=1, level=0.8, echo=(0.75, 0.35, 2)),
    "piano": Part("chords", "piano_rhythm", "piano", 52, 74, level=0.8),
    "electric piano": Part("chords", "comp", "electric_piano", 50, 70, level=0.8),
    "strings": Part("pad", "sustain", "string_ensemble", 50, 76, level=0.7),
    "bells": Part("arp", "bell_pulse", "glass_bell", 72, 91, min_energy=1, level=0.7),
    "organ": Part("pad", "sustain", "rock_organ", 55, 74, level=0.6),
    "vinyl crackle": Part("texture", "crackle"),
    "acoustic guitar": Part("chords", "strum", "acoustic_guitar", 40, 64, level=0.8),
    "harp": Part("arp", "arp8", "harp", 55, 84, level=0.8),
    "choir": Part("pad", "sustain", "choir", 52, 72, level=0.9),
    "brass": Part("pad", "sustain", "horn", 48, 67, min_energy=1, level=0.7),
    "violin": Part("lead", "melody", "fiddle", 62, 84, min_energy=1, level=0.8),
}

# Lead instruments a word asks for: the style's melody moves to that patch (in its range),
# or, where the style has no melody, a melody comes in from the verse.
LEAD_BY_WORD: dict[str, tuple[str, int, int]] = {
    "saxophone": ("saxophone", 55, 79), "flute": ("flute", 67, 91), "chiptune pulse": ("pulse_lead", 67, 91),
}

# Drum words that change the kit: (kit, the groove to play it with where the style has no drums).
KIT_BY_WORD: dict[str, tuple[str, str]] = {
    "brushed drums": ("brushes", "jazz"), "orchestral percussion": ("orchestral", "orchestral"),
    "timpani": ("orchestral", "orchestral"), "taiko": ("taiko", "orchestral"), "chiptune noise": ("chiptune", "chiptune"),
}
# A kit that can only play its own groove (the orchestral kit has no snare-and-hat backbeat).
KIT_GROOVES = {"orchestral": "orchestral", "taiko": "orchestral"}

# What "no <word>" takes out: parts with these roles, or playing these patches.
REMOVED_BY_WORD: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "drums": (frozenset({"drums"}), frozenset()),
    "percussion": (frozenset({"drums"}), frozenset()),
    "bass": (frozenset({"bass"}), frozenset()),
    "synth bass": (frozenset({"bass"}), frozenset()),
    "808": (frozenset({"bass"}), frozenset()),
    "lead": (frozenset({"lead"}), frozenset()),
    "synth lead": (frozenset({"lead"}), frozenset()),
    "pads": (frozenset({"pad"}), frozenset({"supersaw_pad", "soft_pad", "evolving_pad"})),
    "arpeggio": (frozenset({"arp"}), frozenset()),
    "strings": (frozenset(), frozenset({"string_ensemble", "string_staccato", "contrabass"})),
    "piano": (frozenset(), frozenset({"piano"})),
    "electric piano": (frozenset(), frozenset({"electric_piano"})),
    "guitar": (frozenset(), frozenset({"power_chord", "lead_guitar", "acoustic_guitar"})),
    "acoustic guitar": (frozenset(), frozenset({"acoustic_guitar"})),
    "saxophone": (frozenset(), frozenset({"saxophone"})),
    "flute": (frozenset(), frozenset({"flute"})),
    "harp": (frozenset(), frozenset({"harp"})),
    "choir": (frozenset(), frozenset({"choir"})),
    "brass": (frozenset(), frozenset({"horn"})),
    "violin": (frozenset(), frozenset({"fiddle"})),
    "electric guitar": (frozenset(), frozenset({"power_chord", "lead_guitar"})),
    "distorted guitar": (frozenset(), frozenset({"power_chord", "lead_guitar"})),
    "organ": (frozenset(), frozenset({"rock_organ"})),
    "bells": (frozenset(), frozenset({"glass_bell", "music_box"})),
    "vinyl crackle": (frozenset({"texture"}), frozenset()),
}
