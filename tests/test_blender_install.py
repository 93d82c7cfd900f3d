"""The extension zip: what is in it, that Blender's own validator accepts it, that the
add-on runs on Blender's Python with nothing but the standard library from our side,
and `install_blender` with and without a Blender to install into."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from blender_fixtures import bpy

from acestep_core.install.blender import (
    MANUAL_STEPS,
    WORKER_PYTHON_STEP,
    build_extension_zip,
    check_host_imports,
    host_import_closure,
    install_blender,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
# What a host Python must never have to import because of us.
HEAVY_PACKAGES = ("numpy", "torch", "diffusers", "transformers", "safetensors", "accelerate", "soundfile",
                  "soxr", "pyloudnorm", "scipy", "fastapi", "uvicorn", "pydantic", "huggingface_hub")


@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory) -> Path:
    return build_extension_zip(tmp_path_factory.mktemp("zip"))


def test_zip_holds_the_addon_and_its_own_copy_of_the_core(extension_zip):
    assert extension_zip.name == "acestep_blender-0.1.0.zip"
    names = set(zipfile.ZipFile(extension_zip).namelist())
    assert {"blender_manifest.toml", "__init__.py", "panel.py", "operators.py", "preferences.py",
            "job_tracking.py", "strip_placement.py", "strip_records.py"} <= names
    for module in ("__init__", "client", "timeline", "keywords", "request", "jobs", "errors", "progress",
                   "output_names", "worker/discovery", "worker/__main__"):
        assert f"_vendor/acestep_core/{module}.py" in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert not (REPO_ROOT / "hosts" / "blender" / "acestep_blender" / "_vendor").exists(), \
        "the copy is made in the zip only; the repository keeps one acestep_core"


def test_zip_is_the_same_bytes_every_build(extension_zip, tmp_path):
    assert build_extension_zip(tmp_path).read_bytes() == extension_zip.read_bytes()


def test_blenders_own_validator_accepts_the_zip(extension_zip):
    validator = Path(bpy.utils.system_resource("SCRIPTS")) / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    done = subprocess.run([sys.executable, str(validator), "validate", str(extension_zip)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "Success" in done.stdout, done.stdout + done.stderr


def test_core_modules_blender_imports_are_standard_library_only():
    check_host_imports()
    closure = host_import_closure()
    assert {"acestep_core.client", "acestep_core.timeline", "acestep_core.keywords", "acestep_core.request",
            "acestep_core.jobs", "acestep_core.errors", "acestep_core.output_names",
            "acestep_core.worker.discovery"} <= set(closure)
    assert not any(m.startswith(("acestep_core.backends", "acestep_core.audio", "acestep_core.generation"))
                   for m in closure)


def test_addon_runs_on_blenders_python_with_only_its_zip(extension_zip, tmp_path):
    """A fresh Blender Python, the repository out of reach, and an import hook that fails
    any import of the heavy packages: the add-on must import and register anyway, using
    the acestep_core inside its zip."""
    extracted = tmp_path / "extracted"
    zipfile.ZipFile(extension_zip).extractall(extracted / "acestep_blender")
    script = textwrap.dedent(f"""
        import importlib, json, sys
        out_of_reach = ("", ".", {str(REPO_ROOT)!r}, {str(REPO_ROOT / "tests")!r})  # the repository's acestep_core
        sys.path[:] = [p for p in sys.path if p.rstrip("/") not in out_of_reach]
        import bpy  # Blender may import what it likes; we judge what the add-on adds
        before = set(sys.modules)

        class RefuseHeavyImports:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {HEAVY_PACKAGES!r}:
                    raise ImportError(name + " imported by the add-on")
                return None

        sys.meta_path.insert(0, RefuseHeavyImports())
        sys.path.insert(0, {str(extracted)!r})
        addon = importlib.import_module("acestep_blender")
        addon.register()
        import acestep_core
        for name in ("client", "timeline", "keywords", "request", "jobs", "progress"):
            importlib.import_module("acestep_core." + name)
        scene = bpy.context.scene
        scene.acestep.prompt = "calm exploration"
        added = sorted({{m.split(".")[0] for m in set(sys.modules) - before}})
        addon.unregister()
        print(json.dumps({{"core": acestep_core.__file__, "added": added}}))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["core"] == str(extracted / "acestep_blender" / "_vendor" / "acestep_core" / "__init__.py")
    foreign = set(report["added"]) - set(sys.stdlib_module_names) - {"acestep_blender", "acestep_core"}
    assert not foreign, f"the add-on imported {sorted(foreign)}"


# -- install_blender ----------------------------------------------------------------------


def _executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def blender_on_path(tmp_path, monkeypatch) -> Path:
    """`blender` on PATH that runs Blender's real extension command line (bl_pkg, as
    `blender --command extension ...` does) through this bpy, into a temporary user folder."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _executable(bin_dir / "blender", textwrap.dedent(f"""\
        #!{sys.executable}
        import sys
        if sys.argv[1:3] != ["--command", "extension"]:
            sys.exit("this stand-in runs only: blender --command extension ...")
        import bpy
        import bl_pkg
        sys.exit(bl_pkg.cli_extension(sys.argv[3:]))
        """))
    user = tmp_path / "blender-user"
    monkeypatch.setenv("BLENDER_USER_RESOURCES", str(user))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return user


def test_install_blender_installs_and_enables_with_blenders_command(blender_on_path, tmp_path):
    report = install_blender(zip_dir=tmp_path / "dist")
    assert report.installed, report.output
    assert report.blender.endswith("blender") and report.zip_path == tmp_path / "dist" / "acestep_blender-0.1.0.zip"
    installed = blender_on_path / "extensions" / "user_default" / "acestep_blender"
    assert (installed / "__init__.py").is_file()
    assert (installed / "_vendor" / "acestep_core" / "client.py").is_file()
    assert "Installed and enabled" in str(report) and "Video Sequencer" in str(report)


def test_without_blender_the_report_says_how_to_install_by_hand(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    report = install_blender(zip_dir=tmp_path)
    assert not report.installed and report.blender is None
    text = str(report)
    assert str(report.zip_path) in text and "Install from Disk" in text and "not on PATH" in text
    assert report.next_steps == (MANUAL_STEPS.format(zip=report.zip_path) + "\n"
                                 + WORKER_PYTHON_STEP.format(python=sys.executable))


def test_a_failing_blender_is_reported_with_its_output(tmp_path):
    broken = _executable(tmp_path / "blender-broken", "#!/bin/sh\necho 'Error: repository not found' >&2\nexit 1\n")
    report = install_blender(blender_executable=str(broken), zip_dir=tmp_path)
    assert not report.installed
    assert "repository not found" in report.output and "Install from Disk" in str(report)
