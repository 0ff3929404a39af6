//! Soak: steady load through Envoy with two workers for `SOAK_SECONDS` (60 in `make test`,
//! 600 in `make soak`): status polls, uploads, paths with ids, health checks and paths of
//! random words (every one distinct, so the route cap works the whole time). Envoy's RSS and
//! heap are sampled every 10 s and must not grow after the warm-up (the first fifth, at
//! least 20 s); at the end every counter of a known route equals the ledger, the requests
//! under other labels add up to the random-word ones, and the gauges are back at 0.

// A test crate: unwrap, expect and panic are how it fails (the filter itself denies them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use testkit::client::{self, Body, Request};
use testkit::ledger::{Entry, Ledger};
use testkit::stack::{Stack, StackOptions};
use testkit::traffic::{steady, Steady, StopOnDrop, ANY, UPLOAD};

/// Growth allowed after the warm-up: allocator noise, not a leak (a leak of one small
/// allocation per request would be tens of MB over a minute at these rates).
const RSS_SLACK_KB: u64 = 4 * 1024;
const HEAP_SLACK_BYTES: u64 = 2 << 20;

#[test]
fn memory_stays_flat_and_every_request_is_counted_once() {
    let seconds: u64 = std::env::var("SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let stack = Stack::start(StackOptions { concurrency: 2, ..StackOptions::default() });
    let up = client::send(stack.listener, &Request::post("/api/v1/upload?filename=a.csv", Body::Sized(10))).unwrap();
    let job = serde_json::from_str::<serde_json::Value>(&up.text()).unwrap()["job_id"].as_str().unwrap().to_string();
    let ledger = Ledger::default();
    ledger.add(Entry::new("POST", UPLOAD, up.status));
    let stop = AtomicBool::new(false);
    let mut samples = Vec::new();
    std::thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        for seed in 1..=4 {
            let (ledger, stop, job, target) = (&ledger, &stop, job.as_str(), stack.listener);
            scope.spawn(move || steady(Steady { hostile: true, ..Steady::new(target, job, seed) }, ledger, stop));
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(seconds) {
            std::thread::sleep(
                Duration::from_secs(10).min(Duration::from_secs(seconds).saturating_sub(start.elapsed())),
            );
            let (rss, heap) = stack.envoy_memory();
            eprintln!(
                "soak {:>4} s: {:>8} requests, RSS {rss} kB, heap {heap} B",
                start.elapsed().as_secs(),
                ledger.entries().len()
            );
            samples.push((start.elapsed().as_secs(), rss, heap));
        }
    });
    let warm = (seconds / 5).max(20);
    let base = samples.iter().rev().find(|s| s.0 <= warm).or(samples.first()).copied().unwrap();
    for &(at, rss, heap) in samples.iter().filter(|s| s.0 > warm) {
        assert!(
            rss <= base.1 + RSS_SLACK_KB,
            "RSS grew after warm-up: {rss} kB at {at} s vs {} kB at {} s",
            base.1,
            base.0
        );
        assert!(
            heap <= base.2 + HEAP_SLACK_BYTES,
            "heap grew after warm-up: {heap} B at {at} s vs {} B at {} s",
            base.2,
            base.0
        );
    }

    let random = ledger.select("GET", ANY).len() as u64;
    let page = stack.scrape_until("every request counted", |p| ledger.check(p).is_ok());
    ledger.check(&page).unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
    let routes = page.label_values("http_requests_total", "route").len();
    assert!(routes <= 100 + 4 + 1, "{routes} route labels: the cap is 100");
    eprintln!(
        "soak: {seconds} s, {} requests ({random} to random paths) reconciled, {routes} route labels, memory {:?}",
        ledger.entries().len() + ledger.excluded(),
        samples
    );
}
