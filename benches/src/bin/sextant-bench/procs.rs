//! The three servers as child processes: start on a free loopback port, wait until ready,
//! read CPU time and RSS from `/proc`, stop with SIGTERM or SIGKILL. A dropped `Server` is
//! killed and reaped, so no process outlives the harness (also on errors and panics).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::http;

/// Which system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum System {
    Sextant,
    Prometheus,
    Victoria,
}

impl System {
    pub const ALL: [System; 3] = [System::Sextant, System::Prometheus, System::Victoria];

    pub fn key(self) -> &'static str {
        match self {
            System::Sextant => "sextant",
            System::Prometheus => "prometheus",
            System::Victoria => "victoriametrics",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            System::Sextant => "Sextant",
            System::Prometheus => "Prometheus 2.42",
            System::Victoria => "VictoriaMetrics 1.79",
        }
    }

    /// The readiness endpoint.
    fn ready_path(self) -> &'static str {
        match self {
            System::Victoria => "/health",
            _ => "/-/ready",
        }
    }

    /// The counter of samples taken by the remote-write receiver: (name, label filter).
    pub fn rw_counter(self) -> (&'static str, &'static str) {
        match self {
            System::Sextant => ("sextant_api_remote_write_samples_total", ""),
            System::Prometheus => ("prometheus_tsdb_head_samples_appended_total", ""),
            // vm_rows_inserted_total{type="promremotewrite"} stays 0 in Debian's 1.79.5 build.
            System::Victoria => ("vm_rows_added_to_storage_total", ""),
        }
    }
}

/// A free port on 127.0.0.1 (bound, read, released).
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// How to start one system on one data directory.
#[derive(Debug, Clone)]
pub struct Spec {
    pub system: System,
    pub sextant_bin: PathBuf,
    pub data: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    pub spec: Spec,
    pub addr: SocketAddr,
    child: Option<Child>,
    /// When the process was spawned.
    pub spawned: Instant,
}

impl Spec {
    fn command(&self, addr: SocketAddr) -> Command {
        let listen = addr.to_string();
        let data = self.data.display().to_string();
        let mut cmd = match self.system {
            System::Sextant => {
                let mut c = Command::new(&self.sextant_bin);
                c.arg("server")
                    .arg(format!("--config.file={}", self.config.display()))
                    .arg(format!("--storage.tsdb.path={data}"))
                    .arg("--storage.tsdb.retention.time=100y")
                    // Prometheus 2.42's closed range windows, so the cross-check compares
                    // like with like (Sextant defaults to Prometheus 3's left-open windows).
                    .arg("--query.semantics=prometheus2")
                    .arg(format!("--web.listen-address={listen}"));
                c
            }
            System::Prometheus => {
                let mut c = Command::new("prometheus");
                c.arg(format!("--config.file={}", self.config.display()))
                    .arg(format!("--storage.tsdb.path={data}"))
                    .arg("--storage.tsdb.retention.time=100y")
                    .arg(format!("--web.listen-address={listen}"))
                    .arg("--web.enable-remote-write-receiver")
                    .arg("--log.level=info");
                c
            }
            System::Victoria => {
                let mut c = Command::new("victoria-metrics");
                c.arg(format!("-storageDataPath={data}"))
                    .arg(format!("-httpListenAddr={listen}"))
                    .arg("-retentionPeriod=100y")
                    .arg("-search.disableCache")
                    .arg("-loggerLevel=WARN");
                c
            }
        };
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Spawns the server; does not wait for readiness.
    pub fn spawn(&self) -> anyhow::Result<Server> {
        let addr = free_addr()?;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let mut cmd = self.command(addr);
        cmd.stdout(log.try_clone()?).stderr(log);
        let spawned = Instant::now();
        let child = cmd.spawn().with_context(|| format!("starting {}", self.system.title()))?;
        Ok(Server { spec: self.clone(), addr, child: Some(child), spawned })
    }

    /// Spawns the server and waits until it is ready.
    pub fn start(&self) -> anyhow::Result<Server> {
        let mut s = self.spawn()?;
        s.wait_ready(Duration::from_secs(300))?;
        Ok(s)
    }
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Polls the readiness endpoint every 5 ms; returns the time since spawn.
    pub fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<Duration> {
        let path = self.spec.system.ready_path();
        loop {
            if let Ok((200, _)) = http::get(self.addr, path) {
                return Ok(self.spawned.elapsed());
            }
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("{} exited with {status}; see {}", self.spec.system.title(), self.spec.log.display());
                }
            }
            if self.spawned.elapsed() > limit {
                bail!("{} not ready after {limit:?}; see {}", self.spec.system.title(), self.spec.log.display());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// CPU seconds (user + system) of the server process so far.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        let fields: Vec<&str> = stat.rsplit_once(')').context("bad stat")?.1.split_whitespace().collect();
        let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
        Ok(ticks / clock_ticks())
    }

    /// Resident set size in bytes.
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        self.status_bytes("VmRSS")
    }

    /// Resident anonymous memory in bytes (heap, stacks): the resident set without the mapped
    /// executable and libraries, whose resident share depends on the page cache, not the data.
    pub fn anon_bytes(&self) -> anyhow::Result<u64> {
        self.status_bytes("RssAnon")
    }

    fn status_bytes(&self, field: &str) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let line = status
            .lines()
            .find(|l| l.strip_prefix(field).is_some_and(|rest| rest.starts_with(':')))
            .with_context(|| format!("no {field}"))?;
        let kb: u64 = line.split_whitespace().nth(1).with_context(|| format!("bad {field}"))?.parse()?;
        Ok(kb * 1024)
    }

    /// Sum of the samples of one metric on `/metrics` whose labels contain `filter`.
    pub fn metric(&self, name: &str, filter: &str) -> anyhow::Result<f64> {
        let (status, body) = http::get(self.addr, "/metrics")?;
        if status != 200 {
            bail!("/metrics answered {status}");
        }
        let text = String::from_utf8_lossy(&body);
        let mut sum = 0.0;
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            if &line[..end] == name && line.contains(filter) {
                sum += line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            }
        }
        Ok(sum)
    }

    /// Sends a signal and waits for the process to exit; returns how long the exit took.
    pub fn stop(&mut self, signal: &str) -> anyhow::Result<Duration> {
        let Some(mut child) = self.child.take() else { return Ok(Duration::ZERO) };
        let started = Instant::now();
        let status = Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status()?;
        if !status.success() {
            let _ = child.kill();
        }
        child.wait()?;
        Ok(started.elapsed())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Bytes of a directory tree.
pub fn dir_bytes(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path).map(|rd| rd.flatten().map(|e| dir_bytes(&e.path())).sum()).unwrap_or(0)
}

/// Runs a command to completion under `/usr/bin/time`; returns (wall s, cpu s, max RSS bytes).
pub fn timed(cmd: Command, log: &Path) -> anyhow::Result<(f64, f64, u64)> {
    let time_file = log.with_extension("time");
    let prog = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let out = std::fs::File::create(log)?;
    let mut timed = Command::new("/usr/bin/time");
    timed.arg("-f").arg("%e %U %S %M").arg("-o").arg(&time_file).arg(prog).args(args);
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            timed.env(k, v);
        }
    }
    if let Some(dir) = cmd.get_current_dir() {
        timed.current_dir(dir);
    }
    let status = timed.stdout(out.try_clone()?).stderr(out).stdin(Stdio::null()).status()?;
    if !status.success() {
        bail!("{:?} failed ({status}); see {}", cmd.get_program(), log.display());
    }
    let text = std::fs::read_to_string(&time_file)?;
    let last = text.lines().last().context("empty time output")?;
    let v: Vec<f64> = last.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    if v.len() != 4 {
        bail!("bad /usr/bin/time output {last:?}");
    }
    Ok((v[0], v[1] + v[2], v[3] as u64 * 1024))
}
