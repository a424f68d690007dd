#!/usr/bin/env bash
# Installs everything quakestack needs on a fresh machine. `--dev` adds what the tests use.
# torch==2.13.0 comes first and pinned: an unpinned torch pulls several GB of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0
[ "${1:-}" = "--dev" ] && dev=1
python3 -m pip install -q torch==2.13.0
if [ $dev = 1 ]; then
  python3 -m pip install -q -e ".[dev]"
  # promtool (Debian's prometheus), docker-compose and kubectl validate metrics and deployment files.
  missing=()
  command -v promtool >/dev/null || missing+=(prometheus)
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  # the console's browser test drives Debian's chromium with Playwright (never `playwright install`)
  command -v chromium >/dev/null || missing+=(chromium)
  command -v npm >/dev/null || missing+=(npm)
  if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null; then
    SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  python3 -m pip install -q -e .
fi
# The web console's chart library: uPlot, pinned by gateway/console/package-lock.json, installed with npm
# and copied into the console's static folder (served by the gateway; nothing is fetched at run time).
if command -v npm >/dev/null; then
  npm ci --prefix gateway/console --no-audit --no-fund --silent
  mkdir -p gateway/console/static/vendor
  cp gateway/console/node_modules/uplot/dist/uPlot.iife.min.js gateway/console/node_modules/uplot/dist/uPlot.min.css \
     gateway/console/node_modules/uplot/LICENSE gateway/console/static/vendor/
else
  echo "setup: npm not found; the web console (/console/) will lack its charts until npm is installed" >&2
fi
