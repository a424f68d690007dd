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
  # tritonclient (the OIP tests' real client) needs protobuf<7, which the project's own pins do not
  # allow: it gets a virtualenv of its own, which the tests run as a separate client program.
  [ -x .venv-triton/bin/python ] || python3 -m venv .venv-triton
  .venv-triton/bin/python -m pip install -q "tritonclient[grpc,http]>=2.50" numpy
  # promtool (Debian's prometheus), docker-compose and kubectl validate metrics and deployment files.
  missing=()
  command -v promtool >/dev/null || missing+=(prometheus)
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null; then
    SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  python3 -m pip install -q -e .
fi
