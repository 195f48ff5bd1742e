#!/usr/bin/env bash
# Regenerates examples/link-order.txt, the order in which the release `sextant` binary's linker
# lays out the functions the exporters run (see examples/build.rs). Run it after a change that
# renames or adds much exporter code, or after a dependency upgrade, then rebuild.
#
# It builds the release binary, runs each exporter under `valgrind --tool=callgrind` against
# real servers (exporters/bench/exporter_cpu.py --trace: Redis, PostgreSQL 15, MariaDB, an HTTP
# server; needs root and the packages that script names), and merges the traces with
# scripts/link_order.py. Takes about five minutes; valgrind runs the exporters ~50× slower.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "link-order: valgrind is missing (apt-get install -y valgrind)" >&2; exit 1; }
echo "link-order: building the release binary" >&2
cargo build --release -p sextant-examples --bin sextant
work=$(mktemp -d /tmp/link-order.XXXXXX)
trap 'rm -rf "$work"' EXIT
# Traces must come from the binary the list is used for; a copy keeps a concurrent build out.
cp "${CARGO_TARGET_DIR:-target}/release/sextant" "$work/sextant"
echo "link-order: tracing the exporters under callgrind" >&2
python3 exporters/bench/exporter_cpu.py --sextant "$work/sextant" --trace "$work" --warmup 3 \
    --only node,redis,postgres,mysql,blackbox
python3 scripts/link_order.py "$work/sextant" "$work"/{node,redis,postgres,mysql,blackbox}.callgrind \
    >examples/link-order.txt
echo "link-order: wrote examples/link-order.txt; rebuild to use it" >&2
