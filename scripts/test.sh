#!/usr/bin/env bash
# Runs every test of the workspace, after installing what the tests need on a fresh Debian
# machine. Usage: scripts/test.sh [extra cargo test args]
#
# Conformance tests read ../shared when it is there (set SEXTANT_SHARED to point elsewhere);
# without it they say they were skipped. SEXTANT_REQUIRE_SHARED=1 turns that skip into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use. Each entry: the command (or absolute path) to look for, then
# the package.
needed=(
  "python3:python3"
  "amtool:prometheus-alertmanager"
  "prometheus-node-exporter:prometheus-node-exporter"
  "promtool:prometheus"
  "openssl:openssl"
  "curl:curl"
  "victoria-metrics:victoria-metrics"
  "redis-server:redis-server"
  "prometheus-redis-exporter:prometheus-redis-exporter"
  "/usr/lib/postgresql:postgresql"
  "prometheus-postgres-exporter:prometheus-postgres-exporter"
  "mariadbd:mariadb-server"
  "prometheus-mysqld-exporter:prometheus-mysqld-exporter"
  "prometheus-blackbox-exporter:prometheus-blackbox-exporter"
  "/usr/lib/python3/dist-packages/aiosmtpd:python3-aiosmtpd"
  "dnsmasq:dnsmasq-base"
)

missing=()
for entry in "${needed[@]}"; do
  probe=${entry%%:*}
  case "$probe" in
    /*) [ -e "$probe" ] || missing+=("${entry#*:}") ;;
    *) command -v "$probe" >/dev/null 2>&1 || [ -x "/usr/sbin/$probe" ] || missing+=("${entry#*:}") ;;
  esac
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "test.sh: missing packages: ${missing[*]}; run as root or install them with apt-get" >&2
    exit 1
  fi
  echo "test.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # The Debian packages of Prometheus and the exporters start services listening on every
  # interface; the tests start their own instances on 127.0.0.1, so keep the services stopped.
  policy=/usr/sbin/policy-rc.d
  added_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && added_policy=1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  [ -z "$added_policy" ] || rm -f "$policy"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "test.sh: cargo not found; install Rust (rustup) first" >&2
  exit 1
fi

# Libraries, binaries and integration tests (benches are built by `cargo bench --no-run` in CI,
# not run here), then the doc examples.
cargo test --workspace --lib --bins --tests "$@"
cargo test --workspace --doc "$@"
