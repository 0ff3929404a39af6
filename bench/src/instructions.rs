//! The deterministic half of `make bench`: instructions Envoy executes per request, counted
//! by callgrind. CPU time on a shared 2-core machine moves by several microseconds between
//! runs, which is as much as the differences the goal is about; an instruction count is the
//! same for the same work however busy the machine is. Instructions are not time (cache
//! misses and branch mispredictions are not in them), so both are reported.

use std::process::Command;

use testkit::client::{Connection, Request};

use crate::setup::{Bench, Variant};

/// `callgrind_control` is valgrind's remote control for a running callgrind. It exits 0 even
/// when it reached no callgrind, so a command that expects no answer must print "OK".
fn control(pid: u32, args: &[&str]) -> Result<String, String> {
    let out = Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .output()
        .map_err(|e| format!("callgrind_control (apt-get install valgrind; make bench does): {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("callgrind_control {args:?}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(text)
}

/// Switches instrumentation or zeroes the counters; fails unless callgrind confirmed.
fn command(pid: u32, args: &[&str]) -> Result<(), String> {
    let text = control(pid, args)?;
    if text.lines().any(|l| l.trim() == "OK.") {
        Ok(())
    } else {
        Err(format!("callgrind_control {args:?} did not reach callgrind: {text}"))
    }
}

/// Instructions counted since the last zeroing, all threads.
fn counted(pid: u32) -> Result<u64, String> {
    let text = control(pid, &["-e"])?;
    parse_counts(&text).ok_or_else(|| format!("no instruction counts in: {text}"))
}

/// `callgrind_control -e` prints a line per thread, `Th` and the thread id right-aligned in
/// two columns (`   Th 7  14,667,464`, `   Th12  1,000`), then the count. `None` when there
/// is no thread line or nothing was counted: a measurement of 0 would pass as the smallest.
fn parse_counts(text: &str) -> Option<u64> {
    let total: u64 = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("Th"))
        .filter_map(|rest| rest.split_whitespace().nth(1))
        .filter_map(|n| n.replace(',', "").parse::<u64>().ok())
        .sum();
    (total > 0).then_some(total)
}

/// A fixed sequence of requests, on one keep-alive connection unless `reconnect`.
pub struct Workload {
    pub name: &'static str,
    pub requests: usize,
    pub request: fn(usize) -> Request,
    /// A connection per request: nginx answers an upload before reading all of it, and the
    /// connection does not survive that.
    pub reconnect: bool,
}

/// Instructions per request for `v`: the smallest of `rounds` measurements. Envoy's timers
/// (stats flush every 5 s, and the like) add instructions to whichever round they fall in;
/// the smallest round is one they missed.
pub fn per_request(bench: &Bench, v: Variant, load: &Workload, rounds: usize) -> Result<f64, String> {
    let pid = bench.envoy_pid();
    let addr = bench.address(v)?;
    let send_all = |n: usize| -> Result<(), String> {
        let open = || Connection::open(addr).map_err(|e| format!("{}: {e}", v.name));
        let mut conn = open()?;
        for i in 0..n {
            if load.reconnect && i > 0 {
                conn = open()?;
            }
            conn.send(&(load.request)(i)).map_err(|e| format!("{} request {i}: {e}", v.name))?;
        }
        Ok(())
    };
    // Warm-up, not counted: metric definitions, V8's tier-up to optimised code.
    send_all(load.requests)?;
    let mut best = f64::INFINITY;
    for _ in 0..rounds {
        let before = bench.requests(v)?;
        command(pid, &["-i", "on"])?;
        command(pid, &["-z"])?;
        send_all(load.requests)?;
        let instructions = counted(pid)?;
        command(pid, &["-i", "off"])?;
        let done = bench.requests(v)? - before;
        if done < 1.0 {
            return Err(format!("{}: no requests completed", v.name));
        }
        best = best.min(instructions as f64 / done);
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::parse_counts;

    #[test]
    fn reads_callgrind_control_counts() {
        let text = "PID 17278: envoy -c envoy.yaml\n\n  Totals:        Ir \n   Th 1      18,502 \n   Th 2           0 \n   Th 7  14,667,464 \n   Th12       1,000 \n";
        assert_eq!(parse_counts(text), Some(18_502 + 14_667_464 + 1_000));
        assert_eq!(
            parse_counts("PID 1: envoy\n  No information available as instrumentation is switched off.\n"),
            None
        );
        assert_eq!(parse_counts("  Totals: Ir\n   Th 1  0\n"), None);
    }
}
