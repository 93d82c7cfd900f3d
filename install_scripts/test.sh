#!/usr/bin/env bash
# Runs the tests: the whole suite on Blender 5.0 and, beside it (when .venv-blender45 and
# .venv-blender52 exist), the Blender add-on's tests on Blender 4.5 LTS and 5.2, one after
# the other. The add-on runs use about one core and the whole suite little more, so side by
# side they take the time of the whole suite alone. Each prints when it ends; extra
# arguments go to the whole suite's pytest run.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scratch="$(mktemp -d "${TMPDIR:-/tmp}/acestep-dcc-tests.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

bpy_version() { "$1" -c 'import importlib.metadata as m; print(m.version("bpy"))'; }

blender_runs() {
  local name python status=0
  for name in blender45 blender52; do
    python=".venv-$name/bin/python"
    [ -x "$python" ] || continue
    {
      echo "== Blender add-on tests on bpy $(bpy_version "$python") =="
      # No torch for Python 3.13 here: workers that need it run on .venv's Python.
      [ "$name" = blender52 ] && export ACESTEP_TEST_WORKER_PYTHON="$PWD/.venv/bin/python"
      "$python" -m pytest -q -p no:cacheprovider --basetemp="$scratch/$name" tests/test_blender_*.py
    } > "$scratch/$name.log" 2>&1 || status=$?
  done
  return "$status"
}

blender_runs &
blender_pid=$!
status=0
echo "== all tests on bpy $(bpy_version .venv/bin/python) ==" >&2
.venv/bin/python -m pytest -q "$@" || status=$?
wait "$blender_pid" || status=$?
for log in "$scratch"/blender*.log; do
  [ -f "$log" ] && cat "$log" >&2
done
exit "$status"
