//! Part 4: routemeter next to the in-app instrumentation it replaces.
//!
//! The same FastAPI service (`bench/app/app.py`, uvicorn, one process) runs twice: plain, and
//! instrumented with prometheus-fastapi-instrumentator's defaults. In interleaved rounds wrk
//! drives the plain app directly, the instrumented app directly, and Envoy in front of the
//! plain app with no filter and with routemeter. What each side adds per request:
//! - in the app: the instrumented app's CPU per request minus the plain app's;
//! - at the proxy: Envoy's CPU per request with routemeter minus without a filter.
//!
//! The goal is routemeter's added CPU at most 0.3 of the instrumentator's.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::setup::{cpu_us, free_ports, wait_port, Bench, Launch, Process, Upstream};
use crate::wrk::{self, Load};
use crate::{env_number, median, NATIVE, NONE, ROUTEMETER};

const PATH: &str = "/api/v1/status/12345";

/// One uvicorn process serving the bench app, killed on drop.
struct App {
    process: Process,
    port: u16,
}

impl App {
    fn start(repo: &Path, instrumented: bool) -> Result<App, String> {
        let port = free_ports(1)?[0];
        let python = repo.join(".venv/bin/python");
        let mut cmd = Command::new(&python);
        cmd.args(["-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--no-access-log", "--log-level", "warning"])
            .arg("--port")
            .arg(port.to_string())
            .current_dir(repo.join("bench/app"))
            .env("ROUTEMETER_BENCH_INSTRUMENT", if instrumented { "1" } else { "0" });
        let log = repo.join(format!("target/bench/uvicorn-{port}.log"));
        std::fs::create_dir_all(repo.join("target/bench")).map_err(|e| e.to_string())?;
        let process = Process::spawn(&mut cmd, &log)
            .map_err(|e| format!("{} -m uvicorn (make bench installs it): {e}", python.display()))?;
        let app = App { process, port };
        wait_port(port, "uvicorn")?;
        Ok(app)
    }

    /// The app's CPU microseconds per request under `load`.
    fn run(&self, load: &Load, dir: &Path) -> Result<f64, String> {
        let pid = self.process.id();
        let cpu0 = cpu_us(pid)?;
        let result = wrk::run(([127, 0, 0, 1], self.port).into(), load, dir)?;
        let cpu1 = cpu_us(pid)?;
        if result.requests < 1.0 {
            return Err("no requests completed".into());
        }
        Ok((cpu1 - cpu0) / result.requests)
    }
}

pub fn report() -> Result<String, String> {
    let rounds = env_number("BENCH_ROUNDS", 5) as usize;
    let seconds = env_number("BENCH_SECONDS", 5);
    let connections = env_number("BENCH_CONNECTIONS", 8);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().map_err(|e| e.to_string())?;
    let plain = App::start(&repo, false)?;
    let instrumented = App::start(&repo, true)?;
    let bench = Bench::start_with(&[NONE, ROUTEMETER, NATIVE], Launch::Native, Upstream::Port(plain.port))?;
    let dir = repo.join("target/bench/run");
    let load = |seconds| Load { path: PATH, script: None, seconds, connections };

    eprintln!("== in-app instrumentation vs routemeter: GET {PATH} on FastAPI");
    // Warm-up: Python imports and caches, Envoy's VMs and connection pools.
    plain.run(&load(1), &dir)?;
    instrumented.run(&load(1), &dir)?;
    bench.run(NONE, &load(1))?;
    bench.run(ROUTEMETER, &load(1))?;
    bench.run(NATIVE, &load(1))?;
    let (mut app_plain, mut app_instr, mut envoy_none, mut envoy_rm, mut envoy_native) =
        (vec![], vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        for k in 0..5 {
            // Rotate the order each round, so drift on a shared machine hits all alike.
            match (round + k) % 5 {
                0 => app_plain.push(plain.run(&load(seconds), &dir)?),
                1 => app_instr.push(instrumented.run(&load(seconds), &dir)?),
                2 => envoy_none.push(bench.run(NONE, &load(seconds))?.cpu_us_per_req),
                3 => envoy_rm.push(bench.run(ROUTEMETER, &load(seconds))?.cpu_us_per_req),
                _ => envoy_native.push(bench.run(NATIVE, &load(seconds))?.cpu_us_per_req),
            }
        }
        eprintln!(
            "  round {round}: app {:.1} / instrumented {:.1} us/req; Envoy none {:.1} / routemeter {:.1} / native {:.1} us/req",
            app_plain[round], app_instr[round], envoy_none[round], envoy_rm[round], envoy_native[round]
        );
    }
    // Differences within each round, then the median: both sides of a pair ran minutes apart
    // at most, so slow drift cancels.
    let diffs = |a: &[f64], b: &[f64]| median(a.iter().zip(b).map(|(x, y)| x - y).collect());
    let added_app = diffs(&app_instr, &app_plain);
    let added_proxy = diffs(&envoy_rm, &envoy_none);
    let added_native = diffs(&envoy_native, &envoy_none);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nin-app instrumentation vs routemeter (GET {PATH}, FastAPI {}, {rounds} rounds x {seconds} s, wrk -t1 -c{connections}):\n\n\
         | measured | CPU us/request (median) |\n|---|---|\n\
         | app, plain | {:.1} |\n| app, prometheus-fastapi-instrumentator | {:.1} |\n\
         | Envoy in front of the plain app, no filter | {:.1} |\n| Envoy in front of the plain app, routemeter | {:.1} |\n\
         | Envoy in front of the plain app, routemeter native | {:.1} |\n\
         | **added by the instrumentator (app)** | **{added_app:+.1}** |\n| **added by routemeter (Envoy)** | **{added_proxy:+.1}** |\n\
         | **added by routemeter native (Envoy)** | **{added_native:+.1}** |\n\n\
         routemeter / instrumentator: **{:.2}** (goal <= 0.3); native / instrumentator: **{:.2}** (goal <= 0.1)",
        python_versions(&repo),
        median(app_plain),
        median(app_instr),
        median(envoy_none),
        median(envoy_rm),
        median(envoy_native),
        added_proxy / added_app,
        added_native / added_app
    );
    Ok(out)
}

/// The versions the bench ran, for the report.
fn python_versions(repo: &Path) -> String {
    let out = Command::new(repo.join(".venv/bin/python"))
        .args(["-c", "import importlib.metadata as m; print(', '.join(f'{p} {m.version(p)}' for p in ['fastapi', 'uvicorn', 'prometheus-fastapi-instrumentator']))"])
        .output();
    out.ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default()
}
