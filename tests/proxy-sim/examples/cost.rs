//! Deterministic cost figures of the compiled filter (`make wasm-cost`): wasmtime fuel per
//! request for typical lifecycles, and the VM's linear memory over 100k requests on distinct
//! paths. Fuel counts executed wasm operations, so the figures do not depend on how busy the
//! machine is and can be compared across commits.

use proxy_sim::{Host, Stream, Vm, WasmHost, WasmVm};
use testkit::bootstrap::wasm_path;

/// The demo's plugin configuration as shipped in envoy/envoy.yaml (no OpenAPI fetch here).
fn config() -> String {
    testkit::bootstrap::demo_plugin_config(false).to_string()
}

/// One request of a lifecycle, numbered so paths can vary.
type Lifecycle<'a> = &'a dyn Fn(&WasmVm, u64);

const WARM_UP: u64 = 50;
const MEASURED: u64 = 1_000;

/// Mean fuel of `one` request after the series it touches exist.
fn fuel_per_request(vm: &WasmVm, one: Lifecycle) -> u64 {
    for i in 0..WARM_UP {
        one(vm, i);
    }
    let before = vm.fuel_consumed();
    for i in WARM_UP..WARM_UP + MEASURED {
        one(vm, i);
    }
    (vm.fuel_consumed() - before) / MEASURED
}

fn main() {
    let size = std::fs::metadata(wasm_path()).map(|m| m.len()).unwrap_or(0);
    println!("routemeter.wasm: {size} bytes ({})", wasm_path().display());
    println!("\nfuel per request (wasmtime fuel ~ wasm operations), mean of {MEASURED} after {WARM_UP} warm-up:");

    let cases: [(&str, Lifecycle); 4] = [
        ("GET known route (template), 200, 2 KB body", &|vm, i| {
            let mut s = vm.request("GET", &format!("/api/v1/status/{i}"));
            s.respond(200, 2_048);
            s.complete();
        }),
        ("GET unknown route with ids (heuristic), 404", &|vm, i| {
            let mut s =
                vm.request("GET", &format!("/api/v2/users/{i}/orders/5f0c2a3e-9b1d-4c7a-8e2f-0123456789ab?page=2"));
            s.respond(404, 22);
            s.complete();
        }),
        ("GET excluded path (/health)", &|vm, _| {
            let mut s = vm.request("GET", "/health");
            s.respond(200, 16);
            s.complete();
        }),
        ("POST 10 MB chunked upload, 160 x 64 KB chunks, 201", &|vm, _| {
            let mut s = vm.request("POST", "/api/v1/upload?filename=a.xlsx");
            for _ in 0..160 {
                s.send_body(65_536);
            }
            s.respond(201, 90);
            s.complete();
        }),
    ];
    for (name, one) in cases {
        let vm = WasmHost::new().vm(&config()).unwrap_or_else(|e| panic!("{e}"));
        println!("  {name:<52} {:>8}", fuel_per_request(&vm, one));
    }

    // The periodic tick (every flush_interval_ms, 1 s by default): counters flushed as deltas,
    // the latency window shared and the quantiles published (one VM: it holds the lease).
    println!("\nfuel per tick (one VM, three routes with traffic):");
    let host = WasmHost::new();
    let vm = host.vm(&config()).unwrap_or_else(|e| panic!("{e}"));
    let traffic = |n: u64| {
        for i in 0..n {
            for (method, path, status) in [
                ("GET", format!("/api/v1/status/{i}"), 200),
                ("POST", "/api/v1/upload?filename=a.xlsx".into(), 201),
                ("GET", format!("/api/v1/download/{i}"), 200),
            ] {
                let mut s = vm.request(method, &path);
                s.respond(status, 1_000);
                // Latencies spread over 0.25-0.85 ms, several HdrHistogram buckets.
                host.envoy().advance_ns(250_000 + (i % 7) * 100_000);
                s.complete();
            }
        }
    };
    let tick = || {
        host.envoy().advance_ms(1_000);
        let before = vm.fuel_consumed();
        host.envoy().settle();
        vm.fuel_consumed() - before
    };
    traffic(100);
    println!("  {:<52} {:>8}", "first tick (defines every series)", tick());
    traffic(100);
    println!("  {:<52} {:>8}", "tick after 300 requests", tick());
    println!("  {:<52} {:>8}", "tick with no request since the last", tick());

    handover_at_10k_series();

    println!("\nlinear memory over requests on distinct paths (max_routes 100):");
    let host = WasmHost::new();
    let vm = host.vm(&config()).unwrap_or_else(|e| panic!("{e}"));
    let checkpoints = [0u64, 100, 1_000, 10_000, 50_000, 100_000];
    let mut done = 0;
    for &at in &checkpoints {
        while done < at {
            let mut s = vm.request("GET", &format!("/tenants/t{done}x/items/{done}"));
            s.respond(200, 10);
            s.complete();
            done += 1;
        }
        println!("  after {at:>7} requests: {:>9} bytes", vm.memory_bytes());
    }
    // Series reach Envoy at the next flush.
    host.envoy().settle();
    println!(
        "  distinct route labels emitted: {} (the paths are one learned template)",
        host.envoy().label_values("http_requests_total", "route").len()
    );

    // The latency windows at the route cap: 100 routes, latencies from 100 us to 28 s (each
    // route's dense histogram grows to cover its slowest), over several whole windows.
    println!("\nlinear memory with a latency window on each of 100 routes (0.1 ms to 28 s):");
    let routes: Vec<String> = (0..100).map(|r| format!(r#"{{ "template": "/svc{r}/items/{{id}}" }}"#)).collect();
    let config = format!(r#"{{ "routes": [{}], "max_routes": 100 }}"#, routes.join(", "));
    let host = WasmHost::new();
    let vm = host.vm(&config).unwrap_or_else(|e| panic!("{e}"));
    println!("  {:<52} {:>9} bytes", "configured", vm.memory_bytes());
    // 2,000 latencies spread log-uniformly from 100 us to ~28 s (100 us x 1.0063^i), all
    // requests ending together: the slowest starts first, so the clock moves 28 s per round.
    let durations: Vec<u64> = (0..2_000).rev().map(|i| (100_000.0 * 1.0063f64.powi(i)) as u64).collect();
    for round in 0..6 {
        let mut open = Vec::new();
        for (i, d) in durations.iter().enumerate() {
            if i > 0 {
                host.envoy().advance_ns(durations[i - 1] - d);
            }
            open.push(vm.request("GET", &format!("/svc{}/items/{i}", i % 100)));
        }
        host.envoy().advance_ns(durations[durations.len() - 1]);
        for mut s in open {
            s.respond(200, 10);
            s.complete();
        }
        host.envoy().advance_ms(15_000);
        host.envoy().settle();
        println!(
            "  {:<52} {:>9} bytes",
            format!("after round {} (2,000 requests, 43 s)", round + 1),
            vm.memory_bytes()
        );
    }
}

/// The hand-over list at about 10,000 series (200 routes, each with its requests counter,
/// in-flight gauge and three exact histograms): what an idle tick of another VM costs, in fuel
/// and in bytes copied out of shared data, and what one new series costs it.
fn handover_at_10k_series() {
    let routes: Vec<String> = (0..200).map(|r| format!(r#"{{ "template": "/r{r}" }}"#)).collect();
    let config = format!(r#"{{ "routes": [{}], "latency_quantiles": {{ "quantiles": [] }} }}"#, routes.join(", "));
    let host = WasmHost::new();
    let first = host.vm(&config).unwrap_or_else(|e| panic!("{e}"));
    for r in 0..200 {
        let mut s = first.request("GET", &format!("/r{r}"));
        s.respond(200, 10);
        s.complete();
    }
    host.envoy().settle();
    let listed = host.envoy().host().stats().len();
    let second = host.vm(&config).unwrap_or_else(|e| panic!("{e}"));
    let envoy = host.envoy();
    let measure = |what: &str| {
        envoy.advance_ms(1_000);
        let (fuel, read) = (second.fuel_consumed(), envoy.host().calls().shared_bytes_read);
        second.tick();
        let copied = envoy.host().calls().shared_bytes_read - read;
        println!("  {what:<52} {:>8} fuel {copied:>8} bytes copied", second.fuel_consumed() - fuel);
    };
    println!("\nthe hand-over at {listed} series, another VM's tick:");
    measure("idle tick");
    let mut s = first.request("GET", "/r0");
    s.respond(404, 10);
    s.complete();
    first.tick();
    measure("tick after another VM listed one new series");
}
