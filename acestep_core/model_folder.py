"""ACE-Step model folders: check one before loading it, and download one from the Hub.

A model folder is a diffusers-format ACE-Step 1.5 repo (for example
ACE-Step/acestep-v15-xl-turbo-diffusers): model_index.json plus one folder per
component. The check reads only JSON and file names, so it runs in milliseconds and
without torch; `acestep-dcc doctor` and the acestep backend both use it, and every
problem it finds is one sentence that says what to do.

Standard library only at import; `download_model` imports huggingface_hub itself.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from acestep_core import config
from acestep_core.errors import (
    AceStepError,
    ModelDownloadFailed,
    ModelIncomplete,
    ModelNotFound,
    NotAnAceStepCheckpoint,
)
from acestep_core.progress import Progress

PIPELINE_CLASS = "AceStepPipeline"
MODEL_INDEX = "model_index.json"
# Written by download_model: which Hub repo (and commit) the folder came from.
DOWNLOAD_RECORD = "acestep-dcc-download.json"
REQUIRED_COMPONENTS = ("vae", "text_encoder", "tokenizer", "transformer", "condition_encoder", "scheduler")
# Optional in AceStepPipeline; the cover task needs both.
AUDIO_TOKENIZER_COMPONENTS = ("audio_tokenizer", "audio_token_detokenizer")
# Component libraries diffusers may import for this pipeline ("ace_step" is diffusers'
# own pipelines/ace_step module). Anything else would import code we never vetted.
KNOWN_LIBRARIES = ("diffusers", "transformers", "ace_step")
# What download_model fetches: weights in safetensors, configs, tokenizer files, the model card.
DOWNLOAD_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.jinja", "tokenizer*", "README.md", "LICENSE*", "LICENCE*", "COPYING*"]
DOWNLOADING = "downloading model"
_LIST_LIMIT = 4


@dataclass
class ComponentReport:
    """One pipeline component: the files it needs that are there, and those that are not."""

    name: str
    class_name: str
    library: str
    present: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "class_name": self.class_name,
            "library": self.library,
            "complete": self.complete,
            "present": list(self.present),
            "missing": list(self.missing),
        }


@dataclass
class ModelFolderReport:
    """What a model folder holds. `error` is the problem that makes it unusable, or None."""

    path: Path
    pipeline_class: str | None = None
    model_id: str | None = None
    # "turbo", "base" or "sft" (read from transformer/config.json), None when unreadable.
    variant: str | None = None
    components: list[ComponentReport] = field(default_factory=list)
    error: AceStepError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def is_turbo(self) -> bool:
        return self.variant == "turbo"

    @property
    def supports_cover(self) -> bool:
        complete = {c.name for c in self.components if c.complete}
        return all(name in complete for name in AUDIO_TOKENIZER_COMPONENTS)

    @property
    def supported_tasks(self) -> tuple[str, ...]:
        """The tasks this checkpoint runs: cover needs the audio tokenizer, and ACE-Step's
        turbo checkpoints were not trained for the base-only ones."""
        from acestep_core.request import BASE_ONLY_TASKS, TASKS

        return tuple(task for task in TASKS if (task != "cover" or self.supports_cover)
                     and not (self.is_turbo and task in BASE_ONLY_TASKS))

    @property
    def missing_files(self) -> list[str]:
        return [f"{c.name}/{name}" if name != MODEL_INDEX else name for c in self.components for name in c.missing]

    def raise_if_unusable(self) -> "ModelFolderReport":
        if self.error is not None:
            raise self.error
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "ok": self.ok,
            "problem": None if self.error is None else str(self.error),
            "problem_kind": None if self.error is None else type(self.error).__name__,
            "pipeline_class": self.pipeline_class,
            "model_id": self.model_id,
            "variant": self.variant,
            "supports_cover": self.supports_cover,
            "supported_tasks": list(self.supported_tasks),
            "components": [c.to_dict() for c in self.components],
        }


# -- checking a folder ------------------------------------------------------------------


def check_model_folder(path: str | os.PathLike) -> ModelFolderReport:
    """The report of a usable ACE-Step 1.5 folder; raises ModelNotFound, ModelIncomplete
    or NotAnAceStepCheckpoint (one sentence with the fix) when it is not usable."""
    return inspect_model_folder(path).raise_if_unusable()


def inspect_model_folder(path: str | os.PathLike) -> ModelFolderReport:
    """Like check_model_folder, but never raises for folder problems: the report's
    `error` says what is wrong and `components` which files are present or missing."""
    folder = Path(path).expanduser()
    report = ModelFolderReport(path=folder, model_id=read_model_id(folder))
    if not folder.exists():
        report.error = ModelNotFound(
            f"there is no model folder at {folder}; run 'acestep-dcc download-model' to fetch one, "
            "or pass --model with the folder that holds model_index.json"
        )
        return report
    if not folder.is_dir():
        report.error = ModelNotFound(
            f"{folder} is a file, not a model folder; pass --model with the folder that holds model_index.json"
        )
        return report

    index_path = folder / MODEL_INDEX
    if not index_path.is_file():
        nested = _nested_model_index(folder)
        if nested is not None:
            report.error = ModelNotFound(
                f"{folder} has no model_index.json but {nested.parent} does; pass --model {nested.parent}"
            )
        else:
            report.error = ModelIncomplete(
                f"{folder} has no model_index.json, so it is not a complete diffusers model folder; "
                "re-run 'acestep-dcc download-model' (it resumes) or pass --model with the right folder"
            )
        return report
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        if not isinstance(index, dict):
            raise ValueError("not a JSON object")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        report.error = ModelIncomplete(
            f"{index_path} cannot be read ({_reason(exc)}); re-run 'acestep-dcc download-model' to fetch it again"
        )
        return report

    report.pipeline_class = index.get("_class_name")
    if report.pipeline_class != PIPELINE_CLASS:
        what = f"a {report.pipeline_class} model" if report.pipeline_class else "a model_index.json without a pipeline class"
        report.error = NotAnAceStepCheckpoint(
            f"{folder} holds {what}, not ACE-Step 1.5; pass --model with an ACE-Step 1.5 diffusers folder "
            "such as one fetched by 'acestep-dcc download-model'"
        )
        return report

    listed = _listed_components(index)
    foreign = sorted(f"{name} ({library})" for name, (library, _) in listed.items() if library not in KNOWN_LIBRARIES)
    if foreign:
        report.error = NotAnAceStepCheckpoint(
            f"{index_path} names components from libraries acestep-dcc does not load ({', '.join(foreign)}); "
            "use an official ACE-Step 1.5 diffusers folder such as one fetched by 'acestep-dcc download-model'"
        )
        return report

    unlisted = [name for name in REQUIRED_COMPONENTS if name not in listed]
    for name, (library, class_name) in listed.items():
        report.components.append(_check_component(folder, name, library, class_name))
    report.variant = read_variant(folder, report.model_id)

    missing = [f"{name} (not in model_index.json)" for name in unlisted] + report.missing_files
    if missing:
        shown = ", ".join(missing[:_LIST_LIMIT])
        if len(missing) > _LIST_LIMIT:
            shown += f" and {len(missing) - _LIST_LIMIT} more"
        report.error = ModelIncomplete(
            f"{folder} is incomplete (missing {shown}); re-run 'acestep-dcc download-model' to fetch the missing files"
        )
    return report


def read_model_id(folder: Path) -> str:
    """The Hub repo the folder came from (recorded by download_model), else the folder name."""
    try:
        record = json.loads((folder / DOWNLOAD_RECORD).read_text(encoding="utf-8"))
        repo_id = record.get("repo_id") if isinstance(record, dict) else None
        if isinstance(repo_id, str) and repo_id:
            return repo_id
    except (OSError, UnicodeDecodeError, ValueError):
        pass
    return folder.name


def read_variant(folder: Path, model_id: str | None = None) -> str | None:
    """turbo, base or sft, from transformer/config.json as AceStepPipeline reads it.

    Repos converted before the config carried `is_turbo`/`model_version` fall back to
    the name: the official turbo repos all say "turbo" in theirs.
    """
    try:
        transformer_config = json.loads((folder / "transformer" / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(transformer_config, dict):
        return None
    version = transformer_config.get("model_version")
    if transformer_config.get("is_turbo") or version == "turbo":
        return "turbo"
    if isinstance(version, str) and version:
        return version
    if "is_turbo" in transformer_config:
        return "base"
    return "turbo" if "turbo" in (model_id or folder.name).lower() else "base"


def _listed_components(index: dict) -> dict[str, tuple[str, str]]:
    listed = {}
    for name, value in index.items():
        # Entries like ["diffusers", "AutoencoderOobleck"]; optional ones absent as [null, null].
        if name.startswith("_") or not isinstance(value, list) or len(value) != 2:
            continue
        library, class_name = value
        if isinstance(library, str) and isinstance(class_name, str):
            listed[name] = (library, class_name)
    return listed


def _check_component(folder: Path, name: str, library: str, class_name: str) -> ComponentReport:
    report = ComponentReport(name=name, class_name=class_name, library=library)
    component = folder / name
    files = {p.name for p in component.iterdir() if p.is_file()} if component.is_dir() else set()

    def need(*alternatives: str) -> None:
        found = [a for a in alternatives if a in files]
        if found:
            report.present.append(found[0])
        else:
            report.missing.append(" or ".join(alternatives))

    if library == "transformers" and "Tokenizer" in class_name:
        if "tokenizer.json" in files:
            report.present.append("tokenizer.json")
        else:
            need("vocab.json")
            need("merges.txt")
    elif class_name.endswith("Scheduler"):
        need("scheduler_config.json")
    else:
        need("config.json")
        report_weights(component, files, report)
    return report


def report_weights(component: Path, files: set[str], report: ComponentReport) -> None:
    """Safetensors weights: one file, or a sharded index whose every shard is present."""
    indexes = sorted(f for f in files if f.endswith(".safetensors.index.json"))
    if indexes:
        report.present.append(indexes[0])
        try:
            weight_map = json.loads((component / indexes[0]).read_text(encoding="utf-8"))["weight_map"]
            shards = sorted(set(weight_map.values()))
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            report.missing.append(f"a readable {indexes[0]} ({_reason(exc)})")
            return
        for shard in shards:
            (report.present if shard in files else report.missing).append(shard)
        return
    weights = sorted(f for f in files if f.endswith(".safetensors"))
    if weights:
        report.present.extend(weights)
    elif any(f.endswith(".bin") for f in files):
        report.missing.append("*.safetensors weights (only .bin found, which acestep-dcc does not load)")
    else:
        report.missing.append("*.safetensors weights")


def _nested_model_index(folder: Path) -> Path | None:
    """A model_index.json one or two levels down (a parent folder, or a Hub cache's snapshots/<hash>)."""
    for pattern in ("*/model_index.json", "*/*/model_index.json", "*/*/*/model_index.json"):
        found = sorted(folder.glob(pattern))
        if found:
            return found[0]
    return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON at line {exc.lineno}"
    if isinstance(exc, KeyError):
        return f"no {exc.args[0]!r} entry"
    return str(exc) or type(exc).__name__


# -- downloading --------------------------------------------------------------------------


def download_model(
    repo_id: str = config.DEFAULT_REPO_ID,
    dest: str | os.PathLike | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    *,
    endpoint: str | None = None,
    token: str | bool | None = None,
) -> Path:
    """Download an ACE-Step 1.5 diffusers repo into `dest` (default: the models folder).

    Only safetensors weights, JSON configs, tokenizer files and the model card are
    fetched. An interrupted download resumes. Returns the checked folder; raises
    ModelDownloadFailed (offline, unreachable Hub, unknown or gated repo, disk problem)
    or ModelIncomplete / NotAnAceStepCheckpoint when what arrived is not usable.
    `endpoint` and `token` default to huggingface_hub's own (HF_ENDPOINT, HF_TOKEN).
    """
    folder = Path(dest).expanduser() if dest is not None else config.default_model_dir(repo_id)
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ModelDownloadFailed(
            "downloading needs huggingface_hub; install the worker dependencies with 'pip install acestep-dcc[worker]'"
        ) from None

    if on_progress is not None:
        on_progress(Progress(DOWNLOADING, 0.0))
    failure: ModelDownloadFailed | None = None
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        snapshot_download(
            repo_id,
            local_dir=folder,
            allow_patterns=DOWNLOAD_PATTERNS,
            endpoint=endpoint,
            token=token,
            tqdm_class=_progress_bar_class(on_progress) if on_progress is not None else None,
        )
    except Exception as exc:  # every Hub failure becomes one sentence; see download_failure
        failure = download_failure(exc, repo_id, folder, endpoint)
    if failure is not None:
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # leave no empty folder behind that looks like a model
        # Raised outside the except block so no traceback chain reaches the user.
        raise failure

    _write_download_record(folder, repo_id)
    report = check_model_folder(folder)
    if on_progress is not None:
        on_progress(Progress(DOWNLOADING, 1.0))
    return report.path


def download_failure(exc: BaseException, repo_id: str, folder: Path, endpoint: str | None = None) -> ModelDownloadFailed:
    """One sentence with the fix for an exception raised by snapshot_download."""
    from huggingface_hub import errors as hub_errors
    from huggingface_hub.utils import OfflineModeIsEnabled

    page = f"https://huggingface.co/{repo_id}"
    hub = endpoint or os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    causes = _exception_chain(exc)

    def caused_by(kind: type) -> bool:
        return any(isinstance(e, kind) for e in causes)

    if caused_by(OfflineModeIsEnabled):
        message = (f"cannot download {repo_id} because Hugging Face downloads are switched off (HF_HUB_OFFLINE is set); "
                   "unset HF_HUB_OFFLINE, or copy the model folder from a machine that has it and pass --model")
    elif caused_by(hub_errors.GatedRepoError):
        message = (f"{repo_id} is a gated repo: accept its terms at {page} and log in with 'hf auth login', "
                   "then run download-model again")
    elif caused_by(hub_errors.RepositoryNotFoundError):
        message = (f"the Hugging Face Hub has no model {repo_id} (or it is private); check the name, "
                   f"for example {config.DEFAULT_REPO_ID}, and log in with 'hf auth login' if it is private")
    elif caused_by(hub_errors.RevisionNotFoundError):
        message = f"{repo_id} has no such revision on the Hugging Face Hub; download its main branch instead"
    elif caused_by(hub_errors.HFValidationError):
        message = f"{repo_id!r} is not a Hugging Face repo id; use the form owner/name, for example {config.DEFAULT_REPO_ID}"
    elif caused_by(hub_errors.LocalEntryNotFoundError):
        message = (f"cannot reach the Hugging Face Hub at {hub} to download {repo_id}; check the internet connection "
                   "(and HF_ENDPOINT or the proxy settings) and run download-model again, it resumes")
    elif caused_by(hub_errors.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        message = (f"the Hugging Face Hub refused the download of {repo_id}"
                   f"{f' (HTTP {status})' if status else ''}; try again later, it resumes")
    elif isinstance(exc, OSError):
        message = (f"cannot write the model into {folder} ({_reason(exc)}); free some disk space or choose "
                   "another folder with --dir, then run download-model again")
    else:
        message = f"downloading {repo_id} failed ({type(exc).__name__}: {exc}); run download-model again, it resumes"
    return ModelDownloadFailed(message)


def _exception_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


def _write_download_record(folder: Path, repo_id: str) -> None:
    record = {
        "repo_id": repo_id,
        "revision": _downloaded_commit(folder),
        "downloaded_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    (folder / DOWNLOAD_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _downloaded_commit(folder: Path) -> str | None:
    # huggingface_hub keeps one metadata file per downloaded file: commit hash, etag, time.
    metadata = folder / ".cache" / "huggingface" / "download" / f"{MODEL_INDEX}.metadata"
    try:
        commit = metadata.read_text(encoding="utf-8").splitlines()[0].strip()
    except (OSError, UnicodeDecodeError, IndexError):
        return None
    return commit or None


def _progress_bar_class(on_progress: Callable[[Progress], None]):
    """A huggingface_hub tqdm that also reports the bytes written as Progress."""
    from huggingface_hub.utils import tqdm as hub_tqdm

    reported = [0.0]

    class ReportingTqdm(hub_tqdm):
        def __init__(self, *args, **kwargs):
            # Only the bar of bytes written counts: the "Downloading bytes" transfer bar's
            # total is an estimate and the "Fetching N files" bar counts files. A bar that
            # tqdm disables (no terminal, as in the worker) stops counting, so count here.
            description = str(kwargs.get("desc") or "")
            self._counts_written_bytes = kwargs.get("unit") == "B" and not description.startswith("Downloading")
            self._written = kwargs.get("initial") or 0
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            self._written += n or 0
            if self._counts_written_bytes and self.total:
                fraction = min(1.0, float(self._written) / float(self.total))
                # The total grows as files start, so the raw fraction can step back.
                if fraction > reported[0]:
                    reported[0] = fraction
                    on_progress(Progress(DOWNLOADING, fraction))
            return super().update(n)

    return ReportingTqdm
