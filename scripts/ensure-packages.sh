#!/usr/bin/env bash
# Installs the Debian packages given that are not installed yet (as root), and says what it did in one progress line.
# Usage: scripts/ensure-packages.sh PACKAGE...
set -euo pipefail
missing=(); for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  printf '    \xe2\x9c\x93 installed %s\n' "${missing[*]}"
else
  printf '    \xe2\x9c\x93 all present\n'
fi
