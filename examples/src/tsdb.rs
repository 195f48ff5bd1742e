//! `sextant tsdb ...`: TSDB tools. `tsdb bench write` runs the workload of
//! `promtool tsdb bench write` against Sextant's head and WAL, printing the same lines.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use sextant_model::Labels;
use sextant_tsdb::{Db, Options, SeriesRef};

#[derive(Debug, clap::Args)]
pub struct TsdbArgs {
    #[command(subcommand)]
    command: TsdbCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TsdbCommand {
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Debug, clap::Subcommand)]
enum BenchCommand {
    /// Appends scrapes of label sets from a file, as `promtool tsdb bench write` does.
    Write(WriteArgs),
}

#[derive(Debug, clap::Args)]
struct WriteArgs {
    /// Directory for the database (emptied first).
    #[arg(long, default_value = "benchout")]
    out: PathBuf,
    /// Number of series (label sets read from the file).
    #[arg(long, default_value_t = 10_000)]
    metrics: usize,
    /// Number of scrapes to append.
    #[arg(long, default_value_t = 3_000)]
    scrapes: usize,
    /// File of label sets, one JSON object per line.
    #[arg(default_value = "../../tsdb/testdata/20kseries.json")]
    file: PathBuf,
}

pub fn run(args: TsdbArgs) -> anyhow::Result<()> {
    match args.command {
        TsdbCommand::Bench { command: BenchCommand::Write(args) } => bench_write(args),
    }
}

/// Milliseconds between scrapes, as in promtool.
const TIME_DELTA: i64 = 30_000;
/// Series per appending thread and scrapes per round, as in promtool.
const SHARD: usize = 1_000;
const ROUND: usize = 100;

/// CPU seconds (user + system) used by this process so far, from `/proc/self/stat`.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may contain spaces).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn stage<T>(name: &str, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    println!(">> start stage={name}");
    let started = Instant::now();
    let out = f()?;
    println!(">> completed stage={name} duration={:?}", started.elapsed());
    Ok(out)
}

fn read_labels(file: &PathBuf, n: usize) -> anyhow::Result<Vec<Labels>> {
    let reader =
        std::io::BufReader::new(std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?);
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(n);
    for (i, line) in reader.lines().enumerate() {
        if out.len() >= n {
            break;
        }
        let line = line?;
        let map: BTreeMap<String, String> =
            serde_json::from_str(&line).with_context(|| format!("{}:{}", file.display(), i + 1))?;
        let labels = Labels::try_from_pairs(map)?;
        if seen.insert(labels.stable_hash()) {
            out.push(labels);
        }
    }
    if out.len() < n {
        bail!("{} has only {} label sets, {n} wanted", file.display(), out.len());
    }
    Ok(out)
}

/// One thread's share of a round: `scrapes` commits of its series.
fn ingest_shard(db: &Db, series: &[Labels], scrapes: usize, base_t: i64) -> anyhow::Result<u64> {
    let mut refs: Vec<Option<SeriesRef>> = vec![None; series.len()];
    let mut values = vec![123_456_789i64; series.len()];
    let mut t = base_t;
    let mut total = 0;
    for _ in 0..scrapes {
        let mut app = db.appender();
        t += TIME_DELTA;
        for ((labels, r), value) in series.iter().zip(&mut refs).zip(&mut values) {
            *value += 1000;
            *r = Some(app.append_ref(*r, labels, t, *value as f64)?);
            total += 1;
        }
        app.commit_batch()?;
    }
    Ok(total)
}

fn bench_write(args: WriteArgs) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(&args.out);
    std::fs::create_dir_all(&args.out)?;
    // No snapshot at this close, so that the replay below is a full WAL replay.
    let mut opts = Options::default();
    if let Some(wal) = &mut opts.wal {
        wal.snapshot_on_close = false;
    }
    let db = Db::open(args.out.join("storage"), opts)?;
    let series = stage("readData", || read_labels(&args.file, args.metrics))?;
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let total = stage("ingestScrapes", || {
        let mut total = 0u64;
        let mut scrape = 0;
        while scrape < args.scrapes {
            let scrapes = ROUND.min(args.scrapes - scrape);
            let base_t = TIME_DELTA * scrape as i64;
            let results: Vec<anyhow::Result<u64>> = std::thread::scope(|s| {
                let handles: Vec<_> = series
                    .chunks(SHARD)
                    .map(|shard| {
                        let db = &db;
                        s.spawn(move || ingest_shard(db, shard, scrapes, base_t))
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap_or_else(|_| bail!("ingest thread panicked"))).collect()
            });
            for r in results {
                total += r?;
            }
            scrape += scrapes;
        }
        println!("ingestion completed");
        Ok(total)
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds().zip(cpu_before).map(|(after, before)| after - before);
    println!(" > total samples: {total}");
    println!(" > samples/sec: {}", total as f64 / elapsed);
    if let Some(cpu) = cpu {
        // Not in promtool: the per-core figure, robust on a busy machine.
        println!(" > ingest cpu: {cpu:.2} s, samples per cpu-second: {:.0}", total as f64 / cpu);
    }
    let (bytes, samples) = db.head().chunk_bytes_and_samples();
    println!(
        " > head: {} series, {samples} samples in chunks, {:.3} bytes/sample",
        db.head().num_series(),
        bytes as f64 / samples.max(1) as f64
    );
    stage("stopStorage", || Ok(db.close()?))?;
    // Not in promtool: reopen and time the WAL replay (compare with Prometheus' "WAL replay
    // completed" log line on promtool's output directory).
    let cpu_before = cpu_seconds();
    let db = stage("replayWAL", || Ok(Db::open(args.out.join("storage"), Options::default())?))?;
    if let Some(cpu) = cpu_seconds().zip(cpu_before).map(|(after, before)| after - before) {
        println!(" > replay cpu: {cpu:.2} s");
    }
    let stats = db.replay_stats();
    println!(
        " > replayed {} series, {} samples from {} segments in {:?} ({:.0} samples/sec)",
        stats.series,
        stats.samples,
        stats.segments,
        stats.duration,
        stats.samples as f64 / stats.duration.as_secs_f64()
    );
    // A clean shutdown writes the chunk snapshot; the next open loads it instead.
    stage("closeWithSnapshot", || Ok(db.close()?))?;
    let db = stage("loadSnapshot", || Ok(Db::open(args.out.join("storage"), Options::default())?))?;
    let stats = db.replay_stats();
    println!(" > loaded {} series, {} samples from the snapshot in {:?}", stats.series, stats.samples, stats.duration);
    db.close()?;
    Ok(())
}
