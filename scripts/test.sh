#!/usr/bin/env bash
# Installs everything the tests need into .venv, then lints, type-checks and
# runs the whole suite. Used verbatim by CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

# the same install as scripts/serve.sh and the Dockerfile, plus the test extras
bash scripts/install.sh -e '.[test]'

for setup in scripts/setup.d/*.sh; do
  [ -e "$setup" ] || continue
  echo "== setup: $setup"
  # shellcheck source=/dev/null
  source "$setup"
done

echo "== ruff"
.venv/bin/ruff check src tests bench
echo "== mypy"
.venv/bin/mypy
echo "== import contracts"
.venv/bin/lint-imports --no-logo
echo "== pytest"
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: treating as a failure" >&2
  exit 1
fi
exit "$rc"
