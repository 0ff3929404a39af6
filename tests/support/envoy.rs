//! A real Envoy with the routemeter filter in front of the demo service, for end-to-end
//! tests. Every instance gets its own ports (0, read back from the admin API), its own
//! shared-memory base id (`--use-dynamic-base-id`) and its own directory; it waits for
//! `/ready`, prints Envoy's log if the test fails, and always kills Envoy by pid on drop.
//!
//! The bootstrap is the shipped `envoy/envoy.yaml`, with only ports, the wasm path, the
//! stats flush interval and (optionally) the plugin configuration replaced, so the tests
//! exercise the configuration users run.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use routemeter_demo::admin::{self, admin_get};
use routemeter_demo::prom::Exposition;
use routemeter_demo::server::{self, RunningServer, ServeOptions};

static INSTANCE: AtomicUsize = AtomicUsize::new(0);

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Envoy binary: `$ENVOY` or the virtualenv `make deps` creates.
pub fn envoy_bin() -> PathBuf {
    let path = std::env::var_os("ENVOY").map(PathBuf::from).unwrap_or_else(|| repo_root().join(".venv/bin/envoy"));
    assert!(path.exists(), "no Envoy at {}: run `make deps` (make test does)", path.display());
    path
}

pub fn wasm_path() -> PathBuf {
    let path = proxy_sim::wasm::wasm_path();
    assert!(path.exists(), "no filter at {}: run `make wasm` (make test does)", path.display());
    path
}

pub struct StackOptions {
    pub demo: ServeOptions,
    pub concurrency: u32,
    /// Replaces the shipped plugin configuration (JSON) when set.
    pub plugin_config: Option<String>,
    /// Adds a route `/refused/` to a cluster whose port nobody listens on (local 503s).
    pub refused_route: bool,
    /// Adds a `dog_statsd` stats sink sending to this UDP address.
    pub dog_statsd: Option<SocketAddr>,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            demo: ServeOptions { listen: SocketAddr::from(([127, 0, 0, 1], 0)), ..ServeOptions::default() },
            concurrency: 1,
            plugin_config: None,
            refused_route: false,
            dog_statsd: None,
        }
    }
}

/// Demo service + Envoy.
pub struct Stack {
    pub demo: RunningServer,
    pub listener: SocketAddr,
    pub admin: SocketAddr,
    envoy: Child,
    dir: PathBuf,
}

impl Stack {
    pub fn start(opts: StackOptions) -> Stack {
        let demo = server::start(opts.demo).expect("demo service starts");
        let n = INSTANCE.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("routemeter-e2e-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        let mut bootstrap = bootstrap(demo.addr, opts.plugin_config.as_deref());
        if opts.refused_route {
            bootstrap = with_refused_route(bootstrap);
        }
        if let Some(addr) = opts.dog_statsd {
            bootstrap = format!(
                "stats_sinks:\n  - name: envoy.stat_sinks.dog_statsd\n    typed_config:\n      \"@type\": type.googleapis.com/envoy.config.metrics.v3.DogStatsdSink\n      address: {{ socket_address: {{ address: 127.0.0.1, port_value: {} }} }}\n{bootstrap}",
                addr.port()
            );
        }
        let config_path = dir.join("envoy.yaml");
        fs::write(&config_path, bootstrap).expect("write bootstrap");
        let admin_file = dir.join("admin.txt");
        let envoy = Command::new(envoy_bin())
            .arg("-c")
            .arg(&config_path)
            .arg("--use-dynamic-base-id")
            .arg("--concurrency")
            .arg(opts.concurrency.to_string())
            .arg("--admin-address-path")
            .arg(&admin_file)
            .arg("-l")
            .arg("info")
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // stderr, not --log-path: Envoy flushes a log file only every 10 s.
            .stderr(fs::File::create(dir.join("envoy.log")).expect("log file"))
            .spawn()
            .expect("spawn envoy");
        let unbound = SocketAddr::from(([0, 0, 0, 0], 0));
        let mut stack = Stack { demo, listener: unbound, admin: unbound, envoy, dir };
        stack.wait_ready(&admin_file);
        stack
    }

    fn wait_ready(&mut self, admin_file: &Path) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.envoy.try_wait() {
                panic!("envoy exited during start-up with {status}\n{}", self.logs());
            }
            if let Some(addr) = fs::read_to_string(admin_file).ok().and_then(|s| s.trim().parse().ok()) {
                self.admin = addr;
                if admin_get(addr, "/ready").is_some_and(|(code, _)| code == 200) {
                    if let Some(listener) = self.read_listener() {
                        self.listener = listener;
                        return;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("envoy not ready within 60 s\n{}", self.logs());
    }

    fn read_listener(&self) -> Option<SocketAddr> {
        let (_, body) = admin_get(self.admin, "/listeners?format=json")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let sock = &v["listener_statuses"][0]["local_address"]["socket_address"];
        let port = sock["port_value"].as_u64()?;
        (port != 0).then(|| SocketAddr::from(([127, 0, 0, 1], port as u16)))
    }

    /// The parsed `/stats/prometheus` page (the parse itself checks the format).
    pub fn scrape(&self) -> Exposition {
        admin::scrape(self.admin).unwrap_or_else(|e| panic!("scrape failed: {e}"))
    }

    /// Scrapes until `ready` holds (histograms change only at a stats flush) and returns that
    /// page; after 15 s returns the last page anyway, so the caller's exact assertions show
    /// what differs.
    pub fn scrape_until(&self, what: &str, ready: impl Fn(&Exposition) -> bool) -> Exposition {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let page = self.scrape();
            if ready(&page) {
                return page;
            }
            if Instant::now() > deadline {
                eprintln!("waited 15 s for {what}; comparing the last page");
                return page;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn logs(&self) -> String {
        let read = |f: &str| fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        let log = read("envoy.log");
        let tail: Vec<&str> = log.lines().rev().take(200).collect::<Vec<_>>().into_iter().rev().collect();
        format!("--- envoy log (last 200 lines) ---\n{}", tail.join("\n"))
    }

    /// Envoy's log so far (for tests that check what the filter logged).
    pub fn envoy_log(&self) -> String {
        fs::read_to_string(self.dir.join("envoy.log")).unwrap_or_default()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        let _ = self.envoy.kill();
        let _ = self.envoy.wait();
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Adds `/refused/` -> a cluster on a port that was free a moment ago and is closed now.
fn with_refused_route(y: String) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let catch_all = "                        - match: { prefix: \"/\" }";
    assert!(y.contains(catch_all), "envoy.yaml routes changed");
    let y = y.replacen(
        catch_all,
        &format!("                        - match: {{ prefix: \"/refused/\" }}\n                          route: {{ cluster: refused }}\n{catch_all}"),
        1,
    );
    format!(
        "{y}    - name: refused\n      type: STATIC\n      connect_timeout: 1s\n      load_assignment:\n        cluster_name: refused\n        endpoints:\n          - lb_endpoints:\n              - endpoint:\n                  address:\n                    socket_address: {{ address: 127.0.0.1, port_value: {port} }}\n"
    )
}

/// The shipped bootstrap, adapted to this instance.
pub fn bootstrap(demo: SocketAddr, plugin_config: Option<&str>) -> String {
    let shipped = fs::read_to_string(repo_root().join("envoy/envoy.yaml")).expect("read envoy/envoy.yaml");
    let replace = |text: String, from: &str, to: &str| {
        assert!(text.contains(from), "envoy/envoy.yaml no longer contains {from:?}");
        text.replace(from, to)
    };
    let mut y = shipped;
    y = replace(y, "port_value: 9901", "port_value: 0");
    y = replace(y, "port_value: 10000", "port_value: 0");
    y = replace(y, "port_value: 8000", &format!("port_value: {}", demo.port()));
    y = replace(
        y,
        "filename: target/routemeter.wasm",
        &format!("filename: {}", wasm_path().display()),
    );
    if let Some(json) = plugin_config {
        let start = y.find("value: |").expect("plugin configuration block");
        let end = y[start..].find("- name: envoy.filters.http.router").map(|e| start + e).expect("router filter");
        let indent = " ".repeat(28);
        let block: String = json.lines().map(|l| format!("{indent}{l}\n")).collect();
        y = format!("{}value: |\n{block}{}{}", &y[..start], " ".repeat(18), &y[end..]);
    }
    // Histograms reach /stats/prometheus only at a flush; flush often so tests wait little.
    format!("stats_flush_interval: 0.2s\n{y}")
}
