//! `make bench`: what routemeter costs Envoy per request, next to the floor of any Wasm filter.
//!
//! One Envoy (`--concurrency 1`) in front of one nginx, with a listener per variant: no
//! filter, an empty proxy-wasm filter, the "floor" (a probe filter that only reads the three
//! facts any request counter needs: method, path, status), routemeter with the demo
//! configuration, the same as the native module (`native`), a native module that does nothing
//! (`empty_native`), and Envoy's own per-route stats with no filter (`route_stats`: a
//! `stat_prefix` on the route).
//!
//! 1. CPU: wrk drives each listener in interleaved rounds (drift on a shared machine hits all
//!    alike); Envoy's CPU time (`/proc/<pid>/stat`, all threads) over its own request counter
//!    gives CPU microseconds per request. Medians over rounds, and the ratio
//!    (variant - none) / (empty - none), the goal for routemeter being at most 1.25.
//! 2. Memory: Envoy's RSS and heap with no filter, with the empty filter, with routemeter,
//!    after the same traffic; the differences are what the VMs take.
//! 3. Instructions: the same listeners, plus probes that price single host calls, under
//!    callgrind; instructions per request are the same from run to run.
//! 4. In-app: routemeter's added Envoy CPU next to what prometheus-fastapi-instrumentator adds
//!    to a FastAPI app's CPU ([`in_app`]).
//!
//! Environment: `BENCH_ROUNDS` (5), `BENCH_SECONDS` (5), `BENCH_CONNECTIONS` (8), `BENCH_MIX`
//! (one mix only, in both parts: 0, 1 or 2), `BENCH_PROBES` (extra probe listeners for part 1, see
//! [`cpu_variants`]), `BENCH_WASM` (another routemeter build: a path from the repository root), `BENCH_CPU=0`,
//! `BENCH_MEMORY=0`, `BENCH_INSTRUCTIONS=0` and `BENCH_IN_APP=0` (skip a part).

mod in_app;
mod instructions;
mod setup;
mod wrk;

use std::fmt::Write as _;
use std::time::Duration;

use setup::{Bench, Filter, Launch, Variant};
use testkit::client::{Body, Request};
use wrk::Load;

pub(crate) const NONE: Variant = Variant::new("none", Filter::None);
const EMPTY: Variant = Variant::new("empty", Filter::Empty);
/// What reading `:method`, `:path` and `response.code` costs, with nothing recorded.
const FLOOR: Variant = Variant::new("floor", Filter::Probe("req:method,path;log:code"));
pub(crate) const ROUTEMETER: Variant = Variant::new("routemeter", Filter::Routemeter);
/// routemeter as a native Envoy dynamic module: the same core, configuration and series.
pub(crate) const NATIVE: Variant = Variant::new("native", Filter::Native);
/// What a user would turn on instead: Envoy's own per-route stats, no filter.
const ROUTE_STATS: Variant = Variant::new("route_stats", Filter::RouteStats);
/// A native module that does nothing: what Envoy charges any dynamic-module HTTP filter.
const EMPTY_NATIVE: Variant = Variant::new("empty_native", Filter::EmptyNative);
const VARIANTS: [Variant; 7] = [NONE, EMPTY, FLOOR, ROUTEMETER, NATIVE, ROUTE_STATS, EMPTY_NATIVE];

/// Probes that price one kind of host call: (variant, what it does, calls per request).
/// Prices are differences against `PROBE_BASE`, the probe filter making no calls.
const PROBE_BASE: Variant = Variant::new("probe_base", Filter::Probe(""));
const PRICES: [(Variant, &str, u32); 8] = [
    (Variant::new("probe_path", Filter::Probe("req:path")), "read a request header (`:path`)", 1),
    (Variant::new("probe_pairs", Filter::Probe("req:pairs")), "read all request headers in one call", 1),
    (Variant::new("probe_status", Filter::Probe("resp:status")), "read a response header (`:status`)", 1),
    (Variant::new("probe_code", Filter::Probe("log:code")), "read a property (`response.code`)", 1),
    (
        Variant::new("probe_clock", Filter::Probe("req:clock,clock,clock,clock,clock,clock,clock,clock,clock,clock")),
        "read the clock",
        10,
    ),
    (
        Variant::new(
            "probe_counter",
            Filter::Probe("req:counter,counter,counter,counter,counter,counter,counter,counter,counter,counter"),
        ),
        "increment a counter",
        10,
    ),
    (
        Variant::new(
            "probe_histogram",
            Filter::Probe("log:histogram,histogram,histogram,histogram,histogram,histogram,histogram,histogram,histogram,histogram"),
        ),
        "record a histogram value",
        10,
    ),
    (
        Variant::new("probe_expr", Filter::Probe("log:expr")),
        "evaluate a CEL expression returning method, path and status (`expr_evaluate`)",
        1,
    ),
];

/// A workload: what each wrk request is.
struct Mix {
    name: &'static str,
    description: &'static str,
    path: &'static str,
    /// Lua for wrk (`-s`), if the request is not a plain GET of `path`.
    script: Option<&'static str>,
}

const MIXES: [Mix; 3] = [
    Mix {
        name: "small GETs",
        description: "GET /api/v1/status/12345 (template route), 2 B response",
        path: "/api/v1/status/12345",
        script: None,
    },
    Mix {
        name: "1 MB uploads",
        description: "POST /api/v1/upload?filename=a.xlsx with a 1 MiB body (upload route)",
        path: "/api/v1/upload?filename=a.xlsx",
        script: Some(
            "wrk.method = \"POST\"\nwrk.body = string.rep(\"x\", 1048576)\nwrk.headers[\"Content-Type\"] = \"application/octet-stream\"\n",
        ),
    },
    Mix {
        name: "distinct paths",
        description: "GET /tenants/t<random>x/items/<random> (heuristic, route cap reached)",
        path: "/",
        script: Some(
            "request = function()\n  return wrk.format(\"GET\", \"/tenants/t\" .. math.random(1, 1000000) .. \"x/items/\" .. math.random(1, 1000000000))\nend\n",
        ),
    },
];

#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    cpu_us_per_req: f64,
    rps: f64,
    p50_us: f64,
    p99_us: f64,
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub(crate) fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The CPU phase's listeners: the four of [`VARIANTS`], plus any probes named in
/// `$BENCH_PROBES` (`name=plan|name=plan`, plans in the probe filter's syntax), e.g.
/// `BENCH_PROBES='reads2=req:method,path'` to time two header reads. The instructions part
/// counts them too. Names become listener
/// names and stat prefixes, so they must be new and `[a-z0-9_]+`.
fn cpu_variants() -> Result<Vec<Variant>, String> {
    let mut variants = VARIANTS.to_vec();
    let extra = std::env::var("BENCH_PROBES").unwrap_or_default();
    for probe in extra.split('|').filter(|p| !p.trim().is_empty()) {
        let (name, plan) = probe.split_once('=').unwrap_or((probe, ""));
        let name = name.trim();
        let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid || variants.iter().any(|v| v.name == name) {
            return Err(format!("BENCH_PROBES: {name:?} must be a new name of [a-z0-9_]"));
        }
        probe_filter::Plan::parse(plan).map_err(|e| format!("BENCH_PROBES: {name}: {e}"))?;
        // The bench runs once and exits; leaking two short strings is simpler than lifetimes.
        let name: &'static str = Box::leak(name.to_string().into_boxed_str());
        let plan: &'static str = Box::leak(plan.trim().to_string().into_boxed_str());
        variants.push(Variant::new(name, Filter::Probe(plan)));
    }
    Ok(variants)
}

/// `$BENCH_MIX=N` runs only mix N (0: small GETs, 1: uploads, 2: distinct paths), in both parts.
fn mix_selected(m: usize) -> bool {
    std::env::var("BENCH_MIX").ok().and_then(|v| v.parse::<usize>().ok()).is_none_or(|only| only == m)
}

/// One value per variant, measured in the order of `variants`.
struct Measured<'a> {
    variants: &'a [Variant],
    values: Vec<f64>,
}

impl Measured<'_> {
    fn of(&self, v: Variant) -> f64 {
        self.variants.iter().position(|x| x.name == v.name).map_or(f64::NAN, |i| self.values[i])
    }

    /// What `v` adds to Envoy with no filter.
    fn added(&self, v: Variant) -> f64 {
        self.of(v) - self.of(NONE)
    }

    /// The goal's measure: (v - none) / (empty - none).
    fn ratio(&self, v: Variant) -> f64 {
        self.added(v) / self.added(EMPTY)
    }
}

fn main() {
    let repo = match std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize() {
        Ok(repo) => repo,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(1)
        }
    };
    let mut report = String::new();
    // Each part can be skipped (`$BENCH_CPU=0`, ...). Without CPU figures there is nothing
    // to compare with the goal, so that part failing ends the run; the others only say so.
    type Part = fn() -> Result<String, String>;
    let parts: [(&str, &str, Part); 4] = [
        ("BENCH_CPU", "cpu", cpu_report),
        ("BENCH_MEMORY", "memory", memory_report),
        ("BENCH_INSTRUCTIONS", "instructions", instruction_report),
        ("BENCH_IN_APP", "in-app", in_app::report),
    ];
    for (switch, part, run) in parts {
        if std::env::var(switch).as_deref() == Ok("0") {
            continue;
        }
        match run() {
            Ok(text) => report.push_str(&text),
            Err(e) if part == "cpu" => {
                eprintln!("bench: {e}");
                std::process::exit(1)
            }
            Err(e) => {
                eprintln!("bench: {part}: {e}");
                let _ = writeln!(report, "\n{part}: not measured ({e})");
            }
        }
    }
    print!("{report}");
    let out = repo.join("target/bench/results.md");
    if std::fs::create_dir_all(out.parent().unwrap_or(&repo)).and_then(|()| std::fs::write(&out, &report)).is_ok() {
        eprintln!("written to {}", out.display());
    }
}

/// Part 1: Envoy CPU time per request under wrk, medians over interleaved rounds.
fn cpu_report() -> Result<String, String> {
    let rounds = env_number("BENCH_ROUNDS", 5) as usize;
    let seconds = env_number("BENCH_SECONDS", 5);
    let connections = env_number("BENCH_CONNECTIONS", 8);
    let variants = cpu_variants()?;
    let bench = Bench::start(&variants, Launch::Native)?;
    let mut report = String::new();
    let _ = writeln!(
        report,
        "rounds: {rounds} x {seconds} s per variant and mix, wrk -t1 -c{connections}, Envoy --concurrency 1, nginx upstream\n"
    );
    let _ = writeln!(
        report,
        "| mix | variant | Envoy CPU us/request | requests/s | p50 | p99 | added us vs none |\n|---|---|---|---|---|---|---|"
    );
    let mut ratios = Vec::new();
    for (m, mix) in MIXES.iter().enumerate() {
        if !mix_selected(m) {
            continue;
        }
        eprintln!("== {}: {}", mix.name, mix.description);
        // Warm up every listener (VMs, connection pools, metric ids).
        for &v in &variants {
            let _ = bench.run(v, &Load { path: mix.path, script: mix.script, seconds: 1, connections });
        }
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); variants.len()];
        for round in 0..rounds {
            // Rotate the order each round.
            for k in 0..variants.len() {
                let i = (round + k) % variants.len();
                let v = variants[i];
                match bench.run(v, &Load { path: mix.path, script: mix.script, seconds, connections }) {
                    Ok(s) => {
                        eprintln!(
                            "  round {round} {:<10} {:>7.1} us/req {:>9.0} req/s p50 {:>7.0} us p99 {:>7.0} us",
                            v.name, s.cpu_us_per_req, s.rps, s.p50_us, s.p99_us
                        );
                        samples[i].push(s);
                    }
                    Err(e) => eprintln!("  round {round} {}: {e}", v.name),
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let med = |i: usize, f: fn(&Sample) -> f64| median(samples[i].iter().map(f).collect());
        let cpu: Vec<f64> = (0..variants.len()).map(|i| med(i, |s| s.cpu_us_per_req)).collect();
        for (i, v) in variants.iter().enumerate() {
            let _ = writeln!(
                report,
                "| {} | {} | {:.1} | {:.0} | {:.0} us | {:.0} us | {} |",
                mix.name,
                v.name,
                cpu[i],
                med(i, |s| s.rps),
                med(i, |s| s.p50_us),
                med(i, |s| s.p99_us),
                if v.name == NONE.name { "-".to_string() } else { format!("{:+.1}", cpu[i] - cpu[0]) }
            );
        }
        let cpu = Measured { variants: &variants, values: cpu };
        let native_vs_stats = cpu.added(NATIVE) / cpu.added(ROUTE_STATS);
        ratios.push((mix.name, [cpu.ratio(ROUTEMETER), cpu.ratio(FLOOR), cpu.ratio(NATIVE), native_vs_stats]));
    }
    let _ = writeln!(
        report,
        "\nratio (variant - none) / (empty - none); goals: routemeter <= 1.25, native <= 0.3; \
         native's added CPU over Envoy's own per-route stats' <= 2:\n"
    );
    for (name, [routemeter, floor, native, native_vs_stats]) in &ratios {
        let _ = writeln!(
            report,
            "- {name}: routemeter **{routemeter:.2}**, floor {floor:.2}, native **{native:.2}**, native / route stats **{native_vs_stats:.2}**"
        );
    }
    Ok(report)
}

fn small_get(i: usize) -> Request {
    Request::get(&format!("/api/v1/status/{}", 10_000 + i))
}

fn distinct_path(i: usize) -> Request {
    // Ids spread like the wrk script's, so the route cap is soon reached. Each round replays
    // the same 200 paths: labels learnt in the warm-up stay learnt, as they would in a flood.
    Request::get(&format!("/tenants/t{}x/items/{}", (i * 7919) % 1_000_000, i * 104_729))
}

fn upload(_: usize) -> Request {
    Request::post("/api/v1/upload?filename=a.xlsx", Body::Sized(1 << 20))
        .header("Content-Type", "application/octet-stream")
}

const WORKLOADS: [instructions::Workload; 3] = [
    instructions::Workload { name: "small GETs", requests: 200, request: small_get, reconnect: false },
    instructions::Workload { name: "1 MB uploads", requests: 20, request: upload, reconnect: true },
    instructions::Workload { name: "distinct paths", requests: 200, request: distinct_path, reconnect: false },
];

/// Part 2: what a Wasm VM costs in memory. Three Envoys one after the other, each with the
/// `none` listener and at most one filter, after the same traffic: 3 s of distinct paths
/// (the route table fills to its cap) and 1 s of small GETs. The differences from the
/// Envoy without a filter are the filter's VMs (one per worker and one on the main thread).
fn memory_report() -> Result<String, String> {
    let mut out = String::from(
        "\nmemory (Envoy --concurrency 1 after 3 s of distinct paths and 1 s of small GETs on each listener):\n\n\
         | Envoy with | module file bytes | RSS kB | heap allocated bytes | RSS over none | heap over none |\n|---|---|---|---|---|---|\n",
    );
    let mut baseline = None;
    for (filter, file) in [
        (NONE, String::new()),
        (EMPTY, setup::EMPTY_FILTER.to_string()),
        (ROUTEMETER, setup::routemeter_file()),
        (NATIVE, setup::NATIVE_MODULE.to_string()),
    ] {
        let variants: Vec<Variant> = if filter.name == NONE.name { vec![NONE] } else { vec![NONE, filter] };
        let bench = Bench::start(&variants, Launch::Native)?;
        for &v in &variants {
            for (mix, seconds) in [(&MIXES[2], 3), (&MIXES[0], 1)] {
                bench.run(v, &Load { path: mix.path, script: mix.script, seconds, connections: 8 })?;
            }
        }
        std::thread::sleep(Duration::from_secs(1));
        let (rss, heap) = bench.memory()?;
        let (rss0, heap0) = *baseline.get_or_insert((rss, heap));
        let size = if file.is_empty() { "-".to_string() } else { bench.wasm_size(&file).to_string() };
        eprintln!("  memory {:<10} RSS {rss} kB, heap {heap} bytes", filter.name);
        let _ = writeln!(
            out,
            "| {} | {size} | {rss} | {heap} | {:+} kB | {:+} bytes |",
            filter.name,
            rss as i64 - rss0 as i64,
            heap as i64 - heap0 as i64
        );
    }
    Ok(out)
}

/// Part 3: instructions per request under callgrind, and the price of single host calls.
fn instruction_report() -> Result<String, String> {
    // `$BENCH_PROBES` listeners come after the four of `VARIANTS` in `cpu_variants`.
    let extra: Vec<Variant> = cpu_variants()?.split_off(VARIANTS.len());
    let mut variants = VARIANTS.to_vec();
    variants.push(PROBE_BASE);
    variants.extend(PRICES.iter().map(|(v, _, _)| *v));
    variants.extend(&extra);
    eprintln!("== instructions: starting Envoy under callgrind (about a minute)");
    let bench = Bench::start(&variants, Launch::Callgrind)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\ninstructions per request (callgrind, all Envoy threads, smallest of 3 rounds); ratios are added \
         instructions over the empty Wasm filter's (goals: routemeter <= 1.25, native <= 0.25), and native's over \
         Envoy's own per-route stats' (goal <= 2):\n\n\
         | mix | none | empty | floor | routemeter | native | route stats | empty native | routemeter ratio | floor ratio | native ratio | empty native ratio | native / route stats |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    let mut small_gets = None;
    for (m, load) in WORKLOADS.iter().enumerate() {
        if !mix_selected(m) {
            continue;
        }
        let mut values = Vec::new();
        for v in VARIANTS {
            let n = instructions::per_request(&bench, v, load, 3)?;
            eprintln!("  {:<15} {:<10} {:>10.0} instructions/request", load.name, v.name, n);
            values.push(n);
        }
        let ir = Measured { variants: &VARIANTS, values };
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | **{:.2}** | {:.2} | **{:.2}** | {:.2} | **{:.2}** |",
            load.name,
            ir.of(NONE),
            ir.of(EMPTY),
            ir.of(FLOOR),
            ir.of(ROUTEMETER),
            ir.of(NATIVE),
            ir.of(ROUTE_STATS),
            ir.of(EMPTY_NATIVE),
            ir.ratio(ROUTEMETER),
            ir.ratio(FLOOR),
            ir.ratio(NATIVE),
            ir.ratio(EMPTY_NATIVE),
            ir.added(NATIVE) / ir.added(ROUTE_STATS)
        );
        if m == 0 {
            small_gets = Some(ir.of(EMPTY) - ir.of(NONE));
        }
    }
    // Prices on small GETs, the workload where a call is the largest share of the cost.
    let Some(empty_cost) = small_gets else { return Ok(out) };
    let gets = &WORKLOADS[0];
    let base = instructions::per_request(&bench, PROBE_BASE, gets, 3)?;
    eprintln!("  {:<15} {:>10.0} instructions/request", PROBE_BASE.name, base);
    let _ = writeln!(
        out,
        "\nprice of one host call (small GETs; probe filter making the call minus the same probe making none; \
         the empty filter itself costs {empty_cost:.0}):\n\n| call | instructions per call |\n|---|---|"
    );
    for (v, what, calls) in PRICES {
        let n = instructions::per_request(&bench, v, gets, 3)?;
        eprintln!("  {:<15} {:>10.0} instructions/request", v.name, n);
        let _ = writeln!(out, "| {what} | {:.0} |", (n - base) / f64::from(calls));
    }
    if !extra.is_empty() {
        let _ = writeln!(
            out,
            "\n`BENCH_PROBES` (small GETs):\n\n| probe | plan | instructions per request |\n|---|---|---|"
        );
    }
    for v in extra {
        let n = instructions::per_request(&bench, v, gets, 3)?;
        let plan = if let Filter::Probe(plan) = v.filter { plan } else { "" };
        let _ = writeln!(out, "| {} | `{plan}` | {n:.0} |", v.name);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan the probe filter rejects would fail Envoy's start, minutes into `make bench`.
    #[test]
    fn every_probe_plan_parses() {
        let probes = VARIANTS.iter().chain([&PROBE_BASE]).chain(PRICES.iter().map(|(v, _, _)| v));
        let mut checked = 0;
        for v in probes {
            if let Filter::Probe(plan) = v.filter {
                assert_eq!(probe_filter::Plan::parse(plan).map(|_| ()), Ok(()), "{}", v.name);
                checked += 1;
            }
        }
        assert_eq!(checked, 1 + 1 + PRICES.len());
    }

    #[test]
    fn ratios_are_looked_up_by_name() {
        let variants = [ROUTEMETER, NONE, FLOOR, EMPTY];
        let m = Measured { variants: &variants, values: vec![130.0, 100.0, 120.0, 110.0] };
        assert_eq!(m.ratio(ROUTEMETER), 3.0);
        assert_eq!(m.ratio(FLOOR), 2.0);
        assert!(m.of(PROBE_BASE).is_nan());
    }
}
