//! Bytes of memory per active series in the head after 120 samples each, measured with a
//! counting global allocator: live heap bytes after filling the head minus before, divided by
//! the number of series. It counts everything the head allocates (series, chunks, label
//! symbols, hash maps, postings bitmaps) but not allocator overhead per block.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use sextant_model::Labels;
use sextant_tsdb::{Head, SeriesRef};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Fills a head with `series`, 120 samples each (15 s apart, counter values), and returns
/// the heap bytes it holds per series.
fn bytes_per_series(name: &str, series: &[Labels], counter: bool) {
    let before = LIVE.load(Ordering::Relaxed);
    let head = Head::default();
    let mut refs: Vec<Option<SeriesRef>> = vec![None; series.len()];
    for i in 0..120i64 {
        let mut app = head.appender();
        for (j, (labels, r)) in series.iter().zip(&mut refs).enumerate() {
            let v = if counter { 123_456_789.0 + 1000.0 * i as f64 } else { ((i * 7 + j as i64) % 13) as f64 * 0.25 };
            *r = Some(app.append_ref(*r, labels, 1_700_000_000_000 + i * 15_000, v).expect("append"));
        }
        app.commit_batch().expect("commit");
    }
    let after = LIVE.load(Ordering::Relaxed);
    let (chunk_bytes, samples) = head.chunk_bytes_and_samples();
    let n = series.len() as f64;
    println!(
        "tsdb_memory {name}: {} series, {:.0} bytes/series heap ({:.0} of them chunk data, {:.2} bytes/sample)",
        series.len(),
        (after - before) as f64 / n,
        chunk_bytes as f64 / n,
        chunk_bytes as f64 / samples as f64,
    );
    drop(head);
}

fn main() {
    let synthetic: Vec<Labels> = (0..100_000)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", format!("node_metric_{}", i % 500)),
                ("instance", format!("host-{:04}:9100", i / 500)),
                ("job", "node".to_string()),
                ("cpu", (i % 8).to_string()),
            ])
        })
        .collect();
    bytes_per_series("synthetic 4 labels, gauge", &synthetic, false);
    bytes_per_series("synthetic 4 labels, counter", &synthetic, true);
    match sextant_benches::series_from_20k(20_000) {
        Some(series) => bytes_per_series("20kseries.json (12 labels avg), counter", &series, true),
        None => println!("tsdb_memory: ../shared/bench/20kseries.json not found"),
    }
}
