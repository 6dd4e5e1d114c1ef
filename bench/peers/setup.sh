#!/usr/bin/env bash
# Installs the peer gateways bench/run.py compares with into .bench-peers/
# (not committed; the tests never need them). Re-running is harmless.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .bench-peers
if [ ! -x .bench-peers/litellm/bin/litellm ]; then
  python3 -m venv .bench-peers/litellm
  .bench-peers/litellm/bin/pip install --quiet 'litellm[proxy]'
fi
if [ ! -f .bench-peers/portkey/node_modules/@portkey-ai/gateway/build/start-server.js ]; then
  mkdir -p .bench-peers/portkey
  (cd .bench-peers/portkey && npm init -y >/dev/null && npm install --silent @portkey-ai/gateway)
fi
echo "peers installed in .bench-peers/"
