#!/usr/bin/env bash
# Installs Crossroads into .venv and runs it. Extra arguments go to
# `crossroads serve` (e.g. --config config.yaml). With no config it starts on
# 127.0.0.1:8317 with an empty pool and prints how to add accounts.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet .
exec .venv/bin/crossroads serve "$@"
