//! `make bench`: what routemeter costs Envoy per request, next to the floor of any Wasm filter.
//!
//! One Envoy (`--concurrency 1`) with three listeners in front of one nginx: no filter, an
//! empty proxy-wasm filter, and routemeter with the demo configuration. wrk drives each in
//! interleaved rounds (so drift on a shared machine hits all three alike); Envoy's CPU time
//! (`/proc/<pid>/stat`, all threads) and its own request counter per listener give CPU
//! microseconds per request. Reported: medians over rounds, and the ratio
//! (routemeter - none) / (empty - none), the goal being at most 1.25.

mod setup;
mod wrk;

use std::fmt::Write as _;
use std::time::Duration;

use setup::{Bench, VARIANTS};
use wrk::Load;

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

fn median(mut v: Vec<f64>) -> f64 {
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

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let rounds = env_number("BENCH_ROUNDS", 5) as usize;
    let seconds = env_number("BENCH_SECONDS", 5);
    let connections = env_number("BENCH_CONNECTIONS", 8);
    let bench = Bench::start().unwrap_or_else(|e| {
        eprintln!("bench: {e}");
        std::process::exit(1)
    });
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
    // `$BENCH_MIX=N` runs only mix N (0: small GETs, 1: uploads, 2: distinct paths).
    let only = std::env::var("BENCH_MIX").ok().and_then(|v| v.parse::<usize>().ok());
    for (m, mix) in MIXES.iter().enumerate() {
        if only.is_some_and(|o| o != m) {
            continue;
        }
        eprintln!("== {}: {}", mix.name, mix.description);
        // Warm up every listener (VMs, connection pools, metric ids).
        for v in VARIANTS {
            let _ = bench.run(v, &Load { path: mix.path, script: mix.script, seconds: 1, connections });
        }
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); VARIANTS.len()];
        for round in 0..rounds {
            // Rotate the order each round.
            for k in 0..VARIANTS.len() {
                let i = (round + k) % VARIANTS.len();
                let v = VARIANTS[i];
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
        let cpu: Vec<f64> = (0..VARIANTS.len()).map(|i| med(i, |s| s.cpu_us_per_req)).collect();
        for (i, v) in VARIANTS.iter().enumerate() {
            let _ = writeln!(
                report,
                "| {} | {} | {:.1} | {:.0} | {:.0} us | {:.0} us | {} |",
                mix.name,
                v.name,
                cpu[i],
                med(i, |s| s.rps),
                med(i, |s| s.p50_us),
                med(i, |s| s.p99_us),
                if i == 0 { "-".to_string() } else { format!("{:+.1}", cpu[i] - cpu[0]) }
            );
        }
        let ratio = (cpu[2] - cpu[0]) / (cpu[1] - cpu[0]);
        ratios.push((mix.name, ratio));
    }
    let _ = writeln!(report, "\nratio (routemeter - none) / (empty - none), goal <= 1.25:\n");
    for (name, ratio) in &ratios {
        let _ = writeln!(report, "- {name}: **{ratio:.2}**");
    }
    let _ = writeln!(report, "\n{}", bench.footprint());
    print!("{report}");
    let out = bench.repo.join("target/bench/results.md");
    if std::fs::create_dir_all(out.parent().unwrap_or(&bench.repo)).and_then(|()| std::fs::write(&out, &report)).is_ok() {
        eprintln!("written to {}", out.display());
    }
}
