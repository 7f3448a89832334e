#!/usr/bin/env bash
# Browser tests drive the system Chromium (Debian's package), never a downloaded browser build.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "[browser] installing Debian's chromium for the browser tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
  exit 0
fi
cat >&2 <<'MSG'
[browser] Chromium is missing. The browser tests drive the system Chromium:
  Debian/Ubuntu:  sudo apt-get install chromium
  or point CHROMIUM_PATH at an installed Chromium/Chrome binary.
MSG
exit 1
