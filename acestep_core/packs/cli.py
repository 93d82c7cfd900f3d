"""`acestep-dcc packs list|install|remove|zip|train` (the parser and the handlers)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_USAGE = 2


def add_packs_commands(commands) -> None:
    packs = commands.add_parser("packs", help="style packs (LoRA): list, install, remove, zip to share, train")
    actions = packs.add_subparsers(title="actions", metavar="ACTION")
    packs.set_defaults(handler=lambda _: packs.print_help(sys.stderr) or EXIT_USAGE)

    listing = actions.add_parser("list", help="the installed packs, with their base checkpoint and licence")
    listing.add_argument("--json", action="store_true", help="print them as JSON on stdout")
    listing.set_defaults(handler=run_list)

    install = actions.add_parser("install", help="install a pack from its folder or its .zip")
    install.add_argument("source", metavar="PATH_OR_ZIP")
    install.add_argument("--replace", action="store_true", help="replace an installed pack of the same name")
    install.set_defaults(handler=run_install)

    remove = actions.add_parser("remove", help="remove an installed pack")
    remove.add_argument("name")
    remove.set_defaults(handler=run_remove)

    share = actions.add_parser("zip", help="zip an installed pack into one file to share (its licence goes with it)")
    share.add_argument("name")
    share.add_argument("-o", "--output", help="the .zip to write (default: NAME.zip here)")
    share.set_defaults(handler=run_zip)

    train = actions.add_parser("train", help="train a pack (LoRA) from a folder of your own music")
    train.add_argument("dir", help="the music (.wav, .flac, .ogg, .mp3); captions from each file's sidecar, "
                                   "else captions.csv (columns file,caption), else the file name")
    train.add_argument("--name", required=True, help="the pack's name, e.g. chiptune")
    train.add_argument("-o", "--output", help="the pack folder to write (default: ./NAME); checkpoints go "
                                              "beside it in NAME-checkpoints/")
    train.add_argument("--steps", type=int, default=500, help="training steps (default: 500)")
    train.add_argument("--rank", type=int, default=8, help="LoRA rank (default: 8)")
    train.add_argument("--alpha", type=int, default=16, help="LoRA alpha (default: 16)")
    train.add_argument("--learning-rate", type=float, default=1e-4, help="AdamW learning rate (default: 1e-4)")
    train.add_argument("--seconds", type=float, default=30.0, help="seconds of each file to learn from (default: 30)")
    train.add_argument("--save-every", type=int, default=50, help="checkpoint every N steps (default: 50)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--licence", default=None, help="the pack's licence, e.g. CC-BY-4.0 (recorded in pack.json)")
    train.add_argument("--description", default="")
    train.add_argument("--trigger", default="", metavar="WORD,WORD",
                       help="trigger words added to prompts that use the pack")
    train.add_argument("--no-install", action="store_true", help="write the pack folder only")
    train.add_argument("--model", help="the base checkpoint (default: $ACESTEP_DCC_MODEL or the configured one)")
    train.add_argument("--device", help="cuda, mps or cpu (default: the best available, as the worker's)")
    train.set_defaults(handler=run_train)


def run_list(args: argparse.Namespace) -> int:
    from acestep_core.packs import PackStore

    store = PackStore()
    packs = store.list()
    if args.json:
        print(json.dumps([pack.to_dict() for pack in packs], indent=2))
        packs = []  # the JSON said it all; problems still go to stderr
    elif not packs:
        print(f"no style packs installed in {store.folder}; 'acestep-dcc packs install PATH_OR_ZIP' adds one")
    for pack in packs:
        extras = []
        if pack.bpm_range:
            extras.append(f"bpm {pack.bpm_range[0]:g}-{pack.bpm_range[1]:g}")
        if pack.keys:
            extras.append("keys " + ", ".join(pack.keys))
        if pack.trigger_words:
            extras.append("trigger words " + ", ".join(pack.trigger_words))
        print(f"{pack.name}: {pack.description or '(no description)'}")
        print(f"  base {pack.base_checkpoint.get('name')}; licence {pack.licence}"
              + (f"; {'; '.join(extras)}" if extras else ""))
    for problem in store.problems():
        print(f"acestep-dcc: warning: {problem}", file=sys.stderr)
    return 0


def run_install(args: argparse.Namespace) -> int:
    from acestep_core.packs import PackStore

    pack = PackStore().install(args.source, replace=args.replace)
    print(f"acestep-dcc: installed {pack.name} (base {pack.base_checkpoint.get('name')}, licence {pack.licence}); "
          f"use it with generate --style {pack.name}", file=sys.stderr)
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from acestep_core.packs import PackStore

    PackStore().remove(args.name)
    print(f"acestep-dcc: removed {args.name}", file=sys.stderr)
    return 0


def run_zip(args: argparse.Namespace) -> int:
    from acestep_core.packs import PackStore

    path = PackStore().zip(args.name, args.output)
    print(f"acestep-dcc: wrote {path}; 'acestep-dcc packs install {path.name}' installs it", file=sys.stderr)
    return 0


def run_train(args: argparse.Namespace) -> int:
    from acestep_core.config import configured_model
    from acestep_core.errors import BackendUnavailable
    from acestep_core.packs import PackStore
    from acestep_core.packs.manifest import check_pack_name
    from acestep_core.packs.train import TrainingOptions, find_examples

    check_pack_name(args.name)
    model = configured_model(args.model)
    if model is None:
        raise BackendUnavailable("training needs the base checkpoint the pack is for: pass --model DIR, set "
                                 "ACESTEP_DCC_MODEL, or run 'acestep-dcc download-model' first")
    options = TrainingOptions(
        name=args.name, steps=args.steps, rank=args.rank, alpha=args.alpha, learning_rate=args.learning_rate,
        seconds=args.seconds, save_every=args.save_every, seed=args.seed, description=args.description,
        trigger_words=[word.strip() for word in args.trigger.split(",") if word.strip()],
        **({"licence": args.licence} if args.licence else {}))
    examples = find_examples(args.dir)  # before torch loads: a wrong folder costs nothing
    print(f"acestep-dcc: learning from {len(examples)} file(s) in {args.dir}", file=sys.stderr)
    output = Path(args.output).expanduser() if args.output else Path.cwd() / args.name
    from acestep_core.cli import _run_with_progress
    from acestep_core.packs.train import train_pack

    def say(text: str) -> None:
        print(f"acestep-dcc: {text}", file=sys.stderr, flush=True)

    from acestep_core.errors import GenerationCancelled

    try:
        pack = _run_with_progress(lambda on_progress, is_cancelled: train_pack(
            args.dir, model, output, options, device=args.device, on_progress=on_progress,
            is_cancelled=is_cancelled, on_line=say))
    except GenerationCancelled as exc:  # its sentence says how to resume
        say(str(exc))
        return 130
    say(f"wrote the pack {pack.folder}")
    if not args.no_install:
        installed = PackStore().install(pack.folder, replace=True)
        say(f"installed {installed.name}; use it with generate --style {installed.name}")
    return 0
