# Coding-agent CLIs for tests/clients (Claude Code, Codex CLI, Gemini CLI),
# pinned by tests/clients/package-lock.json.
#
# The installed tree (~750 MB) is kept in a cache folder keyed by the lock
# file's hash and linked into tests/clients/node_modules, so a fresh clone on
# the same machine reuses it and only a changed lock triggers `npm ci`.
# Sourced by scripts/test.sh; runs in a subshell so nothing leaks.
(
  set -euo pipefail
  clients_dir="$(pwd)/tests/clients"
  cache_root="${CROSSROADS_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crossroads/node-clients}"

  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "node/npm missing: installing from Debian packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi

  lock_hash="$(cat "$clients_dir/package.json" "$clients_dir/package-lock.json" | sha256sum | cut -c1-16)"
  cached="$cache_root/$lock_hash"
  complete() { [ -x "$1/.bin/claude" ] && [ -e "$1/.bin/codex" ] && [ -e "$1/.bin/gemini" ]; }

  if ! complete "$cached/node_modules"; then
    echo "installing the coding-agent CLIs (npm ci) into $cached"
    mkdir -p "$cache_root"
    staging="$(mktemp -d "$cache_root/.staging-XXXXXX")"
    cp "$clients_dir/package.json" "$clients_dir/package-lock.json" "$staging/"
    (cd "$staging" && npm ci --no-audit --no-fund --loglevel=error)
    rm -rf "$cached"
    mv "$staging" "$cached"
    # older installs of previous lock files are not needed any more
    find "$cache_root" -mindepth 1 -maxdepth 1 -type d ! -name "$lock_hash" -exec rm -rf {} +
  fi
  complete "$cached/node_modules" || { echo "coding-agent CLI install is incomplete: $cached" >&2; exit 1; }

  target="$clients_dir/node_modules"
  if [ -e "$target" ] && [ ! -L "$target" ]; then
    rm -rf "$target"  # a hand-made install of unknown version: use the pinned one
  fi
  ln -sfn "$cached/node_modules" "$target"
  echo "coding-agent CLIs: $("$target/.bin/claude" --version 2>/dev/null | head -1) /" \
    "$("$target/.bin/codex" --version 2>/dev/null | head -1)"
)
