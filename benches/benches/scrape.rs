//! Scrape ingestion: a 10 000-series exposition through a scrape loop (parse, cache lookup,
//! target labels, staleness bookkeeping, synthetic series) into an appender that drops
//! everything, so the figure is the scrape side's own cost per sample.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sextant_model::exposition::Format;
use sextant_model::{Appendable, Appender, Labels, StorageError, SystemClock};
use sextant_scrape::{targets_from_group, Config, ScrapeLoop};

struct Discard;

impl Appender for Discard {
    fn append(&mut self, _: &Labels, _: i64, _: f64) -> Result<(), StorageError> {
        Ok(())
    }
    fn commit(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
    fn rollback(&mut self) {}
}

struct DiscardStorage;

impl Appendable for DiscardStorage {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(Discard)
    }
}

fn bench(c: &mut Criterion) {
    let mut body = String::from("# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n");
    for i in 0..10_000 {
        body.push_str(&format!(
            "http_requests_total{{method=\"GET\",code=\"200\",handler=\"/api/v{}/item\",pod=\"p-{}\"}} {}\n",
            i % 7,
            i,
            i * 3
        ));
    }
    let config = Config::load_str("scrape_configs:\n- job_name: app\n  static_configs: [{targets: ['127.0.0.1:1']}]\n")
        .expect("config");
    let job = Arc::new(config.scrape_configs[0].clone());
    let (targets, _) = targets_from_group(&job.static_configs[0], &job);
    let mut scrape_loop =
        ScrapeLoop::new(targets[0].clone(), job, Arc::new(DiscardStorage), Arc::new(SystemClock)).expect("loop");
    let mut group = c.benchmark_group("scrape");
    group.throughput(Throughput::Elements(10_000));
    let mut t = 0;
    group.bench_function("ingest_10k_series_cached", |b| {
        b.iter(|| {
            t += 15_000;
            scrape_loop.ingest_body(body.as_bytes(), Format::Text, t)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
