#!/usr/bin/env bash
# The CKB node for the on-chain withdrawal tests: `ckb` from crates.io, installed once into
# ${XDG_CACHE_HOME:-~/.cache}/fiber-link/ckb-<version> and reused by every later run (and every
# clone on this machine). Prints the binary's path on success.
#
# The first install is a long build (RocksDB and OpenSSL from C/C++ sources): measured here at
# 25 minutes on two quiet cores and 102 minutes on two busy ones, so the test command does not start it by itself:
#   scripts/ckb-node.sh            install if missing (once), print the path
#   scripts/ckb-node.sh --find     only print the path of an installed binary (exit 1 if none)
# FIBER_LINK_CKB_BIN=/path/to/ckb uses a binary you already have.
set -euo pipefail
VERSION=0.210.0
if [ -n "${FIBER_LINK_CKB_BIN:-}" ]; then
  [ -x "$FIBER_LINK_CKB_BIN" ] || { echo "FIBER_LINK_CKB_BIN=$FIBER_LINK_CKB_BIN is not an executable" >&2; exit 1; }
  echo "$FIBER_LINK_CKB_BIN"; exit 0
fi
root="${XDG_CACHE_HOME:-$HOME/.cache}/fiber-link/ckb-$VERSION"
bin="$root/bin/ckb"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
if [ "${1:-}" = --find ]; then exit 1; fi

# What the build needs: libclang (bindgen for RocksDB), a C++ compiler, make and perl (OpenSSL).
missing=()
for p in libclang-dev g++ make perl; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing build packages for ckb: ${missing[*]}" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  if ! { $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"; } >&2; then
    echo "could not install ${missing[*]}; install them (apt-get install ${missing[*]}) and retry" >&2
    exit 1
  fi
fi
echo "installing ckb $VERSION into $root (once; about an hour on two cores)" >&2
start=$(date +%s)
mkdir -p "$root"
if ! cargo install --locked ckb --version "$VERSION" --root "$root" --target-dir "$root/build" >&2; then
  echo "cargo install ckb failed (see above)" >&2; exit 1
fi
rm -rf "$root/build"
echo "ckb $VERSION installed in $(( $(date +%s) - start )) s" >&2
echo "$bin"
