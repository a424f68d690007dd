#!/usr/bin/env bash
# Installs everything quakestack needs on a fresh machine. `--dev` adds what the tests use.
#
# Where it installs (then `scripts/python` runs that interpreter):
#   - an active virtualenv or conda env: there;
#   - otherwise, a Python that lets pip install (pyenv, a container's Python): that Python;
#   - otherwise (a Debian/Ubuntu system Python, externally managed per PEP 668): a project
#     virtualenv `.venv/` made here, so the system's packages are never touched.
# torch==2.13.0 comes first and pinned: an unpinned torch pulls several GB of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0
[ "${1:-}" = "--dev" ] && dev=1
SUDO=""; [ "$(id -u)" != 0 ] && command -v sudo >/dev/null && SUDO="sudo"

step_log=$(mktemp)
trap 'rm -f "$step_log"' EXIT
step() {  # step "what it does" command...: quiet when it works; when it fails, says which step and shows why
  local what=$1
  shift
  echo "setup: $what"
  "$@" >"$step_log" 2>&1 || {
    local code=$?
    echo "setup: FAILED: $what (exit $code): $*" >&2
    tail -n 40 "$step_log" | sed 's/^/setup:   | /' >&2
    exit 1
  }
}

apt_install() {  # Debian packages, only those whose command is missing
  command -v apt-get >/dev/null || { echo "setup: please install: $*" >&2; return 0; }
  step "apt-get update" $SUDO apt-get update -qq
  step "apt-get install $*" $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

externally_managed() {  # PEP 668: the marker file beside the interpreter's standard library
  "$1" - <<'PY'
import sys, sysconfig, pathlib
in_env = sys.prefix != sys.base_prefix
sys.exit(0 if not in_env and (pathlib.Path(sysconfig.get_path("stdlib")) / "EXTERNALLY-MANAGED").exists() else 1)
PY
}

py=python3
if [ -z "${VIRTUAL_ENV:-}${CONDA_PREFIX:-}" ] && { [ -x .venv/bin/python ] || externally_managed python3; }; then
  if [ ! -x .venv/bin/python ]; then
    python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
    step "a project virtualenv .venv (this Python is externally managed, PEP 668)" python3 -m venv .venv
  fi
  py=.venv/bin/python
fi
echo "setup: installing into $("$py" -c 'import sys; print(sys.prefix)')"
"$py" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
step "torch==2.13.0 (pinned, CPU wheels unless CUDA is wanted)" "$py" -m pip install -q torch==2.13.0
if [ $dev = 1 ]; then
  step "quakestack with its test tools (pip install -e .[dev])" "$py" -m pip install -q -e ".[dev]"
  # tritonclient (the OIP tests' real client) needs protobuf<7, which the project's own pins do not
  # allow: it gets a virtualenv of its own, which the tests run as a separate client program.
  [ -x .venv-triton/bin/python ] || step "the tritonclient virtualenv .venv-triton" python3 -m venv .venv-triton
  step "tritonclient into .venv-triton" .venv-triton/bin/python -m pip install -q "tritonclient[grpc,http]>=2.50" numpy
  # The serving peers of bench/serving_peers.py, each in its own virtualenv, torch==2.13.0 first and pinned as
  # above. MLServer 1.7.1 takes uvloop<0.22: its inference workers call asyncio.get_event_loop(), which
  # uvloop 0.22 refuses ("There is no current event loop"), so every worker died at start.
  [ -x .venv-mlserver/bin/python ] || step "the MLServer virtualenv .venv-mlserver" python3 -m venv .venv-mlserver
  step "torch==2.13.0 into .venv-mlserver" .venv-mlserver/bin/python -m pip install -q torch==2.13.0
  step "MLServer 1.7.1 into .venv-mlserver" .venv-mlserver/bin/python -m pip install -q "mlserver==1.7.1" "uvloop<0.22"
  [ -x .venv-pytriton/bin/python ] || step "the PyTriton virtualenv .venv-pytriton" python3 -m venv .venv-pytriton
  step "torch==2.13.0 into .venv-pytriton" .venv-pytriton/bin/python -m pip install -q torch==2.13.0
  step "PyTriton 0.7.0 into .venv-pytriton" .venv-pytriton/bin/python -m pip install -q "nvidia-pytriton==0.7.0"
  # a real MLflow tracking server and MlflowClient for the export tests (`experiments export-mlflow` itself speaks
  # MLflow's REST API, so the mlflow package and its pins stay out of the project's environment)
  [ -x .venv-mlflow/bin/python ] || step "the MLflow virtualenv .venv-mlflow" python3 -m venv .venv-mlflow
  step "mlflow into .venv-mlflow" .venv-mlflow/bin/python -m pip install -q "mlflow>=3.0,<4"
  # promtool (Debian's prometheus), docker-compose and kubectl validate metrics and deployment files.
  missing=()
  command -v promtool >/dev/null || missing+=(prometheus)
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  # the console's browser test drives Debian's chromium with Playwright (never `playwright install`)
  command -v chromium >/dev/null || missing+=(chromium)
  command -v npm >/dev/null || missing+=(npm)
  # the embedded PostgreSQL server the tests and benchmarks start (quakestack/embedded/postgres.py)
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
else
  step "quakestack (pip install -e .)" "$py" -m pip install -q -e .
fi
# The web console's chart library: uPlot, pinned by gateway/console/package-lock.json, installed with npm
# and copied into the console's static folder (served by the gateway; nothing is fetched at run time).
command -v npm >/dev/null || apt_install npm
if command -v npm >/dev/null; then
  step "the web console's chart library (npm ci in gateway/console)" \
    npm ci --prefix gateway/console --no-audit --no-fund
  mkdir -p gateway/console/static/vendor
  cp gateway/console/node_modules/uplot/dist/uPlot.iife.min.js gateway/console/node_modules/uplot/dist/uPlot.min.css \
     gateway/console/node_modules/uplot/LICENSE gateway/console/static/vendor/
  # the buf CLI (pinned by tools/buf/package-lock.json) that tests/test_contracts.py lints the protos with
  # and checks them for breaking changes against protos/baseline/
  if [ $dev = 1 ]; then step "the buf CLI (npm ci in tools/buf)" npm ci --prefix tools/buf --no-audit --no-fund; fi
else
  echo "setup: npm not found; the web console (/console/) will lack its charts until npm is installed" >&2
fi
# PyOcto (phase association) pins numpy<2 on Python <= 3.11 only for its own test extras; it runs on
# numpy 2, so it goes in without its pins rather than downgrading numpy under everything else.
step "PyOcto 0.2.2 (phase association)" "$py" -m pip install -q --no-deps "pyocto==0.2.2"
