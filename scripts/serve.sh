#!/usr/bin/env bash
# Installs Crossroads (scripts/install.sh: .venv, and `crossroads` on PATH)
# and runs it. Extra arguments go to `crossroads serve` (e.g. --config
# config.yaml). With no config it starts on 127.0.0.1:8317 with an empty pool
# and prints how to add accounts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/crossroads serve "$@"
