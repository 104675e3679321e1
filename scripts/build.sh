#!/usr/bin/env bash
# Configures and builds poolkeeper and its tests into build/ (or $POOLKEEPER_BUILD_DIR).
source "$(dirname "$0")/lib.sh"
log "building into $BUILD_DIR"
cmake -S "$REPO_ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$BUILD_DIR" -j"$(nproc)" "$@"
