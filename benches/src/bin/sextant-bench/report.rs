//! `BENCHMARKS.md` and the SVG plots, from a results file.

use std::fmt::Write as _;
use std::path::Path;

use crate::procs::System;
use crate::results::*;
use crate::svg::{short, Chart};

/// Which way is better.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Better {
    Lower,
    Higher,
}

/// A target on Sextant's figure.
#[derive(Debug, Clone, Copy)]
enum Target {
    None,
    /// At most this absolute value.
    AtMost(f64),
    /// At least this many times better than Prometheus.
    TimesProm(f64),
    /// At least this many times better than Prometheus and no worse than VictoriaMetrics.
    TimesPromAndVm(f64),
    /// No worse than VictoriaMetrics.
    Vm,
}

struct Row {
    figure: &'static str,
    unit: &'static str,
    better: Better,
    values: [Option<f64>; 3],
    target: Target,
    target_text: &'static str,
}

/// How many times Sextant is better than the peer (> 1: better).
fn factor(better: Better, ours: Option<f64>, peer: Option<f64>) -> Option<f64> {
    let (o, p) = (ours?, peer?);
    if o <= 0.0 || p <= 0.0 {
        return None;
    }
    Some(match better {
        Better::Lower => p / o,
        Better::Higher => o / p,
    })
}

impl Row {
    fn met(&self) -> Option<bool> {
        let [ours, prom, vm] = self.values;
        let vs_prom = factor(self.better, ours, prom);
        let vs_vm = factor(self.better, ours, vm);
        match self.target {
            Target::None => None,
            Target::AtMost(x) => Some(ours? <= x),
            Target::TimesProm(x) => Some(vs_prom? >= x),
            Target::TimesPromAndVm(x) => Some(vs_prom? >= x && vs_vm? >= 1.0),
            Target::Vm => Some(vs_vm? >= 1.0),
        }
    }
}

fn sys_values<T>(f: impl Fn(System) -> Option<T>) -> [Option<T>; 3] {
    [f(System::Sextant), f(System::Prometheus), f(System::Victoria)]
}

fn rows(r: &Results) -> Vec<Row> {
    let disk = |s: System, which: fn(&Disk) -> u64| r.disk.get(s.key()).and_then(|d| d.per_sample(which(d)));
    let query_geo = |s: System| {
        let v: Vec<f64> = r.queries.iter().filter_map(|q| q.per.get(s.key())?.median_ms).collect();
        (v.len() == r.queries.len() && !v.is_empty()).then(|| geomean(&v)).flatten()
    };
    let restart = |s: System, kill: bool, query: bool| {
        let rs = r.restart.get(s.key())?;
        let run = if kill { rs.kill.as_ref()? } else { rs.term.as_ref()? };
        if query {
            run.first_query_s
        } else {
            run.ready_s
        }
    };
    vec![
        Row {
            figure: "disk, whole directory",
            unit: "B/sample",
            better: Better::Lower,
            values: sys_values(|s| disk(s, |d| d.dir_bytes)),
            target: Target::AtMost(0.5),
            target_text: "≤ 0.5",
        },
        Row {
            figure: "disk, chunks (VM: data parts)",
            unit: "B/sample",
            better: Better::Lower,
            values: sys_values(|s| disk(s, |d| d.chunks_bytes)),
            target: Target::None,
            target_text: "",
        },
        Row {
            figure: "disk, index (VM: indexdb)",
            unit: "B/sample",
            better: Better::Lower,
            values: sys_values(|s| disk(s, |d| d.index_bytes)),
            target: Target::None,
            target_text: "",
        },
        Row {
            figure: "import, CPU time",
            unit: "s",
            better: Better::Lower,
            values: sys_values(|s| Some(r.import.get(s.key())?.cpu_s)),
            target: Target::None,
            target_text: "",
        },
        Row {
            figure: "head append (`tsdb bench write`, 1 core)",
            unit: "samples/s",
            better: Better::Higher,
            values: sys_values(|s| r.append.get(s.key())?.median()),
            target: Target::TimesProm(2.0),
            target_text: "≥ 2× Prometheus",
        },
        Row {
            figure: "remote-write ingest",
            unit: "samples/CPU-s",
            better: Better::Higher,
            values: sys_values(|s| r.remote_write.get(s.key())?.per_cpu_s()),
            target: Target::Vm,
            target_text: "≥ VictoriaMetrics",
        },
        Row {
            figure: "server memory per active series, 240 samples each (anon slope)",
            unit: "B/series",
            better: Better::Lower,
            values: sys_values(|s| r.remote_write.get(s.key())?.rss_per_series()),
            target: Target::AtMost(1024.0),
            target_text: "≤ 1 KB",
        },
        Row {
            figure: "query latency, geometric mean of medians",
            unit: "ms",
            better: Better::Lower,
            values: sys_values(query_geo),
            target: Target::TimesPromAndVm(3.0),
            target_text: "≥ 3× Prometheus, ≤ VictoriaMetrics",
        },
        Row {
            figure: "restart after SIGTERM, to ready",
            unit: "s",
            better: Better::Lower,
            values: sys_values(|s| restart(s, false, false)),
            target: Target::TimesProm(3.0),
            target_text: "≥ 3× faster than Prometheus",
        },
        Row {
            figure: "restart after SIGKILL, to first query",
            unit: "s",
            better: Better::Lower,
            values: sys_values(|s| restart(s, true, true)),
            target: Target::TimesProm(3.0),
            target_text: "≥ 3× faster than Prometheus",
        },
    ]
}

fn opt(v: Option<f64>) -> String {
    v.map(short).unwrap_or_else(|| "–".into())
}

fn times(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.2}×")).unwrap_or_else(|| "–".into())
}

/// One line for CI logs.
pub fn one_line(r: &Results) -> String {
    let rows = rows(r);
    let measured = rows.iter().filter(|row| row.values[0].is_some()).count();
    let mismatches: usize =
        r.queries.iter().map(|q| q.mismatches.iter().filter(|m| m.starts_with("Sextant")).count()).sum();
    let mut s = format!(
        "bench smoke: {} figures of {} measured for Sextant in {:.0}s; {} queries, {mismatches} Sextant/Prometheus mismatches; {} notes",
        measured,
        rows.len(),
        r.duration_s,
        r.queries.len(),
        r.notes.len()
    );
    if r.size != "smoke" {
        s = s.replacen("bench smoke", &format!("bench {}", r.size), 1);
    }
    s
}

/// Writes `BENCHMARKS.md` at `root` and the plots under `benches/results/`.
pub fn publish(r: &Results, root: &Path) -> anyhow::Result<()> {
    let dir = root.join("benches/results");
    std::fs::create_dir_all(&dir)?;
    let names: Vec<&str> = System::ALL.iter().map(|s| s.title()).collect();
    let mut plots: Vec<(&str, Chart<'_>)> = Vec::new();
    let by_sys = |f: &dyn Fn(System) -> Option<f64>| -> Vec<(&str, Vec<Option<f64>>)> {
        System::ALL.iter().map(|s| (s.title(), vec![f(*s)])).collect()
    };
    let disk = |s: System, which: fn(&Disk) -> u64| r.disk.get(s.key()).and_then(|d| d.per_sample(which(d)));
    plots.push((
        "disk",
        Chart {
            title: "Bytes per sample on disk (persisted blocks)",
            unit: "bytes/sample (lower is better)",
            categories: vec!["chunks / data".into(), "index".into(), "whole directory".into()],
            series: System::ALL
                .iter()
                .map(|s| {
                    (
                        s.title(),
                        vec![disk(*s, |d| d.chunks_bytes), disk(*s, |d| d.index_bytes), disk(*s, |d| d.dir_bytes)],
                    )
                })
                .collect(),
            log: false,
        },
    ));
    plots.push((
        "import",
        Chart {
            title: "Import of the OpenMetrics file",
            unit: "seconds (lower is better)",
            categories: vec!["wall".into(), "CPU".into()],
            series: System::ALL
                .iter()
                .map(|s| {
                    let i = r.import.get(s.key());
                    (s.title(), vec![i.map(|i| i.wall_s), i.map(|i| i.cpu_s)])
                })
                .collect(),
            log: false,
        },
    ));
    plots.push((
        "append",
        Chart {
            title: "Head append, tsdb bench write shape, pinned to one core",
            unit: "samples/s (higher is better)",
            categories: vec!["samples/s".into()],
            series: by_sys(&|s| r.append.get(s.key())?.median())[..2].to_vec(),
            log: false,
        },
    ));
    plots.push((
        "remote_write",
        Chart {
            title: "Remote-write ingest per CPU-second of the server",
            unit: "samples per CPU-second (higher is better)",
            categories: vec!["samples/CPU-s".into()],
            series: by_sys(&|s| r.remote_write.get(s.key())?.per_cpu_s()),
            log: false,
        },
    ));
    plots.push((
        "rss",
        Chart {
            title: "Resident anonymous memory per active series (slope between the two replays)",
            unit: "bytes per series (lower is better)",
            categories: vec!["bytes/series".into()],
            series: by_sys(&|s| r.remote_write.get(s.key())?.rss_per_series()),
            log: false,
        },
    ));
    plots.push((
        "queries",
        Chart {
            title: "Range-query latency through HTTP, median of 7 (log scale)",
            unit: "milliseconds (lower is better)",
            categories: r.queries.iter().map(|q| q.query.clone()).collect(),
            series: System::ALL
                .iter()
                .map(|s| (s.title(), r.queries.iter().map(|q| q.per.get(s.key()).and_then(|x| x.median_ms)).collect()))
                .collect(),
            log: true,
        },
    ));
    plots.push((
        "restart",
        Chart {
            title: "Restart with a full WAL",
            unit: "seconds from spawn (lower is better)",
            categories: vec![
                "SIGTERM: ready".into(),
                "SIGTERM: first query".into(),
                "SIGKILL: ready".into(),
                "SIGKILL: first query".into(),
            ],
            series: System::ALL
                .iter()
                .map(|s| {
                    let rs = r.restart.get(s.key());
                    let t = rs.and_then(|x| x.term.as_ref());
                    let k = rs.and_then(|x| x.kill.as_ref());
                    (
                        s.title(),
                        vec![
                            t.and_then(|x| x.ready_s),
                            t.and_then(|x| x.first_query_s),
                            k.and_then(|x| x.ready_s),
                            k.and_then(|x| x.first_query_s),
                        ],
                    )
                })
                .collect(),
            log: false,
        },
    ));
    for (name, chart) in &plots {
        std::fs::write(dir.join(format!("{name}.svg")), chart.render())?;
    }
    let notes = std::fs::read_to_string(dir.join("NOTES.md")).ok();
    std::fs::write(root.join("BENCHMARKS.md"), markdown(r, &names, notes.as_deref()))?;
    Ok(())
}

fn markdown(r: &Results, names: &[&str], notes: Option<&str>) -> String {
    let m = &r.machine;
    let d = &r.dataset;
    let mut s = String::new();
    let _ = writeln!(s, "# Benchmarks: Sextant side by side with Prometheus and VictoriaMetrics\n");
    let _ = writeln!(
        s,
        "Generated by `sextant-bench --size {}` on {} ({:.0} s); do not edit by hand: rerun it \
         (see [Method](#method)). Raw figures: [`benches/results/{}.json`](benches/results/{}.json).\n",
        r.size, r.started_utc, r.duration_s, r.size, r.size
    );
    let _ = writeln!(
        s,
        "**Machine**: {} cores ({}), {:.1} GiB RAM, Linux {}; load average {:.2} {:.2} {:.2} at the start, \
         {:.2} {:.2} {:.2} at the end (the machine is shared: other builds ran during the measurements). \
         **Sextant**: `{}` (commit {}). **Peers**: {}; VictoriaMetrics {} (Debian packages).\n",
        m.cores,
        m.cpu_model,
        m.mem_gib,
        m.kernel,
        m.load_start[0],
        m.load_start[1],
        m.load_start[2],
        m.load_end[0],
        m.load_end[1],
        m.load_end[2],
        Path::new(&m.sextant_binary).file_name().and_then(|f| f.to_str()).unwrap_or(""),
        m.sextant_commit,
        m.prometheus_version,
        m.victoria_version
    );
    let _ = writeln!(
        s,
        "**Data**: `gen_dataset.py` (node_exporter 1.5.0 template, seed 42, 15 s interval): {} hosts × {} scrapes = \
         {} series, {} samples ({} MB of OpenMetrics text) for disk, import and queries; remote write replays {}.\n",
        d.instances,
        d.scrapes,
        d.series,
        d.samples,
        d.om_bytes / 1_000_000,
        d.rw_sizes
            .iter()
            .map(|w| format!(
                "{} hosts × {} scrapes ({} series, {} samples)",
                w.instances, w.scrapes, w.series, w.samples
            ))
            .collect::<Vec<_>>()
            .join(" and ")
    );

    let _ = writeln!(s, "## Summary\n");
    let _ = writeln!(
        s,
        "Ratios say how many times better Sextant is than the peer (above 1: Sextant better, whichever way the \
         figure points). Targets are those of `DESIGN.md` (remote-write: `notes/performance.md` §5 (b2)).\n"
    );
    let _ = writeln!(
        s,
        "| figure | unit | {} | {} | {} | × vs Prometheus | × vs VictoriaMetrics | target | met |",
        names[0], names[1], names[2]
    );
    let _ = writeln!(s, "|---|---|--:|--:|--:|--:|--:|---|---|");
    for row in rows(r) {
        let [o, p, v] = row.values;
        let met = match row.met() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None if matches!(row.target, Target::None) => "",
            None => "not measured",
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.figure,
            row.unit,
            opt(o),
            opt(p),
            opt(v),
            times(factor(row.better, o, p)),
            times(factor(row.better, o, v)),
            row.target_text,
            met
        );
    }
    s.push('\n');

    // Details.
    let _ = writeln!(s, "## Disk\n\n![bytes per sample](benches/results/disk.svg)\n");
    let _ = writeln!(
        s,
        "| system | samples | chunks B | index B | directory B | chunks B/sample | index B/sample | dir B/sample |"
    );
    let _ = writeln!(s, "|---|--:|--:|--:|--:|--:|--:|--:|");
    for sys in System::ALL {
        if let Some(dk) = r.disk.get(sys.key()) {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                sys.title(),
                dk.samples,
                dk.chunks_bytes,
                dk.index_bytes,
                dk.dir_bytes,
                opt(dk.per_sample(dk.chunks_bytes)),
                opt(dk.per_sample(dk.index_bytes)),
                opt(dk.per_sample(dk.dir_bytes))
            );
        }
    }
    let _ = writeln!(s, "\n## Import\n\n![import](benches/results/import.svg)\n");
    let _ = writeln!(s, "| system | wall s | CPU s | samples per CPU-s | max RSS MB |");
    let _ = writeln!(s, "|---|--:|--:|--:|--:|");
    for sys in System::ALL {
        if let Some(i) = r.import.get(sys.key()) {
            let rss = if i.max_rss_bytes > 0 { format!("{}", i.max_rss_bytes / 1_000_000) } else { "–".into() };
            let _ = writeln!(
                s,
                "| {} | {:.2} | {:.2} | {} | {} |",
                sys.title(),
                i.wall_s,
                i.cpu_s,
                opt((i.cpu_s > 0.0).then(|| d.samples as f64 / i.cpu_s)),
                rss
            );
        }
    }
    let _ = writeln!(s, "\n## Head append\n\n![append](benches/results/append.svg)\n");
    let _ = writeln!(s, "| tool | runs (samples/s) | median | CPU s per run | samples per CPU-s (median) |");
    let _ = writeln!(s, "|---|---|--:|---|--:|");
    for (sys, tool) in
        [(System::Sextant, "sextant tsdb bench write"), (System::Prometheus, "promtool tsdb bench write")]
    {
        if let Some(a) = r.append.get(sys.key()) {
            let runs: Vec<String> = a.runs.iter().map(|x| short(*x)).collect();
            let cpu: Vec<String> = a.cpu_s.iter().map(|x| format!("{x:.1}")).collect();
            let _ = writeln!(
                s,
                "| `{tool}` | {} | {} | {} | {} |",
                runs.join(", "),
                opt(a.median()),
                cpu.join(", "),
                opt(a.median_per_cpu_s())
            );
        }
    }
    let _ = writeln!(s, "\n## Remote write and memory\n\n![remote write](benches/results/remote_write.svg)\n![rss](benches/results/rss.svg)\n");
    let _ = writeln!(
        s,
        "| system | replay | series | sent | accepted | failed requests | server CPU s | wall s | samples/CPU-s | RSS MB | anon MB |"
    );
    let _ = writeln!(s, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for sys in System::ALL {
        let Some(rw) = r.remote_write.get(sys.key()) else { continue };
        for (name, run) in [("small", &rw.small), ("large", &rw.large)] {
            let Some(run) = run else { continue };
            let _ = writeln!(
                s,
                "| {} | {name} | {} | {} | {} | {} | {:.2} | {:.2} | {} | {:.1} | {:.1} |",
                sys.title(),
                run.series,
                run.samples_sent,
                run.samples_accepted,
                run.failed_requests,
                run.cpu_s,
                run.wall_s,
                opt((run.cpu_s > 0.0).then(|| run.samples_accepted as f64 / run.cpu_s)),
                run.rss_bytes as f64 / 1e6,
                run.anon_bytes as f64 / 1e6
            );
        }
    }
    for sys in System::ALL {
        let errs: Vec<&str> = r
            .remote_write
            .get(sys.key())
            .into_iter()
            .flat_map(|rw| [&rw.small, &rw.large])
            .filter_map(|run| run.as_ref()?.first_error.as_deref())
            .collect();
        if let Some(e) = errs.first() {
            let _ =
                writeln!(s, "\n{}: first rejected request: `{}`", sys.title(), e.replace('`', "'").replace('\n', " "));
        }
    }
    let _ = writeln!(s, "\n## Queries\n\n![queries](benches/results/queries.svg)\n");
    let _ = writeln!(
        s,
        "Median (min–max) of {} runs in ms after one warm-up; series counts in brackets. `×` is Prometheus' and \
         VictoriaMetrics' median over Sextant's.\n",
        7
    );
    let _ = writeln!(s, "| query | {} | {} | {} | × Prom | × VM | cross-check |", names[0], names[1], names[2]);
    let _ = writeln!(s, "|---|--:|--:|--:|--:|--:|---|");
    for q in &r.queries {
        let cell = |sys: System| match q.per.get(sys.key()) {
            Some(x) => match (x.median_ms, &x.error) {
                (Some(m), _) => format!(
                    "{} ({}–{}) [{}]",
                    short(m),
                    opt(x.min_ms),
                    opt(x.max_ms),
                    x.series.map(|n| n.to_string()).unwrap_or_default()
                ),
                (None, Some(e)) => format!("error: {}", e.chars().take(60).collect::<String>().replace('|', "\\|")),
                _ => "–".into(),
            },
            None => "–".into(),
        };
        let med = |sys: System| q.per.get(sys.key()).and_then(|x| x.median_ms);
        let check =
            if q.mismatches.is_empty() { "ok".to_string() } else { q.mismatches.join("; ").replace('|', "\\|") };
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} | {} | {} |",
            q.query.replace('|', "\\|"),
            cell(System::Sextant),
            cell(System::Prometheus),
            cell(System::Victoria),
            times(factor(Better::Lower, med(System::Sextant), med(System::Prometheus))),
            times(factor(Better::Lower, med(System::Sextant), med(System::Victoria))),
            check
        );
    }
    let _ = writeln!(s, "\n## Restart with a full WAL\n\n![restart](benches/results/restart.svg)\n");
    let _ = writeln!(
        s,
        "| system | data dir MB | WAL MB | signal | stop s | ready s | first query s | `count(node_load1)` after |"
    );
    let _ = writeln!(s, "|---|--:|--:|---|--:|--:|--:|--:|");
    for sys in System::ALL {
        let Some(rs) = r.restart.get(sys.key()) else { continue };
        for (sig, run) in [("SIGTERM", &rs.term), ("SIGKILL", &rs.kill)] {
            let Some(run) = run else { continue };
            let _ = writeln!(
                s,
                "| {} | {:.1} | {:.1} | {sig} | {:.3} | {} | {} | {} |",
                sys.title(),
                rs.dir_bytes as f64 / 1e6,
                rs.wal_bytes as f64 / 1e6,
                run.stop_s,
                opt(run.ready_s),
                opt(run.first_query_s),
                opt(run.first_query_value)
            );
        }
    }
    if !r.notes.is_empty() {
        let _ = writeln!(s, "\n## Problems in this run\n");
        for n in &r.notes {
            let _ = writeln!(s, "- {}", n.replace('\n', " "));
        }
    }
    if let Some(notes) = notes {
        let _ =
            writeln!(s, "\n## Findings\n\n_From `benches/results/NOTES.md` (written by hand after a profiled run)._\n");
        s.push_str(notes.trim());
        s.push('\n');
    }
    s.push_str(METHOD);
    s
}

const METHOD: &str = r#"
## Method

Rerun everything (figures, plots, this file) with one command from the repository root:

```sh
cargo run --release -p sextant-benches --bin sextant-bench -- --size full   # ~15-25 min on 2 cores
cargo run -p sextant-benches --bin sextant-bench -- --size smoke --sextant target/debug/sextant   # CI, ~2 min
cargo run -p sextant-benches --bin sextant-bench -- --report-only benches/results/full.json      # this file only
```

(`--release` matters for the harness itself only in the remote-write phase, where it encodes
millions of samples before the clock starts: minutes in a debug build.) Without `--sextant` the
harness builds `sextant` in release (into `$CARGO_TARGET_DIR`, or
`/work/release-target` when present) and copies it into the work directory
(`/var/tmp/sextant-bench-<size>`, `--workdir`), where the generated datasets are cached. It installs
`prometheus` and `victoria-metrics` with `apt-get` if their binaries are missing, reads
`gen_dataset.py`, `queries.txt` and `20kseries.json` from `../shared/bench` (`--shared`), starts
every server on 127.0.0.1 on a free port with no scrape targets, and kills every process it
started before it exits. The servers run one at a time except during the query phase.

- **Disk and import.** The same OpenMetrics file goes to `promtool tsdb create-blocks-from
  openmetrics --max-block-duration=24h`, to `sextant tsdb import openmetrics --block-hours 24`,
  and to VictoriaMetrics' `/api/v1/import/prometheus` followed by `/internal/force_flush` and
  `/internal/force_merge`. Bytes per sample: chunks (`*/chunks`), index (`*/index`) and the whole
  directory over the samples counted in the blocks' `meta.json` (VictoriaMetrics:
  `vm_data_size_bytes{type="storage/small|big"}`, `{type="indexdb"}` and the directory over
  `vm_rows`). Import time: wall and user+system CPU of the importer (`/usr/bin/time`), for
  VictoriaMetrics the server's CPU from `/proc/PID/stat` around the upload.
- **Head append.** `promtool tsdb bench write` and `sextant tsdb bench write` with the same
  `--metrics`/`--scrapes` and `20kseries.json`, each pinned to one core (`taskset -c 1`),
  alternating, median of the reported samples/s; also the samples appended over the whole
  process's user+system CPU time (start-up and close included; Sextant with `--no-replay`, so
  that it does promtool's work and no more).
- **Remote-write ingest.** `gen_dataset.py --format prom` output is encoded before the clock
  starts into snappy `WriteRequest`s of 2,000 samples (one sample per series, as Prometheus'
  queue manager sends them), sharded by label-set hash over 4 keep-alive connections so that
  each series' samples arrive in order. Figure: samples the server counted
  (`prometheus_tsdb_head_samples_appended_total`, `vm_rows_added_to_storage_total`,
  `sextant_api_remote_write_samples_total`) over the server's Δ(utime+stime).
- **RSS per active series.** Resident anonymous memory (`RssAnon`: heap and stacks) after the
  replay and an idle pause, for the small and the large replay on fresh servers; the figure is
  the slope Δmemory/Δseries (removes the baseline). File-backed pages are left out: how much of
  a mapped executable is resident depends on the page cache's folio sizes, not on the data, and
  moved the slope by ±100 B per series between runs. The table also gives VmRSS.
- **Queries.** Every line of `queries.txt` as `/api/v1/query_range` over the whole dataset at a
  60 s step (VictoriaMetrics with `nocache=1` and `-search.disableCache`): one warm-up, then the
  median of 7 client-side times over a fresh connection. The warm-up answers are cross-checked
  against Prometheus: same series, every point within 1e-6 relative for Sextant; for
  VictoriaMetrics (MetricsQL's `rate` does not extrapolate) only series counts and values within
  50%.
- **Restart.** After the large replay (all data in the head and the WAL): `kill -TERM`, restart,
  time from spawn to the readiness endpoint (`/-/ready`, VictoriaMetrics `/health`) and to the
  first successful `count(node_load1)`; then the same after `kill -9`.
- The `smoke` size runs the same code on a tiny dataset for CI; its figures are not published.
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_point_the_right_way() {
        assert_eq!(factor(Better::Lower, Some(1.0), Some(3.0)), Some(3.0));
        assert_eq!(factor(Better::Higher, Some(1.0), Some(4.0)), Some(0.25));
        assert_eq!(factor(Better::Lower, None, Some(3.0)), None);
    }

    #[test]
    fn targets() {
        let row = |values, target| Row { figure: "", unit: "", better: Better::Lower, values, target, target_text: "" };
        assert_eq!(row([Some(0.4), None, None], Target::AtMost(0.5)).met(), Some(true));
        assert_eq!(row([Some(1.0), Some(2.0), Some(0.5)], Target::TimesPromAndVm(2.0)).met(), Some(false));
        assert_eq!(row([Some(0.5), Some(2.0), Some(0.5)], Target::TimesPromAndVm(2.0)).met(), Some(true));
        assert_eq!(row([None, Some(2.0), None], Target::TimesProm(3.0)).met(), None);
    }

    #[test]
    fn empty_results_render() {
        let md = markdown(&Results::default(), &["a", "b", "c"], None);
        assert!(md.contains("## Summary"));
        assert!(md.contains("## Method"));
    }
}
