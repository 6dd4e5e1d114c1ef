# Shared-state tests (tests/state): the Redis server binary from Debian. The tests
# start their own redis-server (loopback, free port, temp dir) from a pytest fixture.
if ! command -v redis-server >/dev/null 2>&1; then
  echo "== installing redis-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  # Debian's package may start a server of its own on 6379; the tests do not use it.
  if command -v service >/dev/null 2>&1; then
    service redis-server stop >/dev/null 2>&1 || true
  fi
fi
