#!/usr/bin/env python3
"""CPU seconds per million samples scraped: `sextant server` against Prometheus 2.42, in the
same run, scraping the same targets.

N targets on 127.0.0.1 each serve ../shared/bench/node_exporter_1.5.0_sample.prom (read at run
time, never copied). Both servers scrape all of them at a short interval into their own TSDB;
after a warm-up, the utime+stime of each process (/proc/PID/stat) is read at the start and end
of a fixed window, and the samples each scraped in that window are counted with
sum(sum_over_time(scrape_samples_scraped[window])) through its own API. Bounded: every
process is killed on exit, the run lasts warm-up + window seconds.

    python3 scrape/bench/scrape_cpu.py --sextant /tmp/scrape-api/sextant --targets 50 \
        --interval 1s --warmup 15 --window 60
"""

import argparse
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE = os.path.join(HERE, "..", "..", "..", "shared", "bench", "node_exporter_1.5.0_sample.prom")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_targets(n, body):
    """N HTTP servers on loopback serving `body` as /metrics; returns their ports."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    ports = []
    for _ in range(n):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        ports.append(server.server_address[1])
        threading.Thread(target=server.serve_forever, daemon=True).start()
    return ports


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 (1-based) of the whole line; after the command
    # name (field 2) is cut off, they are at 11 and 12 (0-based).
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def query(port, expr, at):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": at})
    with urllib.request.urlopen(url, timeout=30) as r:
        result = json.load(r)["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def wait_until(what, check, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sextant", default=shutil.which("sextant") or "/tmp/scrape-api/sextant")
    p.add_argument("--prometheus", default="/usr/bin/prometheus")
    p.add_argument("--targets", type=int, default=50)
    p.add_argument("--interval", default="1s")
    p.add_argument("--warmup", type=float, default=15)
    p.add_argument("--window", type=float, default=60)
    p.add_argument("--sample", default=SAMPLE)
    args = p.parse_args()
    args.sextant = os.path.abspath(args.sextant)

    with open(args.sample, "rb") as f:
        body = f.read()
    ports = serve_targets(args.targets, body)
    work = tempfile.mkdtemp(prefix="scrape-cpu-")
    targets = ", ".join(f"'127.0.0.1:{port}'" for port in ports)
    config = os.path.join(work, "prometheus.yml")
    with open(config, "w") as f:
        f.write(
            f"global:\n  scrape_interval: {args.interval}\n  scrape_timeout: {args.interval}\n"
            f"scrape_configs:\n- job_name: bench\n  static_configs: [{{targets: [{targets}]}}]\n"
        )
    peers = {}
    children = []

    def stop(*_):
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        shutil.rmtree(work, ignore_errors=True)

    signal.signal(signal.SIGTERM, lambda *a: (stop(), sys.exit(1)))
    try:
        for name, argv in [
            ("prometheus", [args.prometheus, f"--config.file={config}", f"--storage.tsdb.path={work}/prom"]),
            ("sextant", [args.sextant, "server", f"--config.file={config}", f"--storage.tsdb.path={work}/sextant"]),
        ]:
            port = free_port()
            argv.append(f"--web.listen-address=127.0.0.1:{port}")
            child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)
            children.append(child)
            peers[name] = (child, port)
        for name, (child, port) in peers.items():
            wait_until(
                f"{name} to scrape all targets",
                lambda port=port: query(port, 'count(up{job="bench"} == 1)', time.time()) == args.targets,
            )
        time.sleep(args.warmup)
        start = {name: cpu_seconds(child.pid) for name, (child, _) in peers.items()}
        t0 = time.time()
        time.sleep(args.window)
        end = {name: cpu_seconds(child.pid) for name, (child, _) in peers.items()}
        t1 = time.time()
        window = int(t1 - t0)
        results = {}
        for name, (child, port) in peers.items():
            samples = query(port, f'sum(sum_over_time(scrape_samples_scraped{{job="bench"}}[{window}s]))', t1)
            cpu = end[name] - start[name]
            results[name] = (cpu, samples, cpu / (samples / 1e6) if samples else float("inf"))
        with open("/proc/loadavg") as f:
            load = f.read().split()[:3]
        print(
            f"scrape cpu: {args.targets} targets x {len(body.splitlines())} lines every {args.interval}, "
            f"window {window}s, loadavg {' '.join(load)}, {os.cpu_count()} cpus"
        )
        for name, (cpu, samples, per_million) in results.items():
            print(f"  {name:<10} cpu {cpu:7.2f} s  samples {samples:12.0f}  cpu s per million samples {per_million:.3f}")
        ratio = results["sextant"][2] / results["prometheus"][2]
        print(f"scrape cpu ratio sextant/prometheus: {ratio:.2f} (target <= 0.5)")
    finally:
        stop()


if __name__ == "__main__":
    main()
