//! A real Envoy with the routemeter filter in front of the demo service, for end-to-end
//! tests. Every instance gets its own ports (0, read back from the admin API), its own
//! shared-memory base id (`--use-dynamic-base-id`) and its own directory; it waits for
//! `/ready`, prints Envoy's log if the test fails, and always kills Envoy on drop. The
//! bootstrap is the shipped one ([`Bootstrap::for_test`]).

use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use routemeter_demo::server::{self, RunningServer, ServeOptions};

use crate::admin;
use crate::bootstrap::{
    demo_plugin_config, envoy_bin, native_path, repo_root, wasm_path, write_ecds_resource, Bootstrap,
};
use crate::process::{free_ports, wait_until, Proc};
use crate::prom::Exposition;

static INSTANCE: AtomicUsize = AtomicUsize::new(0);

pub struct StackOptions {
    pub demo: ServeOptions,
    pub concurrency: u32,
    /// Replaces the shipped plugin configuration (JSON) when set.
    pub plugin_config: Option<String>,
    /// Adds a route `/refused/` to a cluster whose port nobody listens on (local 503s).
    pub refused_route: bool,
    /// Adds a `dog_statsd` stats sink sending to this UDP address.
    pub dog_statsd: Option<SocketAddr>,
    /// The ECDS bootstrap (`envoy/envoy-ecds.yaml`); [`Stack::reconfigure`] sends updates.
    pub ecds: bool,
    /// The module to start with (the shipped one when `None`): ECDS, or the native build.
    pub module: Option<PathBuf>,
    /// ECDS only: the failure policy of every resource sent (the shipped one when `None`).
    pub failure_policy: Option<&'static str>,
    /// Several plugins in one VM: a listener per `(plugin name, configuration)`
    /// ([`Stack::listeners`]), instead of the shipped one.
    pub plugins: Vec<(&'static str, String)>,
    /// Label names (attribute labels, a profile's) to add `stats_tags` for.
    pub extra_tags: Vec<String>,
    /// Which build of the filter Envoy runs.
    pub build: Build,
}

/// The filter's two builds: the proxy-wasm module and the native Envoy dynamic module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Build {
    #[default]
    Wasm,
    Native,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            demo: ServeOptions { listen: SocketAddr::from(([127, 0, 0, 1], 0)), ..ServeOptions::default() },
            concurrency: 1,
            plugin_config: None,
            refused_route: false,
            dog_statsd: None,
            ecds: false,
            module: None,
            failure_policy: None,
            plugins: Vec::new(),
            extra_tags: Vec::new(),
            build: Build::Wasm,
        }
    }
}

/// Demo service + Envoy. Envoy is declared first: it goes before its upstream.
pub struct Stack {
    envoy: Proc,
    pub demo: RunningServer,
    pub listener: SocketAddr,
    /// Every listener, in the order of [`StackOptions::plugins`].
    pub listeners: Vec<SocketAddr>,
    pub admin: SocketAddr,
    dir: PathBuf,
    failure_policy: Option<&'static str>,
}

impl Stack {
    pub fn start(opts: StackOptions) -> Stack {
        let demo = server::start(opts.demo).expect("demo service starts");
        let n = INSTANCE.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("routemeter-e2e-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        let mut bootstrap = if opts.ecds {
            let config = opts.plugin_config.clone().unwrap_or_else(|| demo_plugin_config(true).to_string());
            let module = opts.module.clone().unwrap_or_else(|| match opts.build {
                Build::Wasm => wasm_path(),
                Build::Native => native_path(),
            });
            write_ecds_resource(&dir.join("ecds"), &module, &config, opts.failure_policy);
            Bootstrap::for_test_ecds(demo.addr, &dir.join("ecds"))
        } else {
            Bootstrap::for_test(demo.addr)
        };
        if let Some(json) = opts.plugin_config.as_ref().filter(|_| !opts.ecds) {
            bootstrap.set_plugin_config(json);
        }
        if !opts.plugins.is_empty() {
            let plugins: Vec<(&str, &str)> = opts.plugins.iter().map(|(n, c)| (*n, c.as_str())).collect();
            bootstrap.set_plugins(&plugins);
        }
        for name in &opts.extra_tags {
            bootstrap.add_stats_tag(name);
        }
        if opts.refused_route {
            bootstrap.add_refused_route(free_ports(1).expect("free port")[0]);
        }
        if let Some(addr) = opts.dog_statsd {
            bootstrap.add_dog_statsd(addr);
        }
        if opts.build == Build::Native {
            bootstrap.to_native(&opts.module.clone().unwrap_or_else(native_path));
        }
        bootstrap.write(&dir.join("envoy.json"));
        let admin_file = dir.join("admin.txt");
        let mut cmd = Command::new(envoy_bin());
        cmd.arg("-c").arg(dir.join("envoy.json"));
        cmd.args(["--use-dynamic-base-id", "--concurrency", &opts.concurrency.to_string(), "-l", "info"]);
        cmd.arg("--admin-address-path").arg(&admin_file).current_dir(repo_root());
        // stderr, not --log-path: Envoy flushes a log file only every 10 s.
        let envoy = Proc::spawn(&mut cmd, &dir.join("envoy.log")).expect("spawn envoy");
        let unbound = SocketAddr::from(([0, 0, 0, 0], 0));
        let mut stack = Stack {
            envoy,
            demo,
            listener: unbound,
            listeners: Vec::new(),
            admin: unbound,
            dir,
            failure_policy: opts.failure_policy,
        };
        let ready = wait_until(Duration::from_secs(60), || {
            if let Some(status) = stack.envoy.exited() {
                panic!("envoy exited during start-up with {status}\n{}", stack.logs());
            }
            let Some(admin) = fs::read_to_string(&admin_file).ok().and_then(|s| s.trim().parse().ok()) else {
                return false;
            };
            stack.admin = admin;
            let listeners =
                admin::get(admin, "/ready").filter(|(code, _)| *code == 200).and_then(|_| stack.read_listeners());
            let Some(listeners) = listeners else { return false };
            (stack.listener, stack.listeners) = (listeners[0], listeners);
            true
        });
        assert!(ready, "envoy not ready within 60 s\n{}", stack.logs());
        stack
    }

    /// Every listener's bound address, once all are bound.
    fn read_listeners(&self) -> Option<Vec<SocketAddr>> {
        let (_, body) = admin::get(self.admin, "/listeners?format=json")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let statuses = v["listener_statuses"].as_array().filter(|s| !s.is_empty())?;
        let port =
            |s: &serde_json::Value| s["local_address"]["socket_address"]["port_value"].as_u64().filter(|p| *p != 0);
        statuses.iter().map(|s| port(s).map(|p| SocketAddr::from(([127, 0, 0, 1], p as u16)))).collect()
    }

    /// Envoy's resident memory (kB, `/proc`) and heap (bytes, admin `/memory`).
    pub fn envoy_memory(&self) -> (u64, u64) {
        let status = fs::read_to_string(format!("/proc/{}/status", self.envoy.id())).unwrap_or_default();
        let rss = status.lines().find_map(|l| l.strip_prefix("VmRSS:")?.split_whitespace().next()?.parse().ok());
        let heap = admin::get(self.admin, "/memory")
            .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
            .and_then(|v| v["allocated"].as_str()?.parse().ok());
        (rss.unwrap_or(0), heap.unwrap_or(0))
    }

    /// The parsed `/stats/prometheus` page (the parse itself checks the format).
    pub fn scrape(&self) -> Exposition {
        admin::scrape(self.admin).unwrap_or_else(|e| panic!("scrape failed: {e}"))
    }

    /// Scrapes until `ready` holds (series change only at a flush) and returns that page;
    /// after 15 s returns the last page anyway, so the caller's exact assertions show what
    /// differs.
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

    /// An ECDS update (an `ecds` stack only): this module and plugin configuration.
    pub fn reconfigure(&self, module: &std::path::Path, plugin_config: &str) {
        write_ecds_resource(&self.dir.join("ecds"), module, plugin_config, self.failure_policy);
    }

    pub fn logs(&self) -> String {
        self.envoy.log_tail(200)
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
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}
