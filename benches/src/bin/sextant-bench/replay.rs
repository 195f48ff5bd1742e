//! The remote-write replayer. A `gen_dataset.py --format prom` file (time-ordered) is encoded
//! ahead of time into snappy-compressed `WriteRequest`s of about [`BATCH`] samples, one sample
//! per time series as Prometheus' queue manager sends them, held in RAM. Series are sharded by
//! the hash of their label set over [`SHARDS`] keep-alive connections, each sending its
//! requests in order, so every series' samples arrive in time order (Prometheus rejects
//! out-of-order samples; fanning out without sharding loses about 12% of them).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context};
use sextant_model::remote::{self, Label, Sample, TimeSeries, WriteRequest};

use crate::http::{Body, Conn};

/// Samples per request.
pub const BATCH: usize = 2_000;
/// Connections.
pub const SHARDS: usize = 4;

/// Pre-encoded requests, per shard.
#[derive(Debug)]
pub struct Encoded {
    pub shards: Vec<Vec<Vec<u8>>>,
    pub samples: u64,
    pub series: usize,
    pub bytes: u64,
}

/// Reads and encodes a dataset file.
pub fn encode(path: &Path) -> anyhow::Result<Encoded> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    // Label sets in remote-write form, and their shard, by series text.
    let mut known: HashMap<&str, (usize, Vec<Label>)> = HashMap::new();
    let mut pending: Vec<Vec<TimeSeries>> = vec![Vec::new(); SHARDS];
    let mut out = Encoded { shards: vec![Vec::new(); SHARDS], samples: 0, series: 0, bytes: 0 };
    let flush = |pending: &mut Vec<TimeSeries>, out: &mut Vec<Vec<u8>>, bytes: &mut u64| -> anyhow::Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let req = WriteRequest { timeseries: std::mem::take(pending), ..Default::default() };
        let body = remote::encode_write_request(&req)?;
        *bytes += body.len() as u64;
        out.push(body);
        Ok(())
    };
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let series_end = line.rfind('}').map(|i| i + 1).or_else(|| line.find(' ')).context("bad line")?;
        let series = &line[..series_end];
        let mut rest = line[series_end..].split_whitespace();
        let value = match rest.next() {
            Some("NaN") => f64::NAN,
            Some("+Inf") => f64::INFINITY,
            Some("-Inf") => f64::NEG_INFINITY,
            Some(v) => v.parse().with_context(|| format!("{}:{}: bad value", path.display(), n + 1))?,
            None => bail!("{}:{}: no value", path.display(), n + 1),
        };
        let timestamp: i64 = rest
            .next()
            .and_then(|t| t.parse().ok())
            .with_context(|| format!("{}:{}: no timestamp", path.display(), n + 1))?;
        if !known.contains_key(series) {
            let (labels, _, _) = sextant_benches::parse_prom_line(line)
                .with_context(|| format!("{}:{}: cannot parse", path.display(), n + 1))?;
            let shard = (labels.stable_hash() % SHARDS as u64) as usize;
            let labels = labels.iter().map(|l| Label::new(&*l.name, &*l.value)).collect();
            known.insert(series, (shard, labels));
        }
        let (shard, labels) = &known[series];
        pending[*shard].push(TimeSeries {
            labels: labels.clone(),
            samples: vec![Sample { value, timestamp }],
            ..Default::default()
        });
        out.samples += 1;
        if pending[*shard].len() >= BATCH {
            flush(&mut pending[*shard], &mut out.shards[*shard], &mut out.bytes)?;
        }
    }
    for (shard, p) in pending.iter_mut().enumerate() {
        flush(p, &mut out.shards[shard], &mut out.bytes)?;
    }
    out.series = known.len();
    Ok(out)
}

/// What a replay did.
#[derive(Debug, Default)]
pub struct Sent {
    pub requests: u64,
    pub failed_requests: u64,
    pub first_error: Option<String>,
    pub wall_s: f64,
}

/// Sends every shard's requests over its own connection, in order.
pub fn send(addr: SocketAddr, encoded: &Encoded) -> anyhow::Result<Sent> {
    let started = Instant::now();
    let results: Vec<anyhow::Result<(u64, u64, Option<String>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = encoded
            .shards
            .iter()
            .map(|bodies| {
                scope.spawn(move || -> anyhow::Result<(u64, u64, Option<String>)> {
                    let mut conn = Conn::open(addr)?;
                    let (mut ok, mut failed, mut first) = (0, 0, None);
                    for body in bodies {
                        let (status, resp) = conn.request(
                            "POST",
                            "/api/v1/write",
                            &[
                                ("Content-Type", "application/x-protobuf"),
                                ("Content-Encoding", "snappy"),
                                ("X-Prometheus-Remote-Write-Version", "0.1.0"),
                            ],
                            Body::Bytes(body),
                        )?;
                        if (200..300).contains(&status) {
                            ok += 1;
                        } else {
                            failed += 1;
                            first.get_or_insert_with(|| {
                                format!("HTTP {status}: {}", String::from_utf8_lossy(&resp[..resp.len().min(200)]))
                            });
                        }
                    }
                    Ok((ok, failed, first))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("sender panicked")))).collect()
    });
    let mut sent = Sent::default();
    for r in results {
        let (ok, failed, first) = r?;
        sent.requests += ok + failed;
        sent.failed_requests += failed;
        if sent.first_error.is_none() {
            sent.first_error = first;
        }
    }
    sent.wall_s = started.elapsed().as_secs_f64();
    Ok(sent)
}
