//! `sextant tsdb import openmetrics` and `sextant tsdb analyze` on a small file.

use std::process::Command;

fn run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sextant")).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn import_then_analyze() {
    let dir = tempfile::tempdir().unwrap();
    let mut om = String::from("# TYPE up gauge\n");
    for i in 0..1000 {
        // 15 s apart over ~4 h: two 2 h blocks, merged by the import's compaction.
        om.push_str(&format!("up{{job=\"a\"}} 1 {}.000\n", 1_700_000_000 + i * 15));
        om.push_str(&format!("up{{job=\"b\"}} {}.5 {}.000\n", i, 1_700_000_000 + i * 15));
    }
    om.push_str("# TYPE reqs counter\nreqs_total{job=\"a\"} 3 1700000000.000\n# EOF\n");
    let file = dir.path().join("in.om");
    std::fs::write(&file, om).unwrap();
    let data = dir.path().join("data");
    let out = run(&["tsdb", "import", "openmetrics", file.to_str().unwrap(), data.to_str().unwrap()]);
    assert!(out.contains("imported 2001 samples of 3 series"), "{out}");
    let report = run(&["tsdb", "analyze", data.to_str().unwrap()]);
    assert!(report.contains("total: 1 blocks, 3 series, 2001 samples"), "{report}");
    assert!(report.contains("       2 up\n"), "{report}");

    // Small buffers: many intermediate blocks (fast zstd), merged into one; progress on stderr.
    let data2 = dir.path().join("data2");
    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["tsdb", "import", "openmetrics", file.to_str().unwrap(), data2.to_str().unwrap()])
        .args(["--max-samples-in-memory", "300"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("import: 100.0%") && stderr.contains("samples/s, ETA"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 2001 samples of 3 series"));
    let report = run(&["tsdb", "analyze", "--columns", data2.to_str().unwrap()]);
    assert!(report.contains("total: 1 blocks, 3 series, 2001 samples"), "{report}");
    assert!(report.contains("timestamps: raw") && report.contains("values decimal-packed"), "{report}");

    let bad = dir.path().join("bad.om");
    std::fs::write(&bad, "up 1\n# EOF\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["tsdb", "import", "openmetrics", bad.to_str().unwrap(), data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("without a timestamp"));
}
