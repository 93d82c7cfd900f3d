#!/usr/bin/env bash
# Runs the tests: the Blender add-on's on Blender 4.5 LTS and 5.2 (when .venv-blender45
# and .venv-blender52 exist), then the whole suite on Blender 5.0. Extra arguments go to
# the last pytest run.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
status=0
if [ -x .venv-blender45/bin/python ]; then
  echo "== Blender add-on tests on bpy $(.venv-blender45/bin/python -c 'import importlib.metadata as m; print(m.version("bpy"))') ==" >&2
  .venv-blender45/bin/python -m pytest -q -p no:cacheprovider tests/test_blender_*.py || status=$?
fi
if [ -x .venv-blender52/bin/python ]; then
  echo "== Blender add-on tests on bpy $(.venv-blender52/bin/python -c 'import importlib.metadata as m; print(m.version("bpy"))') ==" >&2
  # No torch for Python 3.13 here: workers that need it run on .venv's Python.
  ACESTEP_TEST_WORKER_PYTHON="$PWD/.venv/bin/python" \
    .venv-blender52/bin/python -m pytest -q -p no:cacheprovider tests/test_blender_*.py || status=$?
fi
echo "== all tests on bpy $(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("bpy"))') ==" >&2
.venv/bin/python -m pytest -q "$@" || status=$?
exit "$status"
