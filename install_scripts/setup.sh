#!/usr/bin/env bash
# Sets up the worker environment: a virtual environment at .venv in this checkout with
# acestep-dcc and everything the worker and CLI need. `--test` adds the test tools, real
# Blender (bpy 5.0 in .venv, 4.5 LTS in .venv-blender45, 5.2 in .venv-blender52 on
# Python 3.13) for the add-on tests, ffmpeg, whose loudness meter the tests check ours
# against, and godot3-server, a real Godot 3.2 that imports our looped WAVs.
#
# PyTorch: torch==2.13.0 by default (a local CPU build on the project's CI machines).
# Choose your build with ACESTEP_TORCH, e.g. for an NVIDIA GPU
#   ACESTEP_TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128" bash install_scripts/setup.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
python="${PYTHON:-python3}"
torch_spec="${ACESTEP_TORCH:-torch==2.13.0}"
with_tests=0
for arg in "$@"; do
  case "$arg" in
    --test) with_tests=1 ;;
    *) echo "setup.sh: unknown option $arg (use --test to add the test tools)" >&2; exit 2 ;;
  esac
done

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup.sh: acestep-dcc needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
  exit 2
fi

[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
# Torch first, so the unpinned torch in the worker extra is already satisfied and pip
# never reaches for a multi-gigabyte CUDA build on a machine that did not ask for one.
# shellcheck disable=SC2086
"${pip[@]}" install $torch_spec
"${pip[@]}" install -e ".[worker,originality,packs]"
if [ "$with_tests" = 1 ]; then
  "${pip[@]}" install -e ".[worker,originality,packs,cluster,test]" "bpy==5.0.1"
  # The add-on is tested on Blender 5.0 (above) and 4.5 LTS; bpy wheels cannot share a
  # venv, so 4.5 gets its own, with the same worker stack for the workers its tests start.
  [ -x .venv-blender45/bin/python ] || "$python" -m venv .venv-blender45
  pip45=(.venv-blender45/bin/python -m pip --disable-pip-version-check -q)
  # shellcheck disable=SC2086
  "${pip45[@]}" install $torch_spec
  "${pip45[@]}" install -e ".[worker,packs,test]" "bpy==4.5.15"
  # Blender 5.2 (the current release) ships for Python 3.13 only. Its venv has the test
  # tools and the worker's audio stack but no torch (none for 3.13 here): tests that need a
  # torch worker start it from .venv (ACESTEP_TEST_WORKER_PYTHON in test.sh).
  # A pyenv shim named python3.13 exists even when 3.13 is not the selected version, and
  # then fails when run, so each candidate must actually start.
  python313=""
  for candidate in ${PYTHON313:-} "$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python3.13 "$(command -v python3.13 || true)"; do
    if [ -x "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
      python313="$candidate"
      break
    fi
  done
  if [ -n "$python313" ]; then
    [ -x .venv-blender52/bin/python ] || "$python313" -m venv .venv-blender52
    pip52=(.venv-blender52/bin/python -m pip --disable-pip-version-check -q)
    "${pip52[@]}" install -e ".[test]" "bpy==5.2.3" numpy soundfile soxr scipy "pyloudnorm>=0.1.1,<0.3" \
      fastapi uvicorn pydantic tqdm huggingface_hub safetensors
  else
    echo "setup.sh: no Python 3.13 found (set PYTHON313=...): the add-on tests will not run on Blender 5.2" >&2
  fi
  # ffmpeg's ebur128 judges our loudness figures; mount makes the small full disks the
  # full-disk tests need (as root); godot3-server (Debian's headless Godot 3.2) imports and
  # plays our looped WAVs in tests/test_godot_import.py.
  missing=()
  command -v ffmpeg >/dev/null || missing+=(ffmpeg)
  command -v mount >/dev/null || missing+=(mount)
  command -v godot3-server >/dev/null || missing+=(godot3-server)
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null) \
        || echo "setup.sh: could not install ${missing[*]}; the tests that need them will skip" >&2
    else
      echo "setup.sh: ${missing[*]} not found; install them (apt-get install ${missing[*]}) or the tests that need them will skip" >&2
    fi
  fi
fi
echo "setup.sh: ready: $(.venv/bin/acestep-dcc --version) in $here/.venv" >&2
