//! `sextant tsdb ...`: TSDB tools. `tsdb bench write` runs the workload of
//! `promtool tsdb bench write` against Sextant's head and WAL, printing the same lines;
//! `tsdb import openmetrics FILE DIR` turns an OpenMetrics file into blocks (what
//! `promtool tsdb create-blocks-from openmetrics` takes); `tsdb analyze DIR` reports sizes.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use sextant_model::exposition::{Entry, Format, Parser};
use sextant_model::Labels;
use sextant_tsdb::{open_blocks, BlockWriter, ColumnStats, Db, Options, SeriesRef, VALUE_ENCODINGS};

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
    /// Imports samples into blocks.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Series, samples, chunk and index bytes, bytes per sample, top metrics of a data directory.
    Analyze(AnalyzeArgs),
}

#[derive(Debug, clap::Subcommand)]
enum ImportCommand {
    /// An OpenMetrics text file (with timestamps) into blocks in DIR, then compacted.
    Openmetrics(ImportArgs),
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// The OpenMetrics file.
    file: PathBuf,
    /// The data directory (created if needed).
    dir: PathBuf,
    /// Samples buffered before blocks are written (bounds memory).
    #[arg(long, default_value_t = 5_000_000)]
    max_samples_in_memory: usize,
    /// Block range in hours.
    #[arg(long, default_value_t = 2)]
    block_hours: i64,
}

#[derive(Debug, clap::Args)]
struct AnalyzeArgs {
    /// The data directory.
    dir: PathBuf,
    /// How many metric names to list.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Also break the chunk bytes down by column and value encoding (recompresses every frame:
    /// slow).
    #[arg(long)]
    columns: bool,
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
    /// Not in promtool: append each scrape with `HeadAppender::append_batch` (one stripe lock
    /// per run of series) instead of one `append_ref` call per sample as promtool's loop does.
    #[arg(long)]
    append_batch: bool,
    /// Stop after closing the database, as promtool does. Without it the database is then
    /// reopened twice, to time the WAL replay and the chunk snapshot's load (not in promtool).
    #[arg(long)]
    no_replay: bool,
    /// File of label sets, one JSON object per line.
    #[arg(default_value = "../../tsdb/testdata/20kseries.json")]
    file: PathBuf,
}

pub fn run(args: TsdbArgs) -> anyhow::Result<()> {
    match args.command {
        TsdbCommand::Bench { command: BenchCommand::Write(args) } => bench_write(args),
        TsdbCommand::Import { command: ImportCommand::Openmetrics(args) } => import_openmetrics(args),
        TsdbCommand::Analyze(args) => analyze(args),
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
fn ingest_shard(db: &Db, series: &[Labels], scrapes: usize, base_t: i64, batch: bool) -> anyhow::Result<u64> {
    let mut refs: Vec<Option<SeriesRef>> = vec![None; series.len()];
    let mut values = vec![123_456_789i64; series.len()];
    let mut t = base_t;
    let mut total = 0;
    let mut scrape: Vec<(&Labels, i64, f64)> = Vec::with_capacity(series.len());
    for _ in 0..scrapes {
        let mut app = db.appender();
        t += TIME_DELTA;
        if batch {
            scrape.clear();
            for (labels, value) in series.iter().zip(&mut values) {
                *value += 1000;
                scrape.push((labels, t, *value as f64));
            }
            if let Some((i, e)) = app.append_batch(&scrape, &mut refs).into_iter().next() {
                bail!("sample {i} of the scrape at {t}: {e}");
            }
            total += scrape.len() as u64;
        } else {
            for ((labels, r), value) in series.iter().zip(&mut refs).zip(&mut values) {
                *value += 1000;
                *r = Some(app.append_ref(*r, labels, t, *value as f64)?);
                total += 1;
            }
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
            let batch = args.append_batch;
            let results: Vec<anyhow::Result<u64>> = std::thread::scope(|s| {
                let handles: Vec<_> = series
                    .chunks(SHARD)
                    .map(|shard| {
                        let db = &db;
                        s.spawn(move || ingest_shard(db, shard, scrapes, base_t, batch))
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
    if args.no_replay {
        return Ok(());
    }
    // Not in promtool: reopen and time the replay (compare with Prometheus' "WAL replay
    // completed" log line on promtool's output directory). Without a snapshot this is the
    // replay after a crash: full chunks from chunks_head/, the rest from the WAL.
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
    println!(
        " > {} full chunks ({} samples) loaded from chunks_head, {} WAL samples skipped as in them",
        stats.head_chunks, stats.head_chunk_samples, stats.samples_in_chunks
    );
    // A clean shutdown writes the chunk snapshot; the next open loads it instead.
    stage("closeWithSnapshot", || Ok(db.close()?))?;
    let db = stage("loadSnapshot", || Ok(Db::open(args.out.join("storage"), Options::default())?))?;
    let stats = db.replay_stats();
    println!(" > loaded {} series, {} samples from the snapshot in {:?}", stats.series, stats.samples, stats.duration);
    db.close()?;
    Ok(())
}

/// Samples buffered per series id.
type Buffered = Vec<Vec<(i64, f64)>>;

/// Writes the buffered samples as one block per block-range window, at zstd `level`.
fn flush_import(dir: &Path, labels: &[Labels], buf: &mut Buffered, range: i64, level: i32) -> anyhow::Result<usize> {
    let mut order: Vec<u32> = (0..buf.len() as u32).filter(|&id| !buf[id as usize].is_empty()).collect();
    order.sort_by(|a, b| labels[*a as usize].cmp(&labels[*b as usize]));
    let mut windows: BTreeMap<i64, BlockWriter> = BTreeMap::new();
    for id in order {
        let samples = &mut buf[id as usize];
        samples.sort_by_key(|s| s.0);
        samples.dedup_by_key(|s| s.0);
        for part in samples.chunk_by(|a, b| a.0.div_euclid(range) == b.0.div_euclid(range)) {
            let w = part[0].0.div_euclid(range);
            let writer = match windows.entry(w) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let mut writer = BlockWriter::new(dir, 1, Vec::new())?;
                    writer.set_zstd_level(level);
                    e.insert(writer)
                }
            };
            writer.add(&labels[id as usize], part)?;
        }
        samples.clear();
        samples.shrink_to_fit();
    }
    let n = windows.len();
    for (w, writer) in windows {
        writer.finish().with_context(|| format!("writing the block at {}", w * range))?;
    }
    Ok(n)
}

/// Progress of an import on stderr: bytes and samples done, rate, ETA; at most twice a second.
struct Progress {
    total: usize,
    started: Instant,
    last: Instant,
    tty: bool,
}

impl Progress {
    fn new(total: usize) -> Progress {
        use std::io::IsTerminal;
        let now = Instant::now();
        Progress { total, started: now, last: now, tty: std::io::stderr().is_terminal() }
    }

    fn update(&mut self, done: usize, samples: u64, series: usize, force: bool) {
        let now = Instant::now();
        if !force && now.duration_since(self.last).as_millis() < if self.tty { 500 } else { 5_000 } {
            return;
        }
        self.last = now;
        let secs = now.duration_since(self.started).as_secs_f64().max(1e-3);
        let rate = done as f64 / secs;
        let eta = if rate > 0.0 { (self.total - done.min(self.total)) as f64 / rate } else { 0.0 };
        let line = format!(
            "import: {:5.1}% {:.0}/{:.0} MB, {samples} samples, {series} series, {:.1} MB/s, {:.0} samples/s, ETA {:.0}s",
            100.0 * done as f64 / self.total.max(1) as f64,
            done as f64 / 1e6,
            self.total as f64 / 1e6,
            rate / 1e6,
            samples as f64 / secs,
            eta
        );
        if self.tty {
            eprint!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
    }
}

fn import_openmetrics(args: ImportArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let file = std::fs::File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
    // SAFETY: the input file is only read; a concurrent writer could change what we parse,
    // never memory safety of our own structures (the parser bounds-checks every access).
    let input = unsafe { memmap2::Mmap::map(&file) }.with_context(|| format!("mapping {}", args.file.display()))?;
    #[cfg(unix)]
    let _ = input.advise(memmap2::Advice::Sequential);
    std::fs::create_dir_all(&args.dir)?;
    let range = args.block_hours.max(1) * 3_600_000;
    let mut ids: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut labels: Vec<Labels> = Vec::new();
    let mut buf: Buffered = Vec::new();
    let (mut buffered, mut samples, mut blocks, mut flushes) = (0usize, 0u64, 0usize, 0usize);
    let mut parser = Parser::new(&input, Format::OpenMetrics);
    let mut progress = Progress::new(input.len());
    let mut last_id: Option<u32> = None;
    let mut last_key: Vec<u8> = Vec::new();
    let mut countdown = 0u32;
    while let Some(entry) = parser.next() {
        let entry = entry.map_err(|e| anyhow::anyhow!("{}: {}", args.file.display(), e.render(&input)))?;
        let Entry::Series(s) = entry else { continue };
        let Some(t) = s.timestamp() else { bail!("{}: sample without a timestamp", args.file.display()) };
        let key = s.series();
        // Samples of one series usually follow each other: skip the map lookup then.
        let id = match last_id {
            Some(id) if key == &last_key[..] => id,
            _ => {
                let id = match ids.get(key) {
                    Some(&id) => id,
                    None => {
                        let id = u32::try_from(labels.len()).context("too many series")?;
                        labels.push(s.to_labels()?);
                        buf.push(Vec::new());
                        ids.insert(key.to_vec(), id);
                        id
                    }
                };
                last_key.clear();
                last_key.extend_from_slice(key);
                last_id = Some(id);
                id
            }
        };
        buf[id as usize].push((t, s.value()));
        buffered += 1;
        samples += 1;
        if buffered >= args.max_samples_in_memory {
            // Intermediate blocks: fast zstd, the final merge recompresses them.
            blocks += flush_import(&args.dir, &labels, &mut buf, range, 1)?;
            flushes += 1;
            buffered = 0;
        }
        countdown = countdown.wrapping_sub(1);
        if countdown == 0 || countdown > 65_536 {
            countdown = 65_536;
            progress.update(parser.entry_start(), samples, labels.len(), false);
        }
    }
    // A single flush writes the final blocks directly at the default level.
    let level = if flushes == 0 { 19 } else { 1 };
    blocks += flush_import(&args.dir, &labels, &mut buf, range, level)?;
    progress.update(input.len(), samples, labels.len(), true);
    let series = labels.len();
    // The input mapping and the parse state are not needed by the compaction.
    drop((parser, ids, labels, buf));
    drop(input);
    eprintln!();
    eprintln!(
        "import: parsed in {:.1?}, {blocks} blocks written; compacting (one rewrite per time window)",
        started.elapsed()
    );
    let db = Db::open(&args.dir, Options { wal: None, block_range_ms: range, ..Options::default() })?;
    let stats = db.compact_all()?;
    println!(
        "imported {samples} samples of {series} series in {:.1?}; compaction: {} merges, {} blocks",
        started.elapsed(),
        stats.merges,
        db.blocks().len()
    );
    db.close()?;
    Ok(())
}

fn dir_bytes(path: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(path) else { return 0 };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

fn analyze(args: AnalyzeArgs) -> anyhow::Result<()> {
    let (blocks, failed) = open_blocks(&args.dir)?;
    for (path, why) in &failed {
        println!("skipped {}: {why}", path.display());
    }
    let per_sample = |bytes: u64, samples: u64| if samples == 0 { 0.0 } else { bytes as f64 / samples as f64 };
    println!(
        "{:<26} {:>14} {:>14} {:>8} {:>11} {:>12} {:>10} {:>8}",
        "block", "min_time", "max_time", "series", "samples", "chunk_bytes", "index_bytes", "B/sample"
    );
    let (mut samples, mut chunk_bytes, mut index_bytes) = (0u64, 0u64, 0u64);
    let mut by_metric: HashMap<String, std::collections::HashSet<u64>> = HashMap::new();
    for b in &blocks {
        let m = b.meta();
        println!(
            "{:<26} {:>14} {:>14} {:>8} {:>11} {:>12} {:>10} {:>8.3}",
            m.ulid,
            m.min_time,
            m.max_time,
            m.stats.series,
            m.stats.samples,
            b.chunk_bytes(),
            b.index_bytes(),
            per_sample(b.size_bytes(), m.stats.samples)
        );
        samples += m.stats.samples;
        chunk_bytes += b.chunk_bytes();
        index_bytes += b.index_bytes();
        for l in b.series_labels() {
            by_metric.entry(l.metric_name().unwrap_or("").to_string()).or_default().insert(l.stable_hash());
        }
    }
    let series: usize = by_metric.values().map(|s| s.len()).sum();
    let total = dir_bytes(&args.dir);
    println!(
        "total: {} blocks, {series} series, {samples} samples, chunk bytes {chunk_bytes}, index bytes {index_bytes}, directory bytes {total}",
        blocks.len()
    );
    println!(
        "bytes/sample: {:.3} (chunks {:.3}, whole directory {:.3})",
        per_sample(chunk_bytes + index_bytes, samples),
        per_sample(chunk_bytes, samples),
        per_sample(total, samples)
    );
    let (mut sym, mut ser, mut post) = (0, 0, 0);
    for b in &blocks {
        let p = b.index_parts();
        (sym, ser, post) = (sym + p.symbols, ser + p.series, post + p.postings);
    }
    println!(
        "index: symbols {sym} ({:.4} B/sample), series {ser} ({:.4}), postings {post} ({:.4})",
        per_sample(sym, samples),
        per_sample(ser, samples),
        per_sample(post, samples)
    );
    if args.columns {
        let mut total = ColumnStats::default();
        for b in &blocks {
            let c = b.column_stats()?;
            total.frames += c.frames;
            total.stored_bytes += c.stored_bytes;
            total.ts_raw += c.ts_raw;
            total.ts_compressed += c.ts_compressed;
            total.ts_regular_series += c.ts_regular_series;
            total.lens_compressed += c.lens_compressed;
            for (t, e) in total.values.iter_mut().zip(c.values) {
                t.series += e.series;
                t.samples += e.samples;
                t.raw += e.raw;
                t.compressed += e.compressed;
            }
        }
        println!(
            "columns (each compressed alone): {} frames, {} bytes stored; length tables {} ({:.4} B/sample)",
            total.frames,
            total.stored_bytes,
            total.lens_compressed,
            per_sample(total.lens_compressed, samples)
        );
        println!(
            "  timestamps: raw {} -> {} bytes ({:.4} B/sample); {} series regular",
            total.ts_raw,
            total.ts_compressed,
            per_sample(total.ts_compressed, samples),
            total.ts_regular_series
        );
        for (name, e) in VALUE_ENCODINGS.iter().zip(total.values) {
            println!(
                "  values {name:<15} {:>8} series {:>11} samples: raw {:>11} -> {:>10} bytes ({:.4} B/sample overall, {:.3} B per own sample)",
                e.series,
                e.samples,
                e.raw,
                e.compressed,
                per_sample(e.compressed, samples),
                per_sample(e.compressed, e.samples)
            );
        }
    }
    let mut top: Vec<(String, usize)> = by_metric.into_iter().map(|(k, v)| (k, v.len())).collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    println!("top metrics by series:");
    for (name, n) in top.into_iter().take(args.limit) {
        println!("{n:>8} {name}");
    }
    Ok(())
}
