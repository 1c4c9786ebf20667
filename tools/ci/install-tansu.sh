#!/usr/bin/env bash
# Installs tansu, the Kafka-compatible broker (written in Rust) that dipper's broker integration tests run
# against (crates/dipper-testkit), as $HOME/.cache/tansu/bin/tansu. Apache Kafka and Redpanda cannot be
# installed on the CI machines; see crates/dipper-testkit/src/lib.rs for what tansu does differently.
#
# Idempotent: if the binary is there, reports the pinned version and answers `broker --help`, nothing is done.
# Otherwise it is built from crates.io with `cargo install` (~12-20 min on 2 cores; later runs reuse it).
# `--features dynostore` provides the memory:// storage engine the tests use.
#
# TANSU_ROOT overrides the install root (then point DIPPER_TANSU_BIN at $TANSU_ROOT/bin/tansu).
set -euo pipefail

version=0.6.0
root="${TANSU_ROOT:-$HOME/.cache/tansu}"
bin="$root/bin/tansu"
started=$SECONDS

# Prints why the binary at $bin is not usable, or nothing if it is.
problem() {
  if [ ! -x "$bin" ]; then
    echo "$bin does not exist"
    return
  fi
  local have
  if ! have=$("$bin" --version 2>&1); then
    echo "$bin --version failed: $have"
  elif [ "$have" != "tansu $version" ]; then
    echo "$bin is '$have', want 'tansu $version'"
  elif ! "$bin" broker --help 2>&1 | grep -q -- '--storage-engine'; then
    echo "$bin broker --help does not offer --storage-engine"
  fi
}

why=$(problem)
if [ -z "$why" ]; then
  echo "install-tansu: $bin is tansu $version and works; nothing to do ($((SECONDS - started)) s)"
  exit 0
fi

echo "install-tansu: $why"
echo "install-tansu: building tansu $version into $root (cargo install; ~12-20 min on 2 cores, once per machine)"
# cargo install builds in a temporary directory unless CARGO_TARGET_DIR is set: unset it so tansu's build does not
# land in (and bloat) dipper's shared build cache. --force replaces a broken or different-version binary.
env -u CARGO_TARGET_DIR cargo install tansu --version "$version" --locked --features dynostore \
  --root "$root" --force

why=$(problem)
if [ -n "$why" ]; then
  echo "install-tansu: still unusable after installing: $why" >&2
  exit 1
fi
echo "install-tansu: installed $("$bin" --version) as $bin in $((SECONDS - started)) s"
