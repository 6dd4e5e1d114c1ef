# Store tests (tests/stores): PostgreSQL server binaries from Debian and git.
# The tests themselves start PostgreSQL (initdb + pg_ctl, as a non-root user on a
# loopback port), moto's S3 server and bare git repos from pytest fixtures.
_stores_missing=()
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  _stores_missing+=(postgresql)
fi
command -v git >/dev/null 2>&1 || _stores_missing+=(git)
command -v setpriv >/dev/null 2>&1 || _stores_missing+=(util-linux)
if [ "${#_stores_missing[@]}" -gt 0 ]; then
  echo "== installing ${_stores_missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${_stores_missing[@]}" >/dev/null
  # Debian's package starts a cluster of its own; the tests do not use it.
  if command -v pg_lsclusters >/dev/null 2>&1 && command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_lsclusters -h 2>/dev/null | while read -r ver name _rest; do
      pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true
    done
  fi
fi
unset _stores_missing
