# Dashboard tests (tests/dashboard): Debian's headless Chromium, driven by the
# Python playwright package with executable_path=/usr/bin/chromium (never
# `playwright install`: nothing is downloaded at test time).
if [ ! -x /usr/bin/chromium ]; then
  echo "== installing chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
