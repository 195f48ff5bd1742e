#!/usr/bin/env bash
# Bytes/sample and import time, side by side: Prometheus (promtool create-blocks-from openmetrics,
# then compacted by a Prometheus started on the directory), VictoriaMetrics
# (/api/v1/import/prometheus, force_flush + force_merge) and Sextant (`sextant tsdb import`,
# `sextant tsdb analyze`), all on one file from ../shared/bench/gen_dataset.py.
# Loopback only. Follows ../shared/bench/side_by_side.sh and ../shared/notes/performance.md §5.
#
# Usage: SEXTANT=/path/to/sextant INSTANCES=100 SCRAPES=1440 DIR=/var/tmp/tsdbb \
#          bash tsdb/bench/side_by_side.sh [prom] [vm] [ours]     (default: all three)
set -euo pipefail
SHARED=${SHARED:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
DIR=${DIR:-/var/tmp/tsdbb}
INSTANCES=${INSTANCES:-100}
SCRAPES=${SCRAPES:-1440}
START_MS=${START_MS:-1700000000000}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PROM_PORT=${PROM_PORT:-$(free_port)}
VM_PORT=${VM_PORT:-$(free_port)}
SEXTANT=${SEXTANT:-sextant}
PHASES=${*:-prom vm ours}
mkdir -p "$DIR"
DATASET=$DIR/d${INSTANCES}x${SCRAPES}.om
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

if [[ ! -s $DATASET ]]; then
  python3 "$SHARED/bench/gen_dataset.py" --template "$SHARED/bench/node_exporter_1.5.0_sample.prom" \
    --instances "$INSTANCES" --scrapes "$SCRAPES" --start-ms "$START_MS" --format om > "$DATASET.part"
  mv "$DATASET.part" "$DATASET"
fi
NSAMPLES=$(( INSTANCES * 549 * SCRAPES ))
per() { echo "scale=3; $1 / $NSAMPLES" | bc -l; }
say() { echo "$*" | tee -a "$DIR/summary.txt"; }
say "== $(date -u +%FT%TZ) dataset $DATASET: $(stat -c %s "$DATASET") bytes, $NSAMPLES samples; loadavg $(cut -d' ' -f1-3 /proc/loadavg)"

for phase in $PHASES; do
case $phase in
prom)
  # REUSE_PROMTOOL=1 keeps the blocks and timing of an earlier promtool run (it is slow).
  if [[ -z ${REUSE_PROMTOOL:-} ]]; then
    rm -rf "$DIR/prom"; mkdir -p "$DIR/prom"
    /usr/bin/time -f '%e %U %S %M' -o "$DIR/promtool.time" \
      promtool tsdb create-blocks-from openmetrics "$DATASET" "$DIR/prom" > "$DIR/promtool.log" 2>&1
  fi
  read -r W U S M < "$DIR/promtool.time"
  printf 'global: {scrape_interval: 15s}\nscrape_configs: []\n' > "$DIR/prom.yml"
  prometheus --config.file="$DIR/prom.yml" --storage.tsdb.path="$DIR/prom" --storage.tsdb.retention.time=100y \
    --web.listen-address=127.0.0.1:$PROM_PORT --log.level=info > "$DIR/prom.log" 2>&1 &
  PIDS+=($!); PP=$!
  until curl -sf 127.0.0.1:$PROM_PORT/-/ready >/dev/null; do kill -0 $PP; sleep 0.5; done
  # Wait for the startup compaction: the block count stops changing.
  last=-1; stable=0
  for _ in $(seq 1 120); do
    n=$(find "$DIR/prom" -maxdepth 2 -name meta.json | wc -l)
    if [[ $n == "$last" ]] && grep -q 'compact blocks' "$DIR/prom.log"; then stable=$((stable+1)); else stable=0; fi
    [[ $stable -ge 15 ]] && break
    last=$n; sleep 2
  done
  kill -TERM $PP; wait $PP || true
  PC=$(du -scb "$DIR"/prom/*/chunks | tail -1 | cut -f1)
  PI=$(du -cb "$DIR"/prom/*/index | tail -1 | cut -f1)
  PT=$(du -sb "$DIR/prom" | cut -f1)
  say "prometheus: chunks $(per $PC) index $(per $PI) dir $(per $PT) B/sample ($PT bytes, $(find "$DIR/prom" -maxdepth 2 -name meta.json | wc -l) blocks); promtool wall ${W}s cpu $(echo "$U+$S" | bc)s maxrss ${M}kB"
  ;;
vm)
  rm -rf "$DIR/vm"
  victoria-metrics -storageDataPath="$DIR/vm" -httpListenAddr=127.0.0.1:$VM_PORT -retentionPeriod=100y \
    -search.disableCache -loggerLevel=WARN > "$DIR/vm.log" 2>&1 &
  PIDS+=($!); VP=$!
  until curl -sf 127.0.0.1:$VM_PORT/health >/dev/null; do kill -0 $VP; sleep 0.2; done
  t0=$(date +%s.%N)
  curl -sf -X POST -T "$DATASET" 127.0.0.1:$VM_PORT/api/v1/import/prometheus  # -T streams the file
  curl -sf 127.0.0.1:$VM_PORT/internal/force_flush >/dev/null
  t1=$(date +%s.%N)
  curl -sf "127.0.0.1:$VM_PORT/internal/force_merge?partition_prefix=$(date -u -d @$((START_MS/1000)) +%Y_%m)" >/dev/null || true
  sleep 5
  while curl -s 127.0.0.1:$VM_PORT/metrics | grep -E '^vm_active_merges' | awk '{s+=$2} END{exit !(s>0)}'; do sleep 2; done
  t2=$(date +%s.%N)
  M=$(curl -s 127.0.0.1:$VM_PORT/metrics)
  VD=$(echo "$M" | awk '/^vm_data_size_bytes\{type="storage\/(small|big)"\}/{s+=$2} END{printf "%d", s}')
  VI=$(echo "$M" | awk '/^vm_data_size_bytes\{type="indexdb"\}/{printf "%d", $2}')
  VR=$(echo "$M" | awk '/^vm_rows\{type="storage\/(small|big)"\}/{s+=$2} END{printf "%d", s}')
  VC=$(awk '{print $14+$15}' /proc/$VP/stat)
  kill -TERM $VP; wait $VP || true
  VT=$(du -sb "$DIR/vm" | cut -f1)
  say "victoria:   data $(per $VD) indexdb $(per $VI) dir $(per $VT) B/sample ($VT bytes, rows $VR); import+flush wall $(echo "$t1-$t0" | bc)s, merge $(echo "$t2-$t1" | bc)s, process cpu $(echo "$VC/100" | bc)s"
  ;;
ours)
  rm -rf "$DIR/ours"
  /usr/bin/time -f '%e %U %S %M' -o "$DIR/ours.time" \
    "$SEXTANT" tsdb import openmetrics "$DATASET" "$DIR/ours" > "$DIR/ours_import.log" 2> "$DIR/ours_progress.log"
  read -r W U S M < "$DIR/ours.time"
  "$SEXTANT" tsdb analyze "$DIR/ours" > "$DIR/ours_analyze.txt"
  OC=$(du -scb "$DIR"/ours/*/chunks | tail -1 | cut -f1)
  OI=$(du -cb "$DIR"/ours/*/index | tail -1 | cut -f1)
  OT=$(du -sb "$DIR/ours" | cut -f1)
  say "sextant:    chunks $(per $OC) index $(per $OI) dir $(per $OT) B/sample ($OT bytes, $(find "$DIR/ours" -maxdepth 2 -name meta.json | wc -l) blocks); import wall ${W}s cpu $(echo "$U+$S" | bc)s maxrss ${M}kB"
  ;;
esac
done
say "   loadavg at end $(cut -d' ' -f1-3 /proc/loadavg)"
