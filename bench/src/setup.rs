//! The processes under measurement: nginx as a fast upstream, one Envoy with a listener per
//! variant. Both run on free ports in their own directory and are killed by pid on drop.

use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use testkit::admin;
use testkit::bootstrap::{demo_plugin_config, Bootstrap};
use testkit::process::wait_port as port_open;
pub use testkit::process::Proc as Process;

use crate::wrk::{self, Load};
use crate::Sample;

/// What a listener runs in front of the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    None,
    /// `bench/empty-filter`: the cost of merely being a Wasm filter.
    Empty,
    /// routemeter with the shipped demo configuration.
    Routemeter,
    /// The same, as the native Envoy dynamic module (`make native`).
    Native,
    /// `bench/empty-module`: the cost of merely being a native module.
    EmptyNative,
    /// No filter; Envoy's own per-route stats (a `stat_prefix` on the route).
    RouteStats,
    /// `bench/probe-filter` making exactly these host calls (its configuration syntax).
    /// All probe listeners share one VM (`vm_id: probe`), each with its own root context.
    Probe(&'static str),
}

/// One listener of the benchmark Envoy; its name is also its HTTP stat prefix.
#[derive(Debug, Clone, Copy)]
pub struct Variant {
    pub name: &'static str,
    pub filter: Filter,
}

impl Variant {
    pub const fn new(name: &'static str, filter: Filter) -> Variant {
        Variant { name, filter }
    }
}

/// How Envoy runs: natively (CPU time is measured), or under callgrind with instrumentation
/// off until a measurement switches it on (instructions are counted: the same count for
/// the same work, however busy the machine is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    Native,
    Callgrind,
}

/// What the listeners route to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// An nginx started for the bench, answering `ok` to everything: the cheapest upstream.
    Nginx,
    /// A server the caller runs on this port.
    Port(u16),
}

pub struct Bench {
    repo: PathBuf,
    dir: PathBuf,
    // Envoy first: fields drop in order, and Envoy should go before its upstream.
    envoy: Process,
    _nginx: Option<Process>,
    admin: SocketAddr,
    variants: Vec<(Variant, SocketAddr)>,
}

pub fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    testkit::process::free_ports(n).map_err(|e| format!("free port: {e}"))
}

pub fn wait_port(port: u16, what: &str) -> Result<(), String> {
    let open = port_open(SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(20));
    open.then_some(()).ok_or_else(|| format!("{what} did not listen on {port}"))
}

impl Bench {
    pub fn start(variants: &[Variant], launch: Launch) -> Result<Bench, String> {
        Bench::start_with(variants, launch, Upstream::Nginx)
    }

    pub fn start_with(variants: &[Variant], launch: Launch, upstream: Upstream) -> Result<Bench, String> {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let repo = repo.canonicalize().map_err(|e| e.to_string())?;
        let dir = repo.join(match launch {
            Launch::Native => "target/bench/run",
            Launch::Callgrind => "target/bench/callgrind",
        });
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("nginx")).map_err(|e| e.to_string())?;
        let ports = free_ports(variants.len() + 2)?;
        let (nginx_port, admin_port) = (ports[0], ports[1]);
        let listeners: Vec<(Variant, SocketAddr)> =
            variants.iter().zip(&ports[2..]).map(|(v, p)| (*v, SocketAddr::from(([127, 0, 0, 1], *p)))).collect();

        let (upstream, nginx) = match upstream {
            Upstream::Port(port) => (port, None),
            Upstream::Nginx => {
                // One process (no master): killing it by pid leaves no orphaned worker behind.
                let nginx_conf = format!(
                    "daemon off;\nmaster_process off;\nuser root;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
                     events {{ worker_connections 1024; }}\n\
                     http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  client_max_body_size 16m;\n  client_body_buffer_size 2m;\n  keepalive_requests 1000000;\n\
                       server {{\n    listen 127.0.0.1:{nginx_port};\n    location / {{ return 200 \"ok\"; }}\n  }}\n}}\n",
                    d = dir.join("nginx").display()
                );
                fs::write(dir.join("nginx/nginx.conf"), nginx_conf).map_err(|e| e.to_string())?;
                let mut cmd = Command::new("nginx");
                cmd.arg("-p").arg(dir.join("nginx")).arg("-c").arg(dir.join("nginx/nginx.conf"));
                let nginx = Process::spawn(&mut cmd, &dir.join("nginx/stderr.log"))
                    .map_err(|e| format!("nginx (apt-get install nginx-light; make bench does): {e}"))?;
                (nginx_port, Some(nginx))
            }
        };
        bootstrap(&repo, admin_port, &listeners, upstream, launch).write(&dir.join("envoy.json"));
        let mut envoy = match launch {
            Launch::Native => Command::new(repo.join(".venv/bin/envoy")),
            Launch::Callgrind => {
                let mut c = Command::new("valgrind");
                // V8 writes the machine code it generates, hence the self-modifying-code check.
                c.args(["--tool=callgrind", "--instr-atstart=no", "--smc-check=all-non-file"])
                    .arg(format!("--callgrind-out-file={}/callgrind.out.%p", dir.display()))
                    .arg(envoy_binary(&repo)?);
                c
            }
        };
        envoy.arg("-c").arg(dir.join("envoy.json")).args([
            "--concurrency",
            "1",
            "--use-dynamic-base-id",
            "-l",
            "warning",
        ]);
        let envoy =
            Process::spawn(&mut envoy, &dir.join("envoy.log")).map_err(|e| format!("envoy (make deps): {e}"))?;
        let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
        let bench = Bench { dir, envoy, _nginx: nginx, admin, variants: listeners, repo };
        wait_port(upstream, "the upstream")?;
        // Under callgrind Envoy starts some 20 times slower.
        if !admin::wait_ready(admin, "/ready", Duration::from_secs(if launch == Launch::Native { 60 } else { 300 })) {
            return Err(format!("envoy not ready; see {}", bench.dir.join("envoy.log").display()));
        }
        for (_, addr) in &bench.variants {
            wait_port(addr.port(), "envoy listener")?;
        }
        Ok(bench)
    }

    /// Envoy's CPU time so far, all threads, in microseconds.
    fn envoy_cpu_us(&self) -> Result<f64, String> {
        cpu_us(self.envoy.id())
    }

    pub fn envoy_pid(&self) -> u32 {
        self.envoy.id()
    }

    pub fn address(&self, v: Variant) -> Result<SocketAddr, String> {
        self.variants
            .iter()
            .find(|(x, _)| x.name == v.name)
            .map(|(_, a)| *a)
            .ok_or_else(|| format!("no listener {}", v.name))
    }

    /// Requests the listener completed, by Envoy's own counter.
    pub fn requests(&self, v: Variant) -> Result<f64, String> {
        let name = format!("http.{}.downstream_rq_total", v.name);
        let (_, body) =
            admin::get(self.admin, &format!("/stats?filter=^{}$", name.replace('.', "\\."))).ok_or("admin")?;
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| format!("no {name} in {body:?}"))
    }

    pub fn run(&self, v: Variant, load: &Load) -> Result<Sample, String> {
        let (cpu0, rq0) = (self.envoy_cpu_us()?, self.requests(v)?);
        let result = wrk::run(self.address(v)?, load, &self.dir)?;
        let (cpu1, rq1) = (self.envoy_cpu_us()?, self.requests(v)?);
        let requests = rq1 - rq0;
        if requests < 1.0 {
            return Err("no requests completed".into());
        }
        Ok(Sample {
            cpu_us_per_req: (cpu1 - cpu0) / requests,
            rps: result.rps,
            p50_us: result.p50_us,
            p99_us: result.p99_us,
        })
    }

    /// Envoy's resident set (kB, from `/proc`) and tcmalloc's allocated bytes (admin
    /// `/memory`). V8 maps Wasm linear memory and code itself, so only RSS sees those.
    pub fn memory(&self) -> Result<(u64, u64), String> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.envoy.id())).map_err(|e| e.to_string())?;
        let rss = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .ok_or("no VmRSS")?;
        let heap = admin::get(self.admin, "/memory")
            .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
            .and_then(|v| v["allocated"].as_str()?.parse().ok())
            .ok_or("no allocated in /memory")?;
        Ok((rss, heap))
    }

    /// Size of a Wasm file (a path from the repository root).
    pub fn wasm_size(&self, file: &str) -> u64 {
        fs::metadata(self.repo.join(file)).map_or(0, |m| m.len())
    }
}

/// A process's CPU time so far (user + system, all threads), in microseconds.
pub fn cpu_us(pid: u32) -> Result<f64, String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    let fields: Vec<&str> = stat[stat.rfind(')').ok_or("bad /proc stat")? + 2..].split(' ').collect();
    let ticks: f64 =
        fields[11].parse::<f64>().map_err(|e| e.to_string())? + fields[12].parse::<f64>().map_err(|e| e.to_string())?;
    // CLK_TCK is 100 on Linux.
    Ok(ticks * 10_000.0)
}

/// The bench's own filters (`make bench` builds them with the `bench-filters` profile).
pub const EMPTY_FILTER: &str = "target/wasm32-unknown-unknown/bench-filters/empty_filter.wasm";
const PROBE_FILTER: &str = "target/wasm32-unknown-unknown/bench-filters/probe_filter.wasm";

/// routemeter as `make wasm` ships it, or another build: `$BENCH_WASM` (a path from the
/// repository root, or absolute).
pub fn routemeter_file() -> String {
    std::env::var("BENCH_WASM").unwrap_or_else(|_| "target/routemeter.wasm".to_string())
}

/// The Envoy executable itself: `.venv/bin/envoy` is a Python launcher, and valgrind must
/// run the real binary to see its instructions.
fn envoy_binary(repo: &std::path::Path) -> Result<PathBuf, String> {
    let lib = repo.join(".venv/lib");
    fs::read_dir(&lib)
        .map_err(|e| format!("{}: {e} (make deps)", lib.display()))?
        .filter_map(Result::ok)
        .map(|python| python.path().join("site-packages/envoy/_bin/envoy"))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("no envoy binary under {}", lib.display()))
}

/// One Envoy: the shipped bootstrap's stats tags and listener, once per variant, all routing
/// to one upstream.
fn bootstrap(
    repo: &std::path::Path,
    admin: u16,
    listeners: &[(Variant, SocketAddr)],
    upstream: u16,
    launch: Launch,
) -> Bootstrap {
    let mut routemeter = demo_plugin_config(false);
    // Under callgrind every instruction of the process counts against the listener being
    // measured, a routemeter VM's periodic flush too (about 10 s of measurement per listener
    // at callgrind's speed). A minute between flushes keeps them out; what a flush costs is
    // priced separately (`make wasm-cost`, fuel per tick).
    if launch == Launch::Callgrind {
        routemeter["flush_interval_ms"] = 60_000.into();
    }
    let mut shipped = Bootstrap::shipped();
    let mut wasm =
        |name: &str, vm: &str, file: &str, config: &str| shipped.wasm_config(&repo.join(file), vm, name, config);
    let built: Vec<(&str, u16, Option<Value>)> = listeners
        .iter()
        .map(|(v, addr)| {
            let filter = match v.filter {
                Filter::None | Filter::RouteStats => None,
                // A Wasm filter entry first, made native below.
                Filter::Native | Filter::EmptyNative => {
                    Some(wasm(v.name, v.name, &routemeter_file(), &routemeter.to_string()))
                }
                Filter::Empty => Some(wasm(v.name, v.name, EMPTY_FILTER, "")),
                Filter::Routemeter => {
                    let mut config = wasm(v.name, v.name, &routemeter_file(), &routemeter.to_string());
                    // `$BENCH_CAPABILITIES` (comma-separated export and import names) restricts
                    // the VM to them with Envoy's capability_restriction_config: callbacks left
                    // out are skipped.
                    if let Ok(list) = std::env::var("BENCH_CAPABILITIES") {
                        let allowed: serde_json::Map<String, Value> = list
                            .split(',')
                            .map(|c| (c.trim().to_string(), Value::Object(Default::default())))
                            .collect();
                        config["capability_restriction_config"] =
                            serde_json::json!({ "allowed_capabilities": allowed });
                    }
                    Some(config)
                }
                Filter::Probe(plan) => Some(wasm(v.name, "probe", PROBE_FILTER, plan)),
            };
            (v.name, addr.port(), filter)
        })
        .collect();
    let mut b = Bootstrap::for_bench(admin, upstream, &built);
    for (filter, module) in [(Filter::Native, NATIVE_MODULE), (Filter::EmptyNative, EMPTY_MODULE)] {
        let names: Vec<&str> = listeners.iter().filter(|(v, _)| v.filter == filter).map(|(v, _)| v.name).collect();
        if !names.is_empty() {
            b.native_listeners(&repo.join(module), |name| names.contains(&name));
        }
    }
    for (v, _) in listeners.iter().filter(|(v, _)| v.filter == Filter::RouteStats) {
        b.route_stats(v.name);
    }
    b
}

/// The native build (`make native`; `make bench` builds it).
pub const NATIVE_MODULE: &str = "target/libroutemeter.so";
/// The native floor (`make bench` builds it).
pub const EMPTY_MODULE: &str = "target/bench-filters/libempty_module.so";
