#!/usr/bin/env bash
# Builds the calltape Python package fresh into a new virtualenv (`pip install
# ./recorder/python`, as a user would) and runs its pytest suite against the installed wheel.
#
#   recorder/python/run-tests.sh [pytest args...]
#
# Needs Rust and python3 (>= 3.10, with venv). The comparison tests use the replayer CLI: it is
# built with `cargo build -p calltape` unless CALLTAPE_BIN names one. The S3 tests need a
# moto server (`.ci/run` starts one and exports CALLTAPE_MOTO_ENDPOINT); without it they are
# reported as skipped, with the reason. CALLTAPE_PY_VENV keeps the virtualenv at that path.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${CALLTAPE_PY_VENV:-$(mktemp -d)/venv}"

python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
echo "run-tests.sh: building and installing the calltape package into $venv" >&2
# The test dependencies: one requirements file per concern in tests/requirements/ (the frameworks
# the integrations are tested against are pinned there).
reqs=()
for f in "$here"/tests/requirements/*.txt; do reqs+=(-r "$f"); done
"$venv/bin/python" -m pip install --quiet "$here" "${reqs[@]}"

if [ -z "${CALLTAPE_BIN:-}" ]; then
    (cd "$repo" && cargo build --quiet -p calltape)
    export CALLTAPE_BIN="$repo/target/debug/calltape"
fi
if [ -z "${CALLTAPE_MOTO_ENDPOINT:-}" ]; then
    echo "run-tests.sh: CALLTAPE_MOTO_ENDPOINT not set: the S3 tests will be SKIPPED" >&2
fi

cd "$here"
exec "$venv/bin/python" -m pytest -rs tests "$@"
