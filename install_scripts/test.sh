#!/usr/bin/env bash
# Runs the tests on Blender 5.0 (.venv), and the Blender add-on's tests on Blender 4.5 LTS
# and 5.2 too (when .venv-blender45 and .venv-blender52 exist).
#
# Two runs side by side, for most tests wait on a worker, a Ray cluster or Blender more
# than they compute (the whole suite one after another used 1.1 of 2 cores): in the
# foreground the suite without its worker and cluster tests; beside it the add-on's tests
# on 4.5 and 5.2, then the worker and cluster tests. Each run's report is printed when
# all have ended. Extra arguments go to the foreground run; naming test files, folders
# or node ids runs only the foreground run, on what was named, with the add-on runs
# beside it as before.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scratch="$(mktemp -d "${TMPDIR:-/tmp}/acestep-dcc-tests.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

BESIDE=(tests/test_worker_*.py tests/test_cluster*.py)
split=yes
for argument in "$@"; do
  # A test file, folder or node id (not an option or an option's value, like -p no:cacheprovider).
  if [[ "$argument" != -* && ( -e "${argument%%::*}" || "$argument" == *::* ) ]]; then split=no; fi
done

bpy_version() { "$1" -c 'import importlib.metadata as m; print(m.version("bpy"))'; }

beside_runs() {
  local name python status=0
  for name in blender45 blender52; do
    python=".venv-$name/bin/python"
    [ -x "$python" ] || continue
    {
      echo "== Blender add-on tests on bpy $(bpy_version "$python") =="
      # No torch for Python 3.13 here: workers that need it run on .venv's Python.
      [ "$name" = blender52 ] && export ACESTEP_TEST_WORKER_PYTHON="$PWD/.venv/bin/python"
      "$python" -m pytest -q -p no:cacheprovider --basetemp="$scratch/$name" tests/test_blender_*.py
    } > "$scratch/1-$name.log" 2>&1 || status=$?
  done
  unset ACESTEP_TEST_WORKER_PYTHON
  if [ "$split" = yes ]; then
    {
      echo "== worker and cluster tests on bpy $(bpy_version .venv/bin/python) =="
      .venv/bin/python -m pytest -q -p no:cacheprovider --basetemp="$scratch/beside" "${BESIDE[@]}"
    } > "$scratch/2-beside.log" 2>&1 || status=$?
  fi
  return "$status"
}

beside_runs &
beside_pid=$!
status=0
ignored=()
if [ "$split" = yes ]; then
  for file in "${BESIDE[@]}"; do ignored+=(--ignore="$file"); done
  echo "== all other tests on bpy $(bpy_version .venv/bin/python) ==" >&2
else
  echo "== the tests named, on bpy $(bpy_version .venv/bin/python) ==" >&2
fi
.venv/bin/python -m pytest -q ${ignored[@]+"${ignored[@]}"} "$@" || status=$?
wait "$beside_pid" || status=$?
for log in "$scratch"/*.log; do
  [ -f "$log" ] && cat "$log" >&2
done
exit "$status"
