#!/usr/bin/env bash
# Installs Crossroads into .venv: the one install path shared by
# scripts/serve.sh (the README's run command), scripts/test.sh (CI) and the
# Dockerfile, so they cannot drift apart.
#
#   scripts/install.sh            # the package (pip install .)
#   scripts/install.sh -e '.[test]'   # what the tests need, editable
#
# It then links `crossroads` into a directory on PATH ($CROSSROADS_BIN_DIR,
# default ~/.local/bin; CROSSROADS_BIN_DIR= skips it) so the commands the
# router prints work as printed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
if [ "$#" -eq 0 ]; then
  set -- .
fi
.venv/bin/python -m pip install --quiet "$@"

BIN_DIR="${CROSSROADS_BIN_DIR-$HOME/.local/bin}"
if [ -n "$BIN_DIR" ]; then
  mkdir -p "$BIN_DIR"
  ln -sf "$PWD/.venv/bin/crossroads" "$BIN_DIR/crossroads"
  case ":$PATH:" in
    *":$BIN_DIR:"*) ;;
    *) echo "crossroads is linked into $BIN_DIR, which is not on PATH: add it (export PATH=\"$BIN_DIR:\$PATH\")" \
            "or run $PWD/.venv/bin/crossroads" >&2 ;;
  esac
fi
