"""Installed style packs: one folder per pack under the data folder's packs/.

install (a folder or a zip), list, remove, and zip for sharing. Standard library only.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from acestep_core.config import app_home
from acestep_core.packs.manifest import (
    LICENCE_FILE,
    MANIFEST_NAMES,
    PackError,
    PackNotFound,
    StylePack,
    check_pack_name,
    read_pack,
)

PACKS_FOLDER = "packs"
MAX_ZIP_BYTES = 2 * 1024**3  # unpacked; a rank-64 LoRA of the XL DiT is a few hundred MB


def packs_dir() -> Path:
    return app_home() / PACKS_FOLDER


class PackStore:
    """The packs in one folder (default: the user's data folder's packs/)."""

    def __init__(self, folder: str | os.PathLike | None = None):
        self.folder = Path(folder) if folder is not None else packs_dir()

    def list(self) -> list[StylePack]:
        """Every readable pack, by name; a broken folder is skipped (see problems())."""
        return [pack for pack in (self._try_read(path) for path in self._pack_folders()) if pack is not None]

    def problems(self) -> list[str]:
        """One sentence per pack folder that cannot be read."""
        found = []
        for path in self._pack_folders():
            try:
                read_pack(path)
            except PackError as exc:
                found.append(str(exc))
        return found

    def get(self, name: str) -> StylePack:
        check_pack_name(name)
        path = self.folder / name
        if not path.is_dir():
            known = ", ".join(pack.name for pack in self.list()) or "none"
            raise PackNotFound(f"no style pack named {name!r} is installed (installed: {known}); "
                               "install it with 'acestep-dcc packs install PATH_OR_ZIP'")
        return read_pack(path)

    def install(self, source: str | os.PathLike, replace: bool = False) -> StylePack:
        """Copy the pack in `source` (a folder or a .zip) in; refuses a name already there unless `replace`."""
        source = Path(source).expanduser()
        if not source.exists():
            raise PackError(f"{source} does not exist; pass a pack folder or a pack .zip")
        self.folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.folder, prefix=".installing-") as scratch:
            staged = Path(scratch) / "pack"
            if source.is_dir():
                pack_root = source
            elif zipfile.is_zipfile(source):
                pack_root = _unzip(source, Path(scratch) / "unzipped")
            else:
                raise PackError(f"{source} is neither a folder nor a zip file; pass a pack folder or a pack .zip")
            pack = read_pack(pack_root)
            target = self.folder / pack.name
            if target.exists() and not replace:
                raise PackError(f"a style pack named {pack.name!r} is already installed; remove it first "
                                f"('acestep-dcc packs remove {pack.name}') or pass --replace")
            shutil.copytree(pack_root, staged, symlinks=False)
            if target.exists():
                shutil.rmtree(target)
            os.replace(staged, target)
        return read_pack(target)

    def remove(self, name: str) -> None:
        check_pack_name(name)
        path = self.folder / name
        if not path.is_dir():
            raise PackNotFound(f"no style pack named {name!r} is installed; 'acestep-dcc packs list' shows them")
        shutil.rmtree(path)

    def zip(self, name: str, destination: str | os.PathLike | None = None) -> Path:
        """One .zip that `packs install` takes: the pack's folder, and its licence in a LICENSE file."""
        pack = self.get(name)
        destination = Path(destination).expanduser() if destination else Path.cwd() / f"{name}.zip"
        if destination.is_dir():
            destination = destination / f"{name}.zip"
        if destination.suffix.lower() != ".zip":
            raise PackError(f"the pack's file must end in .zip, got {destination.name!r}")
        with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(pack.folder.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    archive.write(path, f"{name}/{path.relative_to(pack.folder).as_posix()}")
            if not (pack.folder / LICENCE_FILE).is_file():
                # The licence must travel with the adapter even when only pack.json stated it.
                archive.writestr(f"{name}/{LICENCE_FILE}", f"{pack.name}: {pack.licence}\n")
        return destination

    def _pack_folders(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(path for path in self.folder.iterdir()
                      if path.is_dir() and not path.name.startswith(".") and any(
                          (path / name).is_file() for name in MANIFEST_NAMES))

    @staticmethod
    def _try_read(path: Path) -> StylePack | None:
        try:
            return read_pack(path)
        except PackError:
            return None


def _unzip(archive_path: Path, into: Path) -> Path:
    """Extract a pack zip safely; returns the folder holding its manifest.

    zipfile's extract already strips '..' and absolute parts; refusing them outright
    says the archive is not a pack rather than writing it somewhere unexpected.
    """
    with zipfile.ZipFile(archive_path) as archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if sum(info.file_size for info in members) > MAX_ZIP_BYTES:
            raise PackError(f"{archive_path} unpacks to more than {MAX_ZIP_BYTES // 1024**3} GB; that is not a style pack")
        for info in members:
            parts = PurePosixPath(info.filename).parts
            if info.filename.startswith("/") or ".." in parts or (info.external_attr >> 28) == 0o12:
                raise PackError(f"{archive_path} holds {info.filename!r}, a path outside the pack; "
                                "it is not a pack zip made by 'acestep-dcc packs zip'")
        archive.extractall(into, members=members)
    for candidate in [into, *sorted(path for path in into.iterdir() if path.is_dir())]:
        if any((candidate / name).is_file() for name in MANIFEST_NAMES):
            return candidate
    raise PackError(f"{archive_path} has no pack.json or pack.toml at its top or in one folder; "
                    "it is not a style pack zip")
