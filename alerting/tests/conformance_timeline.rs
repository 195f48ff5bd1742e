//! The Alertmanager 0.25 notification timelines in ../shared/conformance/alerting/timeline/,
//! replayed through the dispatcher in virtual time.

#[path = "../../testsupport/shared.rs"]
mod shared;
#[path = "support/timeline.rs"]
mod timeline;

#[test]
fn timelines_match_alertmanager() {
    let Some(dir) = shared::shared_dir("alertmanager timeline") else { return };
    let mut files: Vec<_> = std::fs::read_dir(dir.join("conformance/alerting/timeline"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("timeline-"))
        .collect();
    files.sort();
    let (mut passed, mut lines) = (0, 0);
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let expected = timeline::notify_lines(&text);
        let got = timeline::run(timeline::CONFIG, &timeline::posts(&text));
        assert_eq!(got, expected, "{}", file.display());
        passed += 1;
        lines += expected.len();
    }
    assert!(passed > 0, "no timeline files");
    println!("conformance alertmanager timeline: {passed} of {} timelines passed ({lines} notifications)", files.len());
}
