#!/usr/bin/env bash
# Configures and builds poolkeeper and its tests into build/ (or $POOLKEEPER_BUILD_DIR).
source "$(dirname "$0")/lib.sh"
log "building into $BUILD_DIR"
# ccache hits across clones and build directories: paths under the clone are hashed relative to it.
export CCACHE_BASEDIR="$REPO_ROOT" CCACHE_NOHASHDIR=1
# Warnings are errors here (POOLKEEPER_WERROR=OFF in the environment turns that off for a local build).
# POOLKEEPER_CMAKE_ARGS adds options (scripts/sanitize.sh: -DPOOLKEEPER_SANITIZE=...).
cmake -S "$REPO_ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPOOLKEEPER_WERROR="${POOLKEEPER_WERROR:-ON}" ${POOLKEEPER_CMAKE_ARGS:-} >/dev/null
ninja -C "$BUILD_DIR" -j"$(nproc)" "$@"
