//! Running wrk (Debian's `wrk`) and reading its report: requests/s and latency percentiles.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

pub struct Load {
    pub path: &'static str,
    pub script: Option<&'static str>,
    pub seconds: u64,
    pub connections: u64,
}

pub struct WrkResult {
    /// Responses completed (`N requests in ...`).
    pub requests: f64,
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

pub fn run(target: SocketAddr, load: &Load, dir: &Path) -> Result<WrkResult, String> {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", "--latency"]).arg(format!("-c{}", load.connections)).arg(format!("-d{}s", load.seconds));
    if let Some(script) = load.script {
        let file = dir.join(format!("wrk-{:x}.lua", script.len()));
        fs::write(&file, script).map_err(|e| e.to_string())?;
        cmd.arg("-s").arg(file);
    }
    cmd.arg(format!("http://{target}{}", load.path));
    let out = cmd.output().map_err(|e| format!("wrk (apt-get install wrk; make bench does): {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr)));
    }
    parse(&text).ok_or_else(|| format!("cannot read wrk output:\n{text}"))
}

/// Reads `Requests/sec:` and the 50 % / 99 % lines of `--latency`.
fn parse(text: &str) -> Option<WrkResult> {
    let rps = text.lines().find_map(|l| l.trim().strip_prefix("Requests/sec:"))?.trim().parse().ok()?;
    let percentile = |p: &str| {
        text.lines().find_map(|l| {
            let mut it = l.split_whitespace();
            (it.next() == Some(p)).then(|| it.next()).flatten().and_then(duration_us)
        })
    };
    let requests =
        text.lines().find_map(|l| l.trim().split_once(" requests in ")).and_then(|(n, _)| n.trim().parse().ok())?;
    Some(WrkResult { requests, rps, p50_us: percentile("50%")?, p99_us: percentile("99%")? })
}

fn duration_us(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let value: f64 = s[..split].parse().ok()?;
    Some(match &s[split..] {
        "us" => value,
        "ms" => value * 1e3,
        "s" => value * 1e6,
        "m" => value * 60e6,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_wrk_report() {
        let text = "Running 5s test @ http://127.0.0.1:1/\n  1 threads and 8 connections\n  Latency Distribution\n     50%  250.00us\n     75%  300.00us\n     90%  1.10ms\n     99%    2.50ms\n  60000 requests in 5.00s, 7.00MB read\nRequests/sec:  12000.50\nTransfer/sec:      1.40MB\n";
        let r = parse(text).unwrap();
        assert_eq!((r.requests, r.rps, r.p50_us, r.p99_us), (60000.0, 12000.5, 250.0, 2500.0));
        assert_eq!(duration_us("1.5s"), Some(1.5e6));
        assert_eq!(duration_us("abc"), None);
    }
}
