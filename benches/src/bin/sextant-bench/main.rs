//! `sextant-bench`: Sextant side by side with Prometheus 2.42 and VictoriaMetrics 1.79.
//!
//! One run generates the dataset with `../shared/bench/gen_dataset.py`, loads it into the three
//! systems (all on 127.0.0.1, free ports, every process killed at the end) and measures disk
//! bytes per sample, import time, head-append rate (`tsdb bench write`), remote-write ingest per
//! CPU-second, RSS per active series, query latency with cross-checked results, and restart time
//! with a full WAL. It writes a JSON results file and, for `--size full`, regenerates
//! `BENCHMARKS.md` and its SVG plots. `--report-only FILE` regenerates them from a results file.
//!
//! ```text
//! cargo run --release -p sextant-benches --bin sextant-bench -- --size full
//! cargo run -p sextant-benches --bin sextant-bench -- --size smoke --sextant target/debug/sextant
//! ```

mod http;
mod procs;
mod replay;
mod report;
mod results;
mod svg;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;

use procs::{Server, Spec, System};
use results::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SizeName {
    /// A few minutes, for CI; figures not published.
    Smoke,
    /// The published figures (15 to 25 minutes on a busy 2-core machine).
    Full,
}

#[derive(Debug, Parser)]
#[command(name = "sextant-bench", about = "Sextant side by side with Prometheus and VictoriaMetrics")]
struct Args {
    /// Dataset and repetition size.
    #[arg(long, value_enum, default_value = "smoke")]
    size: SizeName,
    /// The sextant binary to measure; without it, a release build is made (into
    /// $CARGO_TARGET_DIR, /work/release-target when it exists) and copied into the work dir.
    #[arg(long)]
    sextant: Option<PathBuf>,
    /// Working directory (datasets are cached there across runs; data dirs are recreated);
    /// default `/var/tmp/sextant-bench-<size>`.
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// The shared data directory holding `bench/` (gen_dataset.py, queries.txt, 20kseries.json).
    #[arg(long)]
    shared: Option<PathBuf>,
    /// Results file; default `<workdir>/<size>.json`, and for `--size full` also
    /// `benches/results/full.json` in the repository.
    #[arg(long)]
    results: Option<PathBuf>,
    /// Write BENCHMARKS.md and the plots even for a smoke run.
    #[arg(long)]
    publish: bool,
    /// Run only these phases (for debugging the harness): import, append, rw.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Only regenerate BENCHMARKS.md and the plots from this results file.
    #[arg(long)]
    report_only: Option<PathBuf>,
}

/// The shape of a run.
#[derive(Debug, Clone)]
struct Size {
    instances: usize,
    scrapes: usize,
    rw_small: usize,
    rw_large: usize,
    rw_scrapes: usize,
    bw_metrics: usize,
    bw_scrapes: usize,
    bw_reps: usize,
    query_reps: usize,
    idle: Duration,
}

impl SizeName {
    fn size(self) -> Size {
        match self {
            SizeName::Smoke => Size {
                instances: 2,
                scrapes: 240,
                rw_small: 2,
                rw_large: 4,
                rw_scrapes: 120,
                bw_metrics: 1_000,
                bw_scrapes: 300,
                bw_reps: 1,
                query_reps: 7,
                idle: Duration::from_secs(1),
            },
            SizeName::Full => Size {
                instances: 10,
                scrapes: 1_440,
                rw_small: 20,
                rw_large: 60,
                rw_scrapes: 240,
                bw_metrics: 10_000,
                bw_scrapes: 3_000,
                bw_reps: 5,
                query_reps: 7,
                idle: Duration::from_secs(20),
            },
        }
    }
}

/// The repository root (this crate's parent).
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(file) = &args.report_only {
        let res: Results = serde_json::from_str(&std::fs::read_to_string(file)?)?;
        return report::publish(&res, &repo_root());
    }
    let started = Instant::now();
    let shared = match &args.shared {
        Some(d) => d.clone(),
        None => sextant_benches::shared_bench_dir()
            .and_then(|b| b.parent().map(Path::to_path_buf))
            .context("../shared/bench not found: pass --shared DIR")?,
    };
    let bench = shared.join("bench");
    let size = args.size.size();
    let workdir = args.workdir.clone().unwrap_or_else(|| {
        PathBuf::from(format!("/var/tmp/sextant-bench-{}", format!("{:?}", args.size).to_lowercase()))
    });
    std::fs::create_dir_all(&workdir)?;
    let work = workdir.canonicalize()?;
    ensure_peers()?;
    let sextant_bin = match &args.sextant {
        Some(p) => p.canonicalize().with_context(|| format!("{}", p.display()))?,
        None => build_sextant(&work)?,
    };
    let mut res = Results {
        size: format!("{:?}", args.size).to_lowercase(),
        started_utc: utc_now(),
        machine: machine(&sextant_bin),
        ..Default::default()
    };
    let mut run = Run { work: work.clone(), bench, size, sextant_bin, only: args.only.clone(), res: &mut res };
    run.all();
    res.duration_s = started.elapsed().as_secs_f64();
    res.machine.load_end = loadavg();
    let results_file = args.results.clone().unwrap_or_else(|| work.join(format!("{}.json", res.size)));
    std::fs::write(&results_file, serde_json::to_string_pretty(&res)?)?;
    eprintln!("results: {}", results_file.display());
    if args.size == SizeName::Full || args.publish {
        let dir = repo_root().join("benches/results");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("{}.json", res.size)), serde_json::to_string_pretty(&res)?)?;
        report::publish(&res, &repo_root())?;
        eprintln!("wrote BENCHMARKS.md and benches/results/");
    }
    println!("{}", report::one_line(&res));
    if args.size == SizeName::Smoke && !res.notes.is_empty() {
        for n in &res.notes {
            eprintln!("problem: {n}");
        }
        bail!("{} problems (a smoke run must have none)", res.notes.len());
    }
    Ok(())
}

/// Installs the Debian packages of the peers when their binaries are missing.
fn ensure_peers() -> anyhow::Result<()> {
    let missing = ["prometheus", "promtool", "victoria-metrics"].iter().any(|b| {
        !Command::new("sh").arg("-c").arg(format!("command -v {b}")).output().is_ok_and(|o| o.status.success())
    });
    if !missing {
        return Ok(());
    }
    eprintln!("installing prometheus and victoria-metrics with apt-get");
    let install = || Command::new("apt-get").args(["install", "-y", "prometheus", "victoria-metrics"]).status();
    if !install()?.success() {
        Command::new("apt-get").arg("update").status()?;
        if !install()?.success() {
            bail!("apt-get install prometheus victoria-metrics failed");
        }
    }
    Ok(())
}

/// Builds the release binary and copies it into the work dir (the target dir may be shared).
fn build_sextant(work: &Path) -> anyhow::Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let shared = PathBuf::from("/work/release-target");
        if shared.is_dir() {
            shared
        } else {
            repo_root().join("target")
        }
    });
    eprintln!("building sextant (release) into {}", target.display());
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "-p", "sextant-examples", "--bin", "sextant"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(repo_root())
        .status()?;
    if !status.success() {
        bail!("cargo build --release failed");
    }
    let copy = work.join("sextant");
    std::fs::copy(target.join("release/sextant"), &copy)?;
    Ok(copy)
}

fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn loadavg() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let v: Vec<f64> = text.split_whitespace().take(3).filter_map(|x| x.parse().ok()).collect();
    [v.first().copied().unwrap_or(0.0), v.get(1).copied().unwrap_or(0.0), v.get(2).copied().unwrap_or(0.0)]
}

fn machine(sextant: &Path) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: f64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let out = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .current_dir(repo_root())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    Machine {
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        cpu_model: cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default(),
        mem_gib: mem_kb / 1024.0 / 1024.0,
        kernel: out("uname", &["-r"]),
        load_start: loadavg(),
        load_end: [0.0; 3],
        sextant_commit: out("git", &["log", "-1", "--format=%h %s"]),
        sextant_binary: sextant.display().to_string(),
        prometheus_version: out("prometheus", &["--version"]).lines().next().unwrap_or_default().to_string(),
        victoria_version: out("dpkg-query", &["-W", "-f=${Version}", "victoria-metrics"]),
    }
}

/// One run's state.
struct Run<'a> {
    work: PathBuf,
    bench: PathBuf,
    size: Size,
    sextant_bin: PathBuf,
    only: Vec<String>,
    res: &'a mut Results,
}

impl Run<'_> {
    /// Every phase; a failing phase is recorded in the notes and the run goes on.
    fn all(&mut self) {
        let phases = [
            ("import", "dataset, import, disk and queries"),
            ("append", "head append (tsdb bench write)"),
            ("rw", "remote write, RSS and restart"),
        ];
        for (key, name) in phases {
            if !self.only.is_empty() && !self.only.iter().any(|o| o == key) {
                continue;
            }
            eprintln!("== {name} ({:.0}s)", self.res.duration_s);
            let t = Instant::now();
            let result = match key {
                "import" => self.import_and_query(),
                "append" => self.head_append(),
                _ => self.remote_write_all(),
            };
            if let Err(e) = result {
                eprintln!("phase {name} failed: {e:#}");
                self.res.notes.push(format!("phase `{name}` failed: {e:#}"));
            }
            self.res.duration_s += t.elapsed().as_secs_f64();
        }
    }

    fn spec(&self, system: System, data: &Path) -> anyhow::Result<Spec> {
        let config = self.work.join("prom.yml");
        // No scrape targets, no alerting, no remote write: no outbound connection.
        std::fs::write(&config, "global: {scrape_interval: 15s, evaluation_interval: 15s}\nscrape_configs: []\n")?;
        let log = data.with_extension("log");
        Ok(Spec { system, sextant_bin: self.sextant_bin.clone(), data: data.to_path_buf(), config, log })
    }

    /// Runs gen_dataset.py into `file` unless it is there (the output is deterministic).
    fn generate(&self, instances: usize, scrapes: usize, format: &str) -> anyhow::Result<PathBuf> {
        let file = self.work.join(format!("data_{instances}x{scrapes}.{format}"));
        if file.metadata().map(|m| m.len() > 0).unwrap_or(false) {
            return Ok(file);
        }
        eprintln!("generating {}", file.display());
        let tmp = file.with_extension("tmp");
        let status = Command::new("python3")
            .arg(self.bench.join("gen_dataset.py"))
            .arg("--template")
            .arg(self.bench.join("node_exporter_1.5.0_sample.prom"))
            .args(["--instances", &instances.to_string(), "--scrapes", &scrapes.to_string(), "--format", format])
            .stdout(std::fs::File::create(&tmp)?)
            .status()?;
        if !status.success() {
            bail!("gen_dataset.py failed");
        }
        std::fs::rename(&tmp, &file)?;
        Ok(file)
    }

    fn fresh_dir(&self, name: &str) -> anyhow::Result<PathBuf> {
        let dir = self.work.join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        let _ = std::fs::remove_file(dir.with_extension("log"));
        Ok(dir)
    }

    fn import_and_query(&mut self) -> anyhow::Result<()> {
        let s = self.size.clone();
        let om = self.generate(s.instances, s.scrapes, "om")?;
        let text = std::fs::File::open(&om)?;
        let samples = std::io::BufRead::lines(std::io::BufReader::new(text))
            .map_while(Result::ok)
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .count() as u64;
        let start_s = 1_700_000_000i64;
        let end_s = start_s + (s.scrapes as i64 - 1) * 15;
        self.res.dataset = Dataset {
            instances: s.instances,
            scrapes: s.scrapes,
            samples,
            series: samples / s.scrapes as u64,
            om_bytes: om.metadata()?.len(),
            start_s,
            end_s,
            step_s: 60,
            ..Default::default()
        };

        // Prometheus: promtool backfill (24 h blocks: one pass, no compaction left to do).
        let prom_dir = self.fresh_dir("prom")?;
        let mut cmd = Command::new("promtool");
        cmd.args(["tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=24h"]).arg(&om).arg(&prom_dir);
        let (wall, cpu, rss) = procs::timed(cmd, &self.work.join("promtool-import.log"))?;
        self.res
            .import
            .insert(System::Prometheus.key().into(), Import { wall_s: wall, cpu_s: cpu, max_rss_bytes: rss });
        self.res.disk.insert(System::Prometheus.key().into(), block_disk(&prom_dir)?);

        // Sextant: the same file, the same block range.
        let ours_dir = self.fresh_dir("sextant")?;
        let mut cmd = Command::new(&self.sextant_bin);
        cmd.args(["tsdb", "import", "openmetrics"]).arg(&om).arg(&ours_dir).args(["--block-hours", "24"]);
        match procs::timed(cmd, &self.work.join("sextant-import.log")) {
            Ok((wall, cpu, rss)) => {
                self.res
                    .import
                    .insert(System::Sextant.key().into(), Import { wall_s: wall, cpu_s: cpu, max_rss_bytes: rss });
                self.res.disk.insert(System::Sextant.key().into(), block_disk(&ours_dir)?);
            }
            Err(e) => self.res.notes.push(format!("sextant import failed: {e:#}")),
        }

        // VictoriaMetrics: /api/v1/import/prometheus, flush, merge.
        let vm_dir = self.fresh_dir("vm")?;
        let vm = self.spec(System::Victoria, &vm_dir)?.start()?;
        let (c0, t0) = (vm.cpu_seconds()?, Instant::now());
        let (status, body) =
            http::Conn::open(vm.addr)?.request("POST", "/api/v1/import/prometheus", &[], http::Body::File(&om))?;
        if status / 100 != 2 {
            bail!("VictoriaMetrics import: HTTP {status}: {}", String::from_utf8_lossy(&body));
        }
        http::get(vm.addr, "/internal/force_flush")?;
        let (wall, cpu) = (t0.elapsed().as_secs_f64(), vm.cpu_seconds()? - c0);
        self.res.import.insert(System::Victoria.key().into(), Import { wall_s: wall, cpu_s: cpu, max_rss_bytes: 0 });
        http::get(vm.addr, "/internal/force_merge?partition_prefix=2023_11")?;
        std::thread::sleep(Duration::from_secs(2));
        let merge_started = Instant::now();
        while vm.metric("vm_active_merges", "")? > 0.0 && merge_started.elapsed() < Duration::from_secs(300) {
            std::thread::sleep(Duration::from_millis(500));
        }
        let data = vm.metric("vm_data_size_bytes", "type=\"storage/small\"")?
            + vm.metric("vm_data_size_bytes", "type=\"storage/big\"")?;
        let index = vm.metric("vm_data_size_bytes", "type=\"indexdb\"")?;
        let rows = vm.metric("vm_rows", "type=\"storage/small\"")? + vm.metric("vm_rows", "type=\"storage/big\"")?;
        self.res.disk.insert(
            System::Victoria.key().into(),
            Disk {
                samples: rows as u64,
                chunks_bytes: data as u64,
                index_bytes: index as u64,
                dir_bytes: procs::dir_bytes(&vm_dir),
            },
        );

        // Queries through each HTTP API.
        let mut servers: BTreeMap<System, Server> = BTreeMap::new();
        servers.insert(System::Victoria, vm);
        servers.insert(System::Prometheus, self.spec(System::Prometheus, &prom_dir)?.start()?);
        if self.res.disk.contains_key(System::Sextant.key()) {
            match self.spec(System::Sextant, &ours_dir)?.start() {
                Ok(s) => {
                    servers.insert(System::Sextant, s);
                }
                Err(e) => self.res.notes.push(format!("sextant server failed to start: {e:#}")),
            }
        }
        self.queries(&servers)?;
        for (sys, server) in &servers {
            self.res.rss_after_queries.insert(sys.key().into(), server.rss_bytes().unwrap_or(0));
        }
        Ok(())
    }

    fn queries(&mut self, servers: &BTreeMap<System, Server>) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(self.bench.join("queries.txt"))?;
        let d = &self.res.dataset;
        let (start, end, step) = (d.start_s, d.end_s, d.step_s);
        for q in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            eprintln!("query {q}");
            let mut row = QueryRow { query: q.to_string(), ..Default::default() };
            let mut answers: BTreeMap<System, Option<Series>> = BTreeMap::new();
            for (sys, server) in servers {
                let mut path =
                    format!("/api/v1/query_range?query={}&start={start}&end={end}&step={step}", http::encode(q));
                if *sys == System::Victoria {
                    path.push_str("&nocache=1");
                }
                let (result, answer) = time_query(server, &path, self.size.query_reps);
                answers.insert(*sys, answer);
                row.per.insert(sys.key().into(), result);
            }
            row.mismatches = cross_check(&answers);
            self.res.queries.push(row);
        }
        Ok(())
    }

    fn head_append(&mut self) -> anyhow::Result<()> {
        let s = self.size.clone();
        let series_file = self.bench.join("20kseries.json");
        let pin = Path::new("/usr/bin/taskset").exists() && self.res.machine.cores > 1;
        let tools: [(System, PathBuf, &str); 2] = [
            (System::Prometheus, PathBuf::from("promtool"), "promtool"),
            (System::Sextant, self.sextant_bin.clone(), "sextant"),
        ];
        for rep in 0..s.bw_reps {
            for (sys, bin, name) in &tools {
                let out_dir = self.fresh_dir(&format!("benchwrite-{name}"))?;
                let mut cmd = if pin {
                    let mut c = Command::new("taskset");
                    c.args(["-c", "1"]).arg(bin);
                    c
                } else {
                    Command::new(bin)
                };
                cmd.args(["tsdb", "bench", "write"])
                    .arg(format!("--out={}", out_dir.display()))
                    .arg(format!("--metrics={}", s.bw_metrics))
                    .arg(format!("--scrapes={}", s.bw_scrapes))
                    .arg(&series_file);
                if *sys == System::Sextant {
                    // Without the replay timing that follows by default: the process then does
                    // promtool's work and no more, so their CPU seconds compare.
                    cmd.arg("--no-replay");
                }
                let log = self.work.join(format!("benchwrite-{name}-{rep}.log"));
                let entry = self.res.append.entry(sys.key().into()).or_default();
                entry.pinned_to_one_core = pin;
                entry.samples = (s.bw_metrics * s.bw_scrapes) as u64;
                match procs::timed(cmd, &log) {
                    Ok((_, cpu, _)) => {
                        let text = std::fs::read_to_string(&log)?;
                        let rate = text
                            .lines()
                            .rev()
                            .find_map(|l| l.split_once("samples/sec:").map(|(_, v)| v.trim().parse::<f64>()))
                            .context("no samples/sec line")??;
                        entry.runs.push(rate);
                        entry.cpu_s.push(cpu);
                    }
                    Err(e) => self.res.notes.push(format!("{name} tsdb bench write failed: {e:#}")),
                }
                let _ = std::fs::remove_dir_all(&out_dir);
            }
        }
        Ok(())
    }

    fn remote_write_all(&mut self) -> anyhow::Result<()> {
        let s = self.size.clone();
        let mut sizes = Vec::new();
        for instances in [s.rw_small, s.rw_large] {
            let file = self.generate(instances, s.rw_scrapes, "prom")?;
            eprintln!("encoding {}", file.display());
            let enc = replay::encode(&file)?;
            sizes.push(RwSize {
                instances,
                scrapes: s.rw_scrapes,
                series: enc.series,
                samples: enc.samples,
                encoded_bytes: enc.bytes,
            });
            for sys in System::ALL {
                let large = instances == s.rw_large;
                if let Err(e) = self.remote_write(sys, &enc, instances, large) {
                    self.res.notes.push(format!("{} remote write ({instances} hosts): {e:#}", sys.title()));
                }
            }
        }
        self.res.dataset.rw_sizes = sizes;
        Ok(())
    }

    fn remote_write(
        &mut self,
        sys: System,
        enc: &replay::Encoded,
        instances: usize,
        large: bool,
    ) -> anyhow::Result<()> {
        eprintln!("remote write: {} <- {instances} hosts", sys.title());
        let dir = self.fresh_dir(&format!("rw-{}-{instances}", sys.key()))?;
        let spec = self.spec(sys, &dir)?;
        let mut server = spec.start()?;
        let (name, filter) = sys.rw_counter();
        let (n0, c0) = (server.metric(name, filter)?, server.cpu_seconds()?);
        let sent = replay::send(server.addr, enc)?;
        // Wait until the counter reaches what was sent or stops moving (asynchronous inserts).
        let mut n1 = server.metric(name, filter)?;
        let (settle, mut moved) = (Instant::now(), Instant::now());
        while n1 - n0 < enc.samples as f64 && settle.elapsed() < Duration::from_secs(60) {
            if moved.elapsed() > Duration::from_secs(3) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            let n = server.metric(name, filter)?;
            if n != n1 {
                moved = Instant::now();
            }
            n1 = n;
        }
        let c1 = server.cpu_seconds()?;
        std::thread::sleep(self.size.idle);
        let run = RwRun {
            series: enc.series,
            samples_sent: enc.samples,
            samples_accepted: (n1 - n0) as u64,
            requests: sent.requests,
            failed_requests: sent.failed_requests,
            first_error: sent.first_error,
            cpu_s: c1 - c0,
            wall_s: sent.wall_s,
            rss_bytes: server.rss_bytes()?,
            anon_bytes: server.anon_bytes()?,
        };
        let entry = self.res.remote_write.entry(sys.key().into()).or_default();
        if large {
            entry.large = Some(run);
        } else {
            entry.small = Some(run);
        }
        if !large {
            server.stop("TERM")?;
            return Ok(());
        }
        // Restart with the WAL full of what was just written: SIGTERM, then SIGKILL.
        let mut restart =
            Restart { dir_bytes: procs::dir_bytes(&dir), wal_bytes: wal_bytes(sys, &dir), ..Default::default() };
        for signal in ["TERM", "KILL"] {
            let stop = server.stop(signal)?;
            server = spec.spawn()?;
            let r = self.time_restart(&mut server, stop)?;
            if signal == "TERM" {
                restart.term = Some(r);
            } else {
                restart.kill = Some(r);
            }
        }
        server.stop("TERM")?;
        self.res.restart.insert(sys.key().into(), restart);
        Ok(())
    }

    /// Polls readiness and a first query from spawn on, every 5 ms.
    fn time_restart(&self, server: &mut Server, stop: Duration) -> anyhow::Result<RestartRun> {
        let end = 1_700_000_000 + (self.size.rw_scrapes as i64 - 1) * 15;
        let path = format!("/api/v1/query?query={}&time={end}", http::encode("count(node_load1)"));
        let mut r = RestartRun { stop_s: stop.as_secs_f64(), ..Default::default() };
        let ready_path = if server.spec.system == System::Victoria { "/health" } else { "/-/ready" };
        while r.ready_s.is_none() || r.first_query_s.is_none() {
            if server.spawned.elapsed() > Duration::from_secs(600) {
                bail!("not ready after 600 s");
            }
            if r.ready_s.is_none() && matches!(http::get(server.addr, ready_path), Ok((200, _))) {
                r.ready_s = Some(server.spawned.elapsed().as_secs_f64());
            }
            if r.first_query_s.is_none() {
                if let Ok((200, body)) = http::get(server.addr, &path) {
                    r.first_query_s = Some(server.spawned.elapsed().as_secs_f64());
                    r.first_query_value = serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["data"]["result"][0]["value"][1].as_str().and_then(|s| s.parse().ok()));
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(r)
    }
}

/// Chunk, index and directory bytes of a Prometheus-layout block directory, and the samples
/// its blocks' meta.json files count.
fn block_disk(dir: &Path) -> anyhow::Result<Disk> {
    let mut d = Disk { dir_bytes: procs::dir_bytes(dir), ..Default::default() };
    for entry in std::fs::read_dir(dir)?.flatten() {
        let p = entry.path();
        if !p.join("meta.json").exists() {
            continue;
        }
        d.chunks_bytes += procs::dir_bytes(&p.join("chunks"));
        d.index_bytes += procs::dir_bytes(&p.join("index"));
        let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p.join("meta.json"))?)?;
        d.samples += meta["stats"]["numSamples"].as_u64().unwrap_or(0);
    }
    Ok(d)
}

fn wal_bytes(sys: System, dir: &Path) -> u64 {
    match sys {
        System::Victoria => 0,
        _ => procs::dir_bytes(&dir.join("wal")),
    }
}

/// A range query's answer: label set (as JSON text) -> (ms timestamp -> value).
type Series = BTreeMap<String, BTreeMap<i64, f64>>;

fn parse_matrix(body: &[u8]) -> Result<Series, String> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| format!("bad JSON: {e}"))?;
    if v["status"] != "success" {
        return Err(format!("{}: {}", v["errorType"], v["error"]));
    }
    let mut out = Series::new();
    for s in v["data"]["result"].as_array().ok_or("no result array")? {
        let metric: BTreeMap<String, String> = serde_json::from_value(s["metric"].clone()).unwrap_or_default();
        let key = serde_json::to_string(&metric).unwrap_or_default();
        let points = s["values"].as_array().cloned().unwrap_or_default();
        let pts = points
            .iter()
            .filter_map(|p| {
                let t = (p[0].as_f64()? * 1000.0).round() as i64;
                let v = match p[1].as_str()? {
                    "NaN" => f64::NAN,
                    "+Inf" => f64::INFINITY,
                    "-Inf" => f64::NEG_INFINITY,
                    x => x.parse().ok()?,
                };
                Some((t, v))
            })
            .collect();
        out.insert(key, pts);
    }
    Ok(out)
}

/// One warm-up (whose answer is kept for the cross-check), then `reps` timed requests.
fn time_query(server: &Server, path: &str, reps: usize) -> (QueryResult, Option<Series>) {
    let mut r = QueryResult::default();
    let answer = match http::get(server.addr, path) {
        Ok((200, body)) => match parse_matrix(&body) {
            Ok(s) => Some(s),
            Err(e) => {
                r.error = Some(e);
                None
            }
        },
        Ok((status, body)) => {
            r.error = Some(format!("HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(160)])));
            None
        }
        Err(e) => {
            r.error = Some(format!("{e:#}"));
            None
        }
    };
    if let Some(a) = &answer {
        r.series = Some(a.len());
        r.points = a.values().map(BTreeMap::len).sum();
        let mut times: Vec<f64> = (0..reps)
            .filter_map(|_| {
                let t = Instant::now();
                http::get(server.addr, path).ok().filter(|(s, _)| *s == 200)?;
                Some(t.elapsed().as_secs_f64() * 1000.0)
            })
            .collect();
        times.sort_by(f64::total_cmp);
        if !times.is_empty() {
            r.median_ms = Some(times[times.len() / 2]);
            r.min_ms = Some(times[0]);
            r.max_ms = Some(times[times.len() - 1]);
        }
    }
    (r, answer)
}

/// Relative tolerance for Sextant against Prometheus (same PromQL semantics).
const TOL_SEXTANT: f64 = 1e-6;
/// VictoriaMetrics' MetricsQL differs (rate without extrapolation): only gross differences.
const TOL_VM: f64 = 0.5;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= tol * a.abs().max(b.abs()).max(1e-9)
}

/// Series counts and values of Sextant and VictoriaMetrics against Prometheus.
fn cross_check(answers: &BTreeMap<System, Option<Series>>) -> Vec<String> {
    let mut out = Vec::new();
    let Some(Some(prom)) = answers.get(&System::Prometheus) else {
        out.push("no Prometheus answer to compare with".into());
        return out;
    };
    for (sys, tol) in [(System::Sextant, TOL_SEXTANT), (System::Victoria, TOL_VM)] {
        let Some(answer) = answers.get(&sys) else { continue };
        let Some(got) = answer else {
            out.push(format!("{}: no answer", sys.title()));
            continue;
        };
        if got.len() != prom.len() {
            out.push(format!("{}: {} series, Prometheus {}", sys.title(), got.len(), prom.len()));
        }
        let (mut missing, mut points, mut differ) = (0usize, 0usize, 0usize);
        let mut worst: Option<(f64, f64)> = None;
        for (key, want) in prom {
            // VictoriaMetrics keeps __name__ in some results where PromQL drops it; match by
            // label set without it for the peer.
            let found = got.get(key).or_else(|| {
                (sys == System::Victoria && prom.len() == 1 && got.len() == 1).then(|| got.values().next()).flatten()
            });
            let Some(have) = found else {
                missing += 1;
                continue;
            };
            for (t, w) in want {
                points += 1;
                match have.get(t) {
                    Some(h) if close(*h, *w, tol) => {}
                    Some(h) => {
                        differ += 1;
                        worst.get_or_insert((*h, *w));
                    }
                    None => differ += 1,
                }
            }
        }
        if missing > 0 && got.len() == prom.len() && sys == System::Victoria {
            // Same count, different label sets (MetricsQL naming): not a value mismatch.
            continue;
        }
        if missing > 0 {
            out.push(format!("{}: {missing} of Prometheus' series missing", sys.title()));
        }
        if differ > 0 {
            let eg = worst.map(|(h, w)| format!(", e.g. {h} vs {w}")).unwrap_or_default();
            out.push(format!("{}: {differ} of {points} points differ (tolerance {tol}){eg}", sys.title()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(series: &[(&str, &[(f64, &str)])]) -> Series {
        let result: Vec<serde_json::Value> = series
            .iter()
            .map(|(name, pts)| {
                serde_json::json!({"metric": {"__name__": name}, "values": pts.iter().map(|(t, v)| serde_json::json!([t, v])).collect::<Vec<_>>()})
            })
            .collect();
        let body = serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": result}});
        parse_matrix(body.to_string().as_bytes()).unwrap()
    }

    fn check(sextant: Series, prom: Series, want: &[&str]) {
        let answers = BTreeMap::from([(System::Sextant, Some(sextant)), (System::Prometheus, Some(prom))]);
        assert_eq!(cross_check(&answers), want);
    }

    #[test]
    fn cross_checks() {
        let a = || matrix(&[("a", &[(1.0, "1"), (2.0, "2")])]);
        check(a(), a(), &[]);
        check(matrix(&[("a", &[(1.0, "1"), (2.0, "2.0000000001")])]), a(), &[]);
        check(
            matrix(&[("a", &[(1.0, "1"), (2.0, "3")])]),
            a(),
            &["Sextant: 1 of 2 points differ (tolerance 0.000001), e.g. 3 vs 2"],
        );
        check(matrix(&[("b", &[(1.0, "1")])]), a(), &["Sextant: 1 of Prometheus' series missing"]);
        check(matrix(&[]), a(), &["Sextant: 0 series, Prometheus 1", "Sextant: 1 of Prometheus' series missing"]);
        check(matrix(&[("a", &[(1.0, "NaN")])]), matrix(&[("a", &[(1.0, "NaN")])]), &[]);
    }

    #[test]
    fn parse_errors() {
        assert!(parse_matrix(br#"{"status":"error","errorType":"bad_data","error":"x"}"#).is_err());
        assert!(parse_matrix(b"not json").is_err());
    }
}
