//! Route labels on public API descriptions (tests/data/apis): templates filled with
//! realistic values, sent with the empty configuration and with the upstream's OpenAPI
//! document configured, scored against the templates (issue #10's measurement).
//!
//! - `learned_labels_on_ten_apis`: the learner alone on 10 APIs, fixed seeds, exact figures;
//! - `learned_labels_through_envoy_match_the_core`: the same traffic from three APIs through
//!   a real Envoy (one keep-alive connection: one worker, the seed's order); the scrape's
//!   count per label equals the core's, so the core's per-request labels are Envoy's;
//! - `openapi_source_labels_every_template_exactly`: every template of four APIs, with the
//!   document served by the upstream: each request carries its own template, also where
//!   GitHub's and Jira's documents have paths of one shape for different methods;
//! - `fastapi_generated_openapi_names_each_method`: FastAPI's own document for such routes;
//! - `three_envoys_learning_apart_publish_the_cores_union`: a fleet of three Envoys, each
//!   learning alone from its share of one traffic, publishes exactly the core's labels;
//! - `report` (ignored; `make routes-report`): the README's figures, every API through Envoy,
//!   with the union of labels over fleets of 3 and 10 proxies.

// A test crate: unwrap, expect and panic are how it fails (the filter itself denies them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use routemeter::host::memory::MemoryHost;
use routemeter::route::{Limits, SharedLearned};
use routemeter::shared::Keys;
use routemeter_demo::server::ServeOptions;
use routemeter_tests::apis::{self, Api, Fleet, Score};
use routemeter_tests::{both_builds, Build};
use testkit::client::{Connection, Request};
use testkit::stack::{Stack, StackOptions};

/// The empty configuration's limits (max_routes 100, max_path_depth 16, learning on).
fn empty_config_limits() -> Limits {
    Limits::new(100, 16, true)
}

/// The label each request gets, in order, from the core exactly as one VM runs it (the
/// learned state synchronised through shared data, promotions included).
fn core_labels(requests: &[apis::Request]) -> Vec<String> {
    let store = MemoryHost::new();
    let mut vm = SharedLearned::new(empty_config_limits(), Keys::for_plugin("").learned_routes());
    let mut out = String::new();
    requests
        .iter()
        .map(|r| match vm.resolve_path(r.path.as_bytes(), &store) {
            Some(node) => {
                vm.state().render(node, &mut out);
                out.clone()
            }
            None => apis::OTHER.to_string(),
        })
        .collect()
}

fn counts(labels: &[String]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for l in labels {
        *out.entry(l.clone()).or_default() += 1;
    }
    out
}

/// Sends `requests` through Envoy in order over one keep-alive connection and returns
/// `http_requests_total` summed by route label.
fn through_envoy(
    (api, build): (&Api, Build),
    requests: &[apis::Request],
    plugin_config: &str,
    wait_for_openapi: Option<usize>,
) -> BTreeMap<String, u64> {
    let demo = ServeOptions { openapi: Some(api.document.clone().into()), ..StackOptions::default().demo };
    let plugin_config = Some(plugin_config.to_string());
    let stack = Stack::start(StackOptions { demo, plugin_config, build, ..StackOptions::default() });
    if let Some(templates) = wait_for_openapi {
        // Every Wasm VM loads it, one after another (the main thread's and the worker's);
        // the native module is one state for the process.
        let fetches = match build {
            Build::Wasm => 2.0,
            Build::Native => 1.0,
        };
        let page = stack.scrape_until("the OpenAPI document in every VM", |p| {
            p.get("routemeter_openapi_routes", &[]) == Some(templates as f64)
                && p.get("routemeter_openapi_fetches_total", &[("status", "ok")]) == Some(fetches)
        });
        assert_eq!(page.get("routemeter_openapi_routes", &[]), Some(templates as f64), "{}", stack.logs());
    }
    let mut conn = Connection::open(stack.listener).expect("connect");
    for r in requests {
        // HEAD answers carry no body; the route label does not depend on the method.
        let method = if r.method == "HEAD" { "GET" } else { &r.method };
        conn.send(&Request::new(method, &r.path)).unwrap_or_else(|e| panic!("{} {}: {e}", r.method, r.path));
    }
    let total = requests.len() as f64;
    let page = stack.scrape_until("every request counted", |p| {
        p.series("http_requests_total").map(|s| s.value).sum::<f64>() == total
    });
    let mut out = BTreeMap::new();
    for s in page.series("http_requests_total") {
        *out.entry(s.labels["route"].clone()).or_default() += s.value as u64;
    }
    out
}

/// Templates per run, requests per template, as the issue measured.
const TEMPLATES: usize = 60;
const PER_TEMPLATE: usize = 25;

fn runs(api: &Api) -> Vec<(u64, usize, Vec<apis::Request>)> {
    [(1, 30), (1, 300), (2, 30), (2, 300)]
        .into_iter()
        .map(|(seed, pool)| {
            (seed, pool, apis::traffic(api, seed * 1000 + pool as u64, Some(TEMPLATES), PER_TEMPLATE, pool))
        })
        .collect()
}

#[test]
fn learned_labels_on_ten_apis() {
    // API: templates hit, exactly one label, one label once learned, labels, other requests
    // (four runs each: seeds 1 and 2, pools of 30 and 300 names).
    let want: &[(&str, usize, usize, usize, usize, usize)] = &[
        ("bitbucket", 240, 207, 235, 362, 0),
        ("digitalocean", 240, 205, 225, 288, 0),
        ("github", 240, 177, 211, 323, 0),
        ("gitlab", 240, 203, 207, 224, 0),
        ("jira", 240, 180, 220, 371, 0),
        ("kubernetes", 240, 232, 236, 245, 0),
        ("slack", 240, 240, 240, 240, 0),
        ("stripe", 240, 220, 232, 267, 0),
        ("twilio", 240, 223, 233, 257, 0),
        ("zoom", 240, 218, 226, 250, 0),
    ];
    let mut got = Vec::new();
    let mut total = Score::of(&[], &[]);
    for name in apis::APIS {
        let api = apis::load(name);
        let mut s = Score::of(&[], &[]);
        for (_, _, reqs) in runs(&api) {
            s.add(&Score::of(&reqs, &core_labels(&reqs)));
        }
        total.add(&s);
        got.push((name, s.templates, s.exact, s.settled, s.labels, s.other));
    }
    println!("{}\n{}", apis::HEADER, got.iter().map(|g| format!("{g:?}")).collect::<Vec<_>>().join("\n"));
    println!("{}", total.row("all"));
    assert_eq!(got, want);
}

both_builds!(learned_labels_through_envoy_match_the_core);

fn learned_labels_through_envoy_match_the_core(build: Build) {
    for name in ["github", "stripe", "jira"] {
        let api = apis::load(name);
        let reqs = apis::traffic(&api, 7, Some(TEMPLATES), PER_TEMPLATE, 100);
        let core = core_labels(&reqs);
        assert_eq!(through_envoy((&api, build), &reqs, "{}", None), counts(&core), "{name}");
        let s = Score::of(&reqs, &core);
        println!("{}", s.row(name));
    }
}

both_builds!(openapi_source_labels_every_template_exactly);

fn openapi_source_labels_every_template_exactly(build: Build) {
    let config = r#"{"openapi": {"cluster": "converter"}}"#;
    // GitHub's and Jira's have paths of one shape whose parameter names differ by method
    // (`GET /orgs/{org}/attestations/{subject_digest}`, `DELETE .../{attestation_id}`).
    for name in ["stripe", "twilio", "github", "jira"] {
        let api = apis::load(name);
        let reqs = apis::traffic(&api, 11, None, 5, 100);
        let want: Vec<String> = reqs.iter().map(|r| api.templates[r.template].path.clone()).collect();
        let got = through_envoy((&api, build), &reqs, config, Some(api.templates.len()));
        assert_eq!(got, counts(&want), "{name}");
        let s = Score::of(&reqs, &want);
        assert_eq!((s.exact, s.templates, s.other), (api.templates.len(), api.templates.len(), 0), "{name}");
    }
}

/// `make routes-report`: the README's table. Every API, four runs, through Envoy; each run's
/// per-label counts checked against the core, the figures from the core's per-request labels.
#[test]
#[ignore]
fn report() {
    println!("{}", apis::FLEET_HEADER);
    let mut total = (Score::of(&[], &[]), Fleet::default(), Fleet::default());
    for name in apis::APIS {
        let api = apis::load(name);
        let mut s = Score::of(&[], &[]);
        for (seed, pool, reqs) in runs(&api) {
            let core = core_labels(&reqs);
            let got = through_envoy((&api, Build::Wasm), &reqs, "{}", None);
            assert_eq!(got, counts(&core), "{name} seed {seed} pool {pool}");
            s.add(&Score::of(&reqs, &core));
        }
        let (three, ten) = (fleet_of(&api, 3), fleet_of(&api, 10));
        println!("{} {} | {} |", s.row(name), three.cells(), ten.cells());
        total.0.add(&s);
        total.1.add(&three);
        total.2.add(&ten);
    }
    println!("{} {} | {} |", total.0.row("all"), total.1.cells(), total.2.cells());
}

/// Development aid: `API=github POOL=300 cargo test --test route_labels diagnose -- --ignored
/// --nocapture` lists the templates that did not get exactly one label of their own.
#[test]
#[ignore]
fn diagnose() {
    let api = apis::load(&std::env::var("API").unwrap_or_else(|_| "github".into()));
    let pool: usize = std::env::var("POOL").ok().and_then(|p| p.parse().ok()).unwrap_or(300);
    let reqs = apis::traffic(&api, 1000 + pool as u64, Some(TEMPLATES), PER_TEMPLATE, pool);
    let labels = core_labels(&reqs);
    let mut by_template: BTreeMap<usize, BTreeMap<&str, usize>> = BTreeMap::new();
    let mut users: BTreeMap<&str, std::collections::BTreeSet<usize>> = BTreeMap::new();
    for (r, l) in reqs.iter().zip(&labels) {
        *by_template.entry(r.template).or_default().entry(l).or_default() += 1;
        users.entry(l).or_default().insert(r.template);
    }
    for (t, got) in by_template {
        let shared = got.keys().any(|l| users[l].len() > 1);
        if got.len() > 1 || shared {
            println!("{}{} {got:?}", api.templates[t].path, if shared { " SHARED" } else { "" });
        }
    }
}

/// Development aid: the native figures for any set of API descriptions, e.g.
/// `APIS_DIR=/tmp/more APIS=a,b cargo test --release --test route_labels survey -- --ignored
/// --nocapture` (the committed ten by default).
#[test]
#[ignore]
fn survey() {
    let names: Vec<String> = match std::env::var("APIS") {
        Ok(list) => list.split(',').map(str::to_string).collect(),
        Err(_) => apis::APIS.iter().map(|s| s.to_string()).collect(),
    };
    println!("{}", apis::HEADER);
    let mut total = Score::of(&[], &[]);
    for name in &names {
        let api = apis::load(name);
        let mut s = Score::of(&[], &[]);
        for (_, _, reqs) in runs(&api) {
            s.add(&Score::of(&reqs, &core_labels(&reqs)));
        }
        println!("{}", s.row(name));
        total.add(&s);
    }
    println!("{}", total.row("all"));
}

/// FastAPI routes of one shape with parameters named per method, as an app declares them;
/// FastAPI writes its document (`app.openapi()`) and routemeter reads it: each template goes
/// with its own method. Skipped when the virtualenv lacks FastAPI (`make test` installs it).
#[test]
fn fastapi_generated_openapi_names_each_method() {
    let python = testkit::bootstrap::repo_root().join(".venv/bin/python");
    let app = r#"
import json
from fastapi import FastAPI
app = FastAPI()
@app.get("/orgs/{org}/attestations/{subject_digest}")
def get_attestation(org: str, subject_digest: str): return {}
@app.delete("/orgs/{org}/attestations/{attestation_id}")
def delete_attestation(org: str, attestation_id: int): return {}
@app.get("/orgs/{org}/repos")
def repos(org: str): return []
print(json.dumps(app.openapi()))
"#;
    let Ok(out) = std::process::Command::new(&python).args(["-c", app]).output() else {
        eprintln!("SKIPPED: no {}", python.display());
        return;
    };
    if !out.status.success() {
        eprintln!("SKIPPED: {}", String::from_utf8_lossy(&out.stderr));
        return;
    }
    let routes = routemeter::openapi::parse(&out.stdout, None).unwrap();
    let rules: Vec<(&str, Option<Vec<&str>>)> =
        routes.rules.iter().map(|r| (r.template.text(), r.methods.map(routemeter::method::MethodSet::names))).collect();
    assert_eq!(
        rules,
        [
            ("/orgs/{org}/repos", None),
            ("/orgs/{org}/attestations/{attestation_id}", Some(vec!["DELETE"])),
            ("/orgs/{org}/attestations/{subject_digest}", Some(vec!["GET", "HEAD"])),
            ("/orgs/{org}/attestations/{attestation_id}", None),
        ]
    );
}

/// The fleet figures for `proxies` proxies over every run of `api`, each proxy learning
/// alone (the core, one VM each) from a random share of the run's traffic.
fn fleet_of(api: &Api, proxies: usize) -> Fleet {
    let mut fleet = Fleet::default();
    for (seed, _, reqs) in runs(api) {
        let shares = apis::deal(&reqs, proxies, seed + proxies as u64);
        let labels: Vec<Vec<String>> = shares.iter().map(|s| core_labels(s)).collect();
        fleet.add(&Fleet::of(&shares, &labels));
    }
    fleet
}

/// A fleet of three real Envoys, each learning alone from a random third of one traffic
/// (#22): every proxy's page holds exactly the core's labels for its share, so the union
/// Prometheus sums is the core's, and the ten-proxy figures of `fleet` (core only) carry.
#[test]
fn three_envoys_learning_apart_publish_the_cores_union() {
    // API: templates, distinct labels over the three proxies, templates with one label on all.
    let want = [
        ("github", Fleet { templates: 60, labels: 132, one_label: 23 }),
        ("stripe", Fleet { templates: 60, labels: 85, one_label: 52 }),
        ("jira", Fleet { templates: 60, labels: 140, one_label: 42 }),
    ];
    let mut got = Vec::new();
    for (name, _) in want {
        let api = apis::load(name);
        let reqs = apis::traffic(&api, 7, Some(TEMPLATES), PER_TEMPLATE, 100);
        let shares = apis::deal(&reqs, 3, 7);
        let labels: Vec<Vec<String>> = shares.iter().map(|s| core_labels(s)).collect();
        std::thread::scope(|scope| {
            let envoys: Vec<_> = shares
                .iter()
                .map(|share| scope.spawn(|| through_envoy((&api, Build::Wasm), share, "{}", None)))
                .collect();
            for (p, (envoy, want)) in envoys.into_iter().zip(&labels).enumerate() {
                assert_eq!(envoy.join().unwrap(), counts(want), "{name}, proxy {p}");
            }
        });
        let fleet = Fleet::of(&shares, &labels);
        println!("{name}: {fleet:?} {}", fleet.cells());
        got.push((name, fleet));
    }
    assert_eq!(got, want);
}

/// Development aid for #22: `cargo test --release --test route_labels fleet -- --ignored
/// --nocapture`. The runs of `learned_labels_on_ten_apis` dealt at random to 1, 3 and 10
/// proxies that each learn alone; the distinct labels the fleet publishes per template and
/// the templates that get one label fleet-wide.
#[test]
#[ignore]
fn fleet() {
    for proxies in [1usize, 3, 10] {
        let mut total = Fleet::default();
        for name in apis::APIS {
            total.add(&fleet_of(&apis::load(name), proxies));
        }
        println!("{proxies} proxies: {total:?} {}", total.cells());
    }
}
