#!/usr/bin/env bash
# Installs pypmml (the Python binding of PMML4S, a JVM PMML evaluator) into a venv at $HOME/.cache/dipper-venv, for
# crates/dipper/tests/export_pmml.rs, which scores `dipper export --format pmml` documents with it through
# tools/ci/pypmml_score.py. pypmml starts a JVM, so Java is installed too if `java` is missing (Java 17 headless).
#
# Idempotent: if the venv's Python has the pinned pypmml and `java` runs, nothing is done (well under a second);
# otherwise the venv is created (or kept) and pypmml installed with pip (~5 s).
#
# DIPPER_VENV overrides the venv directory (then point DIPPER_PYPMML_PYTHON at $DIPPER_VENV/bin/python).
set -euo pipefail

version=1.5.8
venv="${DIPPER_VENV:-$HOME/.cache/dipper-venv}"
python="$venv/bin/python"
started=$SECONDS

if ! command -v java >/dev/null; then
  echo "install-pypmml: java is missing; installing openjdk-17-jre-headless"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless
fi
java -version >/dev/null 2>&1 || { echo "install-pypmml: java does not run" >&2; exit 1; }

have=$("$python" -c 'import pypmml; print(pypmml.__version__)' 2>/dev/null || true)
if [ "$have" = "$version" ]; then
  echo "install-pypmml: $python has pypmml $version; nothing to do ($((SECONDS - started)) s)"
  exit 0
fi

echo "install-pypmml: ${have:+replacing pypmml $have: }installing pypmml $version into $venv"
if [ ! -x "$python" ]; then
  # A fresh Debian has python3 without venv/ensurepip (package python3-venv), or no python3 at all.
  if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    echo "install-pypmml: installing python3 and python3-venv"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv
  fi
  python3 -m venv "$venv"
fi
"$python" -m pip install --quiet --disable-pip-version-check "pypmml==$version"
have=$("$python" -c 'import pypmml; print(pypmml.__version__)')
[ "$have" = "$version" ] || { echo "install-pypmml: pip left pypmml '$have', want $version" >&2; exit 1; }
echo "install-pypmml: installed pypmml $version into $venv in $((SECONDS - started)) s"
