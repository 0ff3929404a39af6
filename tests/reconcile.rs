//! Every request counted once, under concurrency, resets and HTTP/2. A seeded, mixed workload
//! goes through a real Envoy with two worker threads (two Wasm VMs), over HTTP/1.1 (fresh
//! and keep-alive connections) and h2c (many streams on one connection). The client keeps a
//! ledger of what it sent and saw; afterwards every counter series in /stats/prometheus must
//! equal the ledger exactly, every in-flight gauge must be 0, and every histogram count must
//! equal the ledger's count.
//!
//! The workload covers: sized, chunked (no Content-Length) and multipart uploads, uploads
//! with `Expect: 100-continue`, a Content-Length that lies (fewer bytes, then close), uploads
//! aborted at several points, requests reset before the response, upstream connection
//! refused (Envoy's local 503), responses the upstream cuts off, oversized and invalid
//! uploads, known and unknown ids, unknown paths, methods outside the standard set, and
//! excluded health checks.

// A test crate: unwrap, expect and panic are how it fails (the filter itself denies them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::SocketAddr;

use routemeter_demo::server::ServeOptions;
use routemeter_tests::{both_builds, Build};
use testkit::client::{self, Body, Connection, Request};
use testkit::fault;
use testkit::h2c::{self, H2Request};
use testkit::ledger::{Entry, Ledger};
use testkit::outcomes::{download_outcome, upload_outcome};
use testkit::prom::Exposition;
use testkit::rng::Rng;
use testkit::stack::{Stack, StackOptions};

const UPLOAD: &str = "/api/v1/upload";
const STATUS: &str = "/api/v1/status/{job_id}";
const DOWNLOAD: &str = "/api/v1/download/{job_id}";
const MAX_UPLOAD: u64 = 300_000;

/// Jobs created before the mix: ready ones (with their size) and one that never gets ready.
struct Jobs {
    ready: Vec<(String, u64)>,
    pending: String,
}

fn create_jobs(addr: SocketAddr) -> Jobs {
    let mut ready = Vec::new();
    for size in [1_200u64, 40_000, 150_000] {
        let resp = client::send(addr, &Request::post("/api/v1/upload?filename=seed.xlsx", Body::Sized(size))).unwrap();
        ready.push((job_id(&resp.text()), size));
    }
    let resp =
        client::send(addr, &Request::post("/api/v1/upload?filename=seed.xlsx&processing_ms=3600000", Body::Sized(10)))
            .unwrap();
    Jobs { ready, pending: job_id(&resp.text()) }
}

fn job_id(json: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    v["job_id"].as_str().unwrap().to_string()
}

/// One HTTP/1.1 operation, on the worker's keep-alive connection or a fresh one; the ledger
/// gets the method label, the route label routemeter must give it, and the status seen.
fn h1_op(rng: &mut Rng, target: SocketAddr, keep_alive: &mut Option<Connection>, jobs: &Jobs, ledger: &Ledger) {
    let (ready_id, ready_size) = &jobs.ready[rng.below(jobs.ready.len() as u64) as usize];
    let mut on_keep_alive = |req: &Request| {
        if keep_alive.is_none() {
            *keep_alive = Some(Connection::open(target).unwrap());
        }
        keep_alive.as_mut().unwrap().send(req).unwrap_or_else(|e| panic!("{} {}: {e}", req.method, req.path))
    };
    let fresh =
        |req: &Request| client::send(target, req).unwrap_or_else(|e| panic!("{} {}: {e}", req.method, req.path));
    match rng.below(16) {
        0 => {
            let r = on_keep_alive(&Request::get(&format!("/api/v1/status/{ready_id}")));
            ledger.add(Entry::new("GET", STATUS, r.status));
        }
        1 => {
            let r = fresh(&Request::get(&format!("/api/v1/status/{}", rng.below(1_000_000))));
            ledger.add(Entry::new("GET", STATUS, r.status));
        }
        2 => {
            let r = on_keep_alive(&Request::get(&format!("/api/v1/download/{ready_id}")));
            assert_eq!(r.body_len, *ready_size);
            ledger.add(Entry::new("GET", DOWNLOAD, r.status));
        }
        3 => {
            let r = fresh(&Request::get(&format!("/api/v1/download/{}", jobs.pending)));
            ledger.add(Entry::new("GET", DOWNLOAD, r.status));
        }
        4 => {
            let size = 1 + rng.below(MAX_UPLOAD);
            let r = on_keep_alive(&Request::post("/api/v1/upload?filename=a.xlsx", Body::Sized(size)));
            ledger.add(Entry::new("POST", UPLOAD, r.status));
        }
        5 => {
            let chunks = (0..1 + rng.below(5)).map(|_| 1 + rng.below(30_000)).collect();
            let r = fresh(&Request::post("/api/v1/upload?filename=b.csv", Body::Chunked(chunks)));
            ledger.add(Entry::new("POST", UPLOAD, r.status));
        }
        6 => {
            let req =
                Request::post("/api/v1/upload", Body::Multipart { filename: "c.ods".into(), size: rng.below(50_000) })
                    .header("Expect", "100-continue");
            let r = fresh(&req);
            ledger.add(Entry::new("POST", UPLOAD, r.status));
        }
        7 => {
            // Too big, or not a spreadsheet.
            let req = if rng.below(2) == 0 {
                Request::post("/api/v1/upload?filename=big.xlsx", Body::Sized(MAX_UPLOAD + 1 + rng.below(10_000)))
            } else {
                Request::post("/api/v1/upload?filename=slides.pptx", Body::Sized(1 + rng.below(5_000)))
            };
            let r = on_keep_alive(&req);
            ledger.add(Entry::new("POST", UPLOAD, r.status));
        }
        8 => {
            // Aborted at the start, in the middle or just before the end; or a lying
            // Content-Length: either way the client closes with bytes still owed.
            let size = 10_000 + rng.below(100_000);
            let sent = match rng.below(3) {
                0 => 0,
                1 => size / 2,
                _ => size - 1,
            };
            let req = Request::post("/api/v1/upload?filename=d.xlsx", Body::Sized(size));
            fault::send_and_abort(target, &req, sent).unwrap();
            ledger.add(Entry::new("POST", UPLOAD, 0));
        }
        9 => {
            // The client gives up before the (delayed) response.
            let req = Request::get(&format!("/api/v1/status/{ready_id}?delay_ms=400"));
            fault::send_and_abort(target, &req, 0).unwrap();
            ledger.add(Entry::new("GET", STATUS, 0));
        }
        10 => {
            let r = fresh(&Request::get(&format!("/refused/{}", rng.below(3))));
            assert_eq!(r.status, 503);
            ledger.add(Entry::new("GET", "/refused/{id}", r.status));
        }
        11 => {
            // The upstream dies mid-download: the 200 was already on its way.
            let cut = rng.below(*ready_size);
            let req = Request::get(&format!("/api/v1/download/{ready_id}?truncate_at={cut}"));
            let status = match client::send(target, &req) {
                Ok(r) => r.status,
                // Envoy closes the connection mid-body: the client saw the 200 head first.
                Err(_) => 200,
            };
            ledger.add(Entry::new("GET", DOWNLOAD, status));
        }
        12 => {
            let r = on_keep_alive(&Request::get(&format!("/api/v2/items/{}", rng.below(1_000_000))));
            ledger.add(Entry::new("GET", "/api/v2/items/{id}", r.status));
        }
        13 => {
            let path = format!("/api/v1/status/{}", rng.below(1_000));
            match rng.below(3) {
                0 => ledger.add(Entry::new("DELETE", STATUS, fresh(&Request::new("DELETE", &path)).status)),
                1 => ledger.add(Entry::new("OTHER", STATUS, fresh(&Request::new("PROPFIND", &path)).status)),
                _ => {
                    // Envoy's codec rejects a lower-case method before any filter runs: the
                    // filter sees only on_log, with no method or path.
                    let r = fresh(&Request::new("get", &path));
                    assert_eq!(r.status, 400);
                    ledger.add(Entry::new("OTHER", "/", 400));
                }
            }
        }
        14 => {
            let r = on_keep_alive(&Request::get("/health"));
            assert_eq!(r.status, 200);
            ledger.add_excluded();
        }
        _ => {
            let r = fresh(&Request::new("PUT", "/api/v1/upload?filename=e.xlsx").header("Content-Length", "0"));
            // Templates are per method: a PUT is not an upload; the heuristic gives the same text.
            ledger.add(Entry::new("PUT", UPLOAD, r.status));
        }
    }
}

/// h2c operations: a batch of concurrent streams on one connection.
fn h2_batch(rng: &mut Rng, target: SocketAddr, jobs: &Jobs, ledger: &Ledger) {
    let mut requests = Vec::new();
    let mut labels = Vec::new();
    for _ in 0..12 {
        let (ready_id, _) = &jobs.ready[rng.below(jobs.ready.len() as u64) as usize];
        let base = H2Request {
            method: "GET",
            path: String::new(),
            chunks: Vec::new(),
            content_length: false,
            reset_after: None,
        };
        let (req, method, route) = match rng.below(7) {
            0 => (H2Request { path: format!("/api/v1/status/{ready_id}"), ..base }, "GET", STATUS),
            1 => (H2Request { path: format!("/api/v1/download/{ready_id}"), ..base }, "GET", DOWNLOAD),
            2 => {
                let size = 1 + rng.below(MAX_UPLOAD);
                let path = "/api/v1/upload?filename=h.xlsx".to_string();
                (H2Request { method: "POST", path, chunks: vec![size], content_length: true, ..base }, "POST", UPLOAD)
            }
            3 => {
                // DATA frames without content-length: HTTP/2's chunked upload.
                let chunks = (0..1 + rng.below(4)).map(|_| 1 + rng.below(40_000)).collect();
                let path = "/api/v1/upload?filename=i.csv".to_string();
                (H2Request { method: "POST", path, chunks, content_length: false, ..base }, "POST", UPLOAD)
            }
            4 => {
                // RST_STREAM mid-upload.
                let size = 20_000 + rng.below(100_000);
                let path = "/api/v1/upload?filename=j.xlsx".to_string();
                let req = H2Request {
                    method: "POST",
                    path,
                    chunks: vec![size],
                    content_length: true,
                    reset_after: Some(size / 3),
                };
                (req, "POST", UPLOAD)
            }
            5 => {
                // RST_STREAM before the (delayed) response.
                let path = format!("/api/v1/status/{ready_id}?delay_ms=400");
                (H2Request { path, reset_after: Some(0), ..base }, "GET", STATUS)
            }
            _ => {
                (H2Request { path: format!("/api/v2/items/{}", rng.below(1_000)), ..base }, "GET", "/api/v2/items/{id}")
            }
        };
        requests.push(req);
        labels.push((method, route));
    }
    for (seen, (method, route)) in h2c::run(target, requests).into_iter().zip(labels) {
        ledger.add(Entry::new(method, route, seen.status));
    }
}

both_builds!(every_request_is_counted_once_across_workers_protocols_and_resets);

fn every_request_is_counted_once_across_workers_protocols_and_resets(build: Build) {
    let stack = Stack::start(StackOptions {
        build,
        demo: ServeOptions { max_upload_bytes: MAX_UPLOAD, ..StackOptions::default().demo },
        concurrency: 2,
        refused_route: true,
        ..StackOptions::default()
    });
    let jobs = create_jobs(stack.demo.addr);
    let ledger = Ledger::default();
    std::thread::scope(|scope| {
        for worker in 0..4u64 {
            let (ledger, jobs, target) = (&ledger, &jobs, stack.listener);
            scope.spawn(move || {
                let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15 ^ (worker + 1));
                let mut keep_alive = None;
                for i in 0..120 {
                    h1_op(&mut rng, target, &mut keep_alive, jobs, ledger);
                    // Now and then a fresh keep-alive connection.
                    if i % 25 == 24 {
                        keep_alive = None;
                    }
                }
            });
        }
        let (ledger, jobs, target) = (&ledger, &jobs, stack.listener);
        scope.spawn(move || {
            let mut rng = Rng::new(0xD1B5_4A32_D192_ED03);
            for _ in 0..10 {
                h2_batch(&mut rng, target, jobs, ledger);
            }
        });
    });
    let entries = ledger.entries();
    let excluded = ledger.excluded();
    assert_eq!(entries.len() + excluded, 4 * 120 + 10 * 12);
    assert!(excluded > 0);
    let want = ledger.requests();
    // Resets reach on_log a moment after the client gave up, and histograms only at a
    // stats flush: wait until the page agrees, then compare everything on that page.
    let page = stack.scrape_until("counters and histogram counts to match the ledger", |p| {
        p.counters("http_requests_total", &["method", "route", "status"]) == want
            && p.series("http_requests_in_progress").all(|s| s.value == 0.0)
            && histogram_counts(p, "http_response_body_bytes") == ledger.pairs()
    });

    assert_eq!(page.counters("http_requests_total", &["method", "route", "status"]), want);
    assert_eq!(page.counters("uploads_total", &["route", "status"]), ledger.outcomes("POST", UPLOAD, upload_outcome));
    assert_eq!(
        page.counters("downloads_total", &["route", "status"]),
        ledger.outcomes("GET", DOWNLOAD, download_outcome)
    );
    let gauges: Vec<f64> = page.series("http_requests_in_progress").map(|s| s.value).collect();
    assert!(!gauges.is_empty() && gauges.iter().all(|v| *v == 0.0), "{gauges:?}");
    for metric in ["http_request_duration_milliseconds", "http_request_body_bytes", "http_response_body_bytes"] {
        assert_eq!(histogram_counts(&page, metric), ledger.pairs(), "{metric}");
    }
    let uploads = entries.iter().filter(|e| e.route == UPLOAD && e.method == "POST").count() as u64;
    assert_eq!(page.histogram("upload_file_size_bytes", &[("route", UPLOAD)]).map(|h| h.count), Some(uploads));

    // The mix really covered what it claims.
    let statuses: std::collections::BTreeSet<u16> = entries.iter().map(|e| e.status).collect();
    for s in [0, 200, 201, 404, 405, 409, 413, 422, 503] {
        assert!(statuses.contains(&s), "no request ended with status {s}: {statuses:?}");
    }
    eprintln!("reconciled {} requests ({excluded} excluded) in {} series", entries.len(), want.len());
}

fn histogram_counts(page: &Exposition, metric: &str) -> BTreeMap<Vec<String>, u64> {
    page.counters(&format!("{metric}_count"), &["method", "route"])
}
