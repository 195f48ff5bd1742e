//! The dispatcher's grouping, timers, dedup and `send_resolved` in virtual time, against the
//! Alertmanager 0.25 timeline (the same one `conformance_timeline` reads from ../shared).

#[path = "support/timeline.rs"]
mod timeline;

const TIMELINE: &str = "
t=  0.0  POST A first time
t=  2.0  NOTIFY /sr-false status=firing   alerts=A:firing
t=  2.0  NOTIFY /sr-true  status=firing   alerts=A:firing
t=  4.0  POST B first time
t=  7.0  NOTIFY /sr-true  status=firing   alerts=A:firing,B:firing
t=  7.0  NOTIFY /sr-false status=firing   alerts=A:firing,B:firing
t= 20.0  POST A resolved (endsAt=now)
t= 22.0  NOTIFY /sr-true  status=firing   alerts=A:resolved,B:firing
t= 22.0  NOTIFY /sr-false status=firing   alerts=B:firing
t= 36.0  POST B resolved (endsAt=now)
t= 37.0  NOTIFY /sr-true  status=resolved alerts=A:resolved,B:resolved
";

#[test]
fn timeline_like_alertmanager_0_25() {
    let got = timeline::run(timeline::CONFIG, &timeline::posts(TIMELINE));
    assert_eq!(got, timeline::notify_lines(TIMELINE));
}

#[test]
fn repeat_interval_rounds_up_to_group_interval() {
    // Nothing changes after the first notification: repeats at 2 + 15, 2 + 30 (12s rounded up
    // to the 5s cadence), for both integrations.
    let got = timeline::run(timeline::CONFIG, &timeline::posts("t= 0.0 POST A first time\nt= 40.0 POST A first"));
    let times: Vec<&str> =
        got.iter().filter(|l| l.contains("/sr-true")).map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(times, ["t=17.0", "t=2.0", "t=32.0", "t=47.0"]);
}
