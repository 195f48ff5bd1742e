#!/usr/bin/env python3
"""CPU time and peak RSS per scrape: `sextant exporter redis|postgres|mysql|blackbox` next to
Debian's Go exporters, against the same real server on 127.0.0.1.

For each exporter pair: start the server (throwaway data directory, free port), start both
exporters, scrape each WARMUP times, then SCRAPES times alternately (ours, theirs, ...), and
read utime+stime from /proc/PID/stat before and after the measured scrapes, and VmHWM (peak
RSS) and RssAnon (heap and stacks, without the mapped binary) from /proc/PID/status at the end. Prints one line per exporter with both figures and
the ratios (ours / Go), and where each process's resident pages are (smaps: executable text,
the executable's other pages, shared libraries, anonymous). Bounded: every process started is killed on exit; a scrape that takes
more than 10 s aborts the run.

usage: exporter_cpu.py --sextant PATH [--scrapes N] [--only redis,postgres,mysql,blackbox,node]
(node: both exporters with their default collectors on this host.)

With --trace DIR nothing is measured: our exporter runs under `valgrind --tool=callgrind` against
the same servers, is scraped WARMUP times (blackbox: every module), and leaves DIR/<name>.callgrind,
the functions it ran. `scripts/link-order.sh` turns those into examples/link-order.txt.
Needs (root): redis-server, postgresql (15), mariadb-server, python3 and the Debian packages
prometheus-redis-exporter, prometheus-postgres-exporter, prometheus-mysqld-exporter,
prometheus-blackbox-exporter, prometheus-node-exporter.
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

TICKS = os.sysconf("SC_CLK_TCK")
PROCS = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(cmd, env=None, log=None, user=None):
    out = open(log, "wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT, user=user)
    PROCS.append(proc)
    return proc


def wait_port(port, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port} after {seconds}s")


def scrape(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return response.read()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def peak_rss_kib(pid):
    return status_kib(pid, "VmHWM")


def rss_breakdown(pid):
    """Resident KiB of one process by kind of mapping (from /proc/PID/smaps): the executable's
    text, its other file-backed pages (read-only data, relocated .data.rel.ro), shared
    libraries, and anonymous memory (heap, stacks, malloc arenas)."""
    exe = os.path.realpath(f"/proc/{pid}/exe")
    kinds = {"text": 0, "exe-data": 0, "libs": 0, "anon": 0}
    kind = "anon"
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5 and not fields[0].endswith(":"):
                path = fields[5] if len(fields) > 5 else ""
                if path == exe:
                    kind = "text" if "x" in fields[1] else "exe-data"
                elif path.startswith("/") and "r-xp" in fields[1] or path.endswith(".so") or ".so." in path:
                    kind = "libs"
                else:
                    kind = "anon"
            elif fields[0] == "Rss:":
                kinds[kind] += int(fields[1])
    return " ".join(f"{k} {v / 1024:.1f}" for k, v in kinds.items())


TRACE = None  # directory for callgrind outputs (--trace)


def ours_cmd(name, argv):
    """Our exporter's command line; under callgrind with --trace."""
    if TRACE is None:
        return argv
    return ["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={TRACE}/{name}.callgrind"] + argv


def trace_scrapes(name, port, paths, warmup):
    wait_port(port, seconds=120)
    for _ in range(warmup):
        for path in paths:
            scrape(port, path)
    return f"{name:9} traced: {TRACE}/{name}.callgrind"


def measure(name, ours, theirs, path, scrapes, warmup):
    """`ours` and `theirs` are (process, port). Returns a result line."""
    if TRACE is not None:
        return trace_scrapes(name, ours[1], [path], warmup)
    for port in (ours[1], theirs[1]):
        wait_port(port)
    for _ in range(warmup):
        scrape(ours[1], path)
        scrape(theirs[1], path)
    before = {p.pid: cpu_seconds(p.pid) for p, _ in (ours, theirs)}
    for _ in range(scrapes):
        scrape(ours[1], path)
        scrape(theirs[1], path)
    cpu = {p.pid: (cpu_seconds(p.pid) - before[p.pid]) / scrapes * 1000 for p, _ in (ours, theirs)}
    rss = {p.pid: peak_rss_kib(p.pid) / 1024 for p, _ in (ours, theirs)}
    anon = {p.pid: status_kib(p.pid, "RssAnon") / 1024 for p, _ in (ours, theirs)}
    o, t = ours[0].pid, theirs[0].pid
    breakdown = f"\n{'':9} RSS MiB now, ours: {rss_breakdown(o)}; go: {rss_breakdown(t)}"
    cpu_ratio = cpu[o] / cpu[t] if cpu[t] > 0 else float("nan")
    return (
        f"{name:9} CPU ms/scrape ours {cpu[o]:.3f} go {cpu[t]:.3f} ratio {cpu_ratio:.2f}; "
        f"peak RSS MiB ours {rss[o]:.1f} go {rss[t]:.1f} ratio {rss[o] / rss[t]:.2f}; "
        f"RssAnon MiB ours {anon[o]:.1f} go {anon[t]:.1f} ratio {anon[o] / anon[t]:.2f}"
        + breakdown
    )


def run_redis(args, work):
    port = free_port()
    spawn(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
           "--dir", work], log=f"{work}/redis.log")
    wait_port(port)
    subprocess.run(["redis-cli", "-p", str(port), "mset", "a", "1", "b", "2"], check=True, stdout=subprocess.DEVNULL)
    addr = f"redis://127.0.0.1:{port}"
    p1, p2 = free_port(), free_port()
    ours = spawn(ours_cmd("redis", [args.sextant, "exporter", "redis", f"--redis.addr={addr}", f"--web.listen-address=127.0.0.1:{p1}"]))
    theirs = spawn(["prometheus-redis-exporter", f"--redis.addr={addr}", f"--web.listen-address=127.0.0.1:{p2}"])
    return measure("redis", (ours, p1), (theirs, p2), "/metrics", args.scrapes, args.warmup)


def run_postgres(args, work):
    pgbin = "/usr/lib/postgresql/15/bin"
    port = free_port()
    shutil.chown(work, "postgres", "postgres")
    subprocess.run([f"{pgbin}/initdb", "-D", f"{work}/data", "-A", "trust", "-U", "postgres"], check=True,
                   stdout=subprocess.DEVNULL, user="postgres")
    spawn([f"{pgbin}/postgres", "-D", f"{work}/data", "-c", "listen_addresses=127.0.0.1", "-c", f"port={port}",
           "-c", f"unix_socket_directories={work}"], user="postgres")
    wait_port(port)
    dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable"
    p1, p2 = free_port(), free_port()
    env = {"DATA_SOURCE_NAME": dsn}
    ours = spawn(ours_cmd("postgres", [args.sextant, "exporter", "postgres", f"--web.listen-address=127.0.0.1:{p1}"]), env=env)
    theirs = spawn(["prometheus-postgres-exporter", f"--web.listen-address=127.0.0.1:{p2}"], env=env)
    return measure("postgres", (ours, p1), (theirs, p2), "/metrics", args.scrapes, args.warmup)


def run_mysql(args, work):
    port = free_port()
    os.makedirs(f"{work}/data")
    subprocess.run(["chown", "-R", "mysql:mysql", work], check=True)
    subprocess.run(["mariadb-install-db", "--user=mysql", f"--datadir={work}/data",
                    "--auth-root-authentication-method=socket", "--skip-test-db"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    sock = f"{work}/mysqld.sock"
    spawn(["mariadbd", "--user=mysql", f"--datadir={work}/data", f"--socket={sock}", f"--pid-file={work}/mysqld.pid",
           "--bind-address=127.0.0.1", f"--port={port}", "--skip-name-resolve", "--innodb-buffer-pool-size=64M"],
          log=f"{work}/mariadbd.log")
    wait_port(port)
    sql = ("CREATE USER 'exporter'@'127.0.0.1' IDENTIFIED BY 'exporterpw'; "
           "GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR, SELECT ON *.* TO 'exporter'@'127.0.0.1';")
    subprocess.run(["mariadb", f"--socket={sock}", "-uroot", "-e", sql], check=True)
    env = {"DATA_SOURCE_NAME": f"exporter:exporterpw@(127.0.0.1:{port})/"}
    p1, p2 = free_port(), free_port()
    ours = spawn(ours_cmd("mysql", [args.sextant, "exporter", "mysql", f"--web.listen-address=127.0.0.1:{p1}"]), env=env)
    theirs = spawn(["prometheus-mysqld-exporter", f"--web.listen-address=127.0.0.1:{p2}"], env=env)
    return measure("mysql", (ours, p1), (theirs, p2), "/metrics", args.scrapes, args.warmup)


def run_blackbox(args, work):
    http_port = free_port()
    os.makedirs(f"{work}/www")
    with open(f"{work}/www/index.html", "w") as f:
        f.write("hello\n")
    spawn([sys.executable, "-m", "http.server", str(http_port), "--bind", "127.0.0.1", "--directory", f"{work}/www"])
    wait_port(http_port)
    config = f"{work}/blackbox.yml"
    with open(config, "w") as f:
        f.write("modules:\n  http_2xx:\n    prober: http\n    http:\n      preferred_ip_protocol: ip4\n"
                "  tcp_connect:\n    prober: tcp\n    tcp:\n      preferred_ip_protocol: ip4\n"
                "  icmp:\n    prober: icmp\n    icmp:\n      preferred_ip_protocol: ip4\n")
    p1, p2 = free_port(), free_port()
    ours = spawn(ours_cmd("blackbox", [args.sextant, "exporter", "blackbox", f"--config.file={config}", f"--web.listen-address=127.0.0.1:{p1}"]))
    theirs = spawn(["prometheus-blackbox-exporter", f"--config.file={config}", f"--web.listen-address=127.0.0.1:{p2}"])
    path = f"/probe?module=http_2xx&target=http://127.0.0.1:{http_port}/"
    if TRACE is not None:
        paths = [path, f"/probe?module=tcp_connect&target=127.0.0.1:{http_port}", "/probe?module=icmp&target=127.0.0.1",
                 "/metrics"]
        return trace_scrapes("blackbox", p1, paths, args.warmup)
    return measure("blackbox", (ours, p1), (theirs, p2), path, args.scrapes, args.warmup)


def run_node(args, work):
    p1, p2 = free_port(), free_port()
    ours = spawn(ours_cmd("node", [args.sextant, "exporter", "node", f"--web.listen-address=127.0.0.1:{p1}"]))
    theirs = spawn(["prometheus-node-exporter", f"--web.listen-address=127.0.0.1:{p2}"])
    return measure("node", (ours, p1), (theirs, p2), "/metrics", args.scrapes, args.warmup)


def link_order_coverage(binary):
    """How much of examples/link-order.txt the binary still has: a stale list (renamed functions,
    new dependency versions) shows up as a low count and a larger `text` figure."""
    order = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "link-order.txt")
    try:
        wanted = {line.strip() for line in open(order) if line.strip()}
        symbols = subprocess.run(["nm", binary], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        return f"link order: not checked ({e})"
    found = len(wanted & {line.rsplit(" ", 1)[-1] for line in symbols.splitlines()})
    return f"link order: {found} of {len(wanted)} functions of examples/link-order.txt are in {binary}" + (
        "" if found >= 0.9 * len(wanted) else " (stale: run scripts/link-order.sh)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sextant", required=True)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--only", default="redis,postgres,mysql,blackbox")
    parser.add_argument("--trace", metavar="DIR", help="record what our exporters run with callgrind, measure nothing")
    args = parser.parse_args()
    global TRACE
    TRACE = os.path.abspath(args.trace) if args.trace else None
    runners = {"redis": run_redis, "postgres": run_postgres, "mysql": run_mysql, "blackbox": run_blackbox,
               "node": run_node}
    with open("/proc/loadavg") as f:
        print(f"loadavg before: {f.read().strip()}")
    if TRACE is None:
        print(link_order_coverage(args.sextant))
    try:
        for name in args.only.split(","):
            work = tempfile.mkdtemp(prefix=f"excpu-{name}-")
            try:
                print(runners[name](args, work), flush=True)
            finally:
                while PROCS:
                    proc = PROCS.pop()
                    proc.terminate()
                    try:
                        proc.wait(timeout=10 if TRACE is None else 120)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                shutil.rmtree(work, ignore_errors=True)
    finally:
        for proc in PROCS:
            proc.kill()
    with open("/proc/loadavg") as f:
        print(f"loadavg after: {f.read().strip()}")


if __name__ == "__main__":
    main()
