//! The per-route summary `make run` prints, read back from Envoy's /stats/prometheus: what a
//! dashboard would show first (traffic, error rate, latency, upload sizes and outcomes).

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::prom::Exposition;

#[derive(Default)]
struct RouteRow {
    requests: f64,
    client_errors: f64,
    server_errors: f64,
    aborted: f64,
    duration_sum_ms: f64,
    duration_count: f64,
}

/// Renders the summary of an exposition page.
pub fn render(page: &Exposition) -> String {
    let mut rows: BTreeMap<String, RouteRow> = BTreeMap::new();
    for s in page.series("http_requests_total") {
        let row = rows.entry(s.labels.get("route").cloned().unwrap_or_default()).or_default();
        row.requests += s.value;
        match s.labels.get("status").map(String::as_str).unwrap_or("") {
            "0" => row.aborted += s.value,
            st if st.starts_with('4') => row.client_errors += s.value,
            st if st.starts_with('5') => row.server_errors += s.value,
            _ => {}
        }
    }
    for (suffix, is_sum) in [("_sum", true), ("_count", false)] {
        for s in page.series(&format!("http_request_duration_milliseconds{suffix}")) {
            let row = rows.entry(s.labels.get("route").cloned().unwrap_or_default()).or_default();
            if is_sum {
                row.duration_sum_ms += s.value;
            } else {
                row.duration_count += s.value;
            }
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<36} {:>8} {:>6} {:>6} {:>8} {:>11} {:>12}",
        "ROUTE", "REQUESTS", "4XX", "5XX", "ABORTED", "ERROR RATE", "MEAN LATENCY"
    );
    for (route, r) in &rows {
        let errors = r.server_errors + r.aborted;
        let rate = if r.requests > 0.0 { 100.0 * errors / r.requests } else { 0.0 };
        let mean = if r.duration_count > 0.0 { r.duration_sum_ms / r.duration_count } else { 0.0 };
        let _ = writeln!(
            out,
            "{route:<36} {:>8} {:>6} {:>6} {:>8} {:>10.1}% {:>10.1}ms",
            r.requests, r.client_errors, r.server_errors, r.aborted, rate, mean
        );
    }
    let _ = writeln!(out, "(error rate = (5xx + aborted) / requests; /health is excluded by the shipped config)");
    for (metric, title) in [("uploads_total", "UPLOADS"), ("downloads_total", "DOWNLOADS")] {
        let mut by_route: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
        for s in page.series(metric) {
            by_route
                .entry(s.labels.get("route").cloned().unwrap_or_default())
                .or_default()
                .push((s.labels.get("status").cloned().unwrap_or_default(), s.value));
        }
        for (route, outcomes) in by_route {
            let parts: Vec<String> = outcomes.iter().map(|(o, n)| format!("{o}={n}")).collect();
            let _ = writeln!(out, "\n{title} {route}: {}", parts.join("  "));
            if metric == "uploads_total" {
                if let Some(h) = page.histogram("upload_file_size_bytes", &[("route", &route)]) {
                    let mean = if h.count > 0 { h.sum / h.count as f64 } else { 0.0 };
                    let _ = writeln!(
                        out,
                        "  upload sizes: {} uploads, ~{:.0} bytes in all, mean ~{mean:.0} bytes",
                        h.count, h.sum
                    );
                    let mut previous = 0;
                    for (le, cumulative) in &h.buckets {
                        let n = cumulative - previous;
                        previous = *cumulative;
                        if n > 0 {
                            let _ = writeln!(out, "    <= {:>12}: {n}", human_bytes(*le));
                        }
                    }
                }
            }
        }
    }
    out
}

fn human_bytes(v: f64) -> String {
    if v.is_infinite() {
        "+Inf".into()
    } else if v >= 1e6 {
        format!("{} MB", v / 1e6)
    } else if v >= 1e3 {
        format!("{} KB", v / 1e3)
    } else {
        format!("{v} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rows_and_upload_sizes() {
        let page = Exposition::parse(
            "http_requests_total{method=\"POST\",route=\"/u\",status=\"201\"} 3\n\
             http_requests_total{method=\"POST\",route=\"/u\",status=\"413\"} 1\n\
             http_requests_total{method=\"GET\",route=\"/s\",status=\"500\"} 1\n\
             http_requests_total{method=\"GET\",route=\"/s\",status=\"0\"} 1\n\
             uploads_total{route=\"/u\",status=\"success\"} 3\n\
             upload_file_size_bytes_bucket{route=\"/u\",le=\"1000\"} 1\n\
             upload_file_size_bytes_bucket{route=\"/u\",le=\"10000\"} 3\n\
             upload_file_size_bytes_bucket{route=\"/u\",le=\"+Inf\"} 3\n\
             upload_file_size_bytes_sum{route=\"/u\"} 9000\n\
             upload_file_size_bytes_count{route=\"/u\"} 3\n",
        )
        .unwrap();
        let text = render(&page);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1],
            "/s                                          2      0      1        1      100.0%        0.0ms"
        );
        assert_eq!(
            lines[2],
            "/u                                          4      1      0        0        0.0%        0.0ms"
        );
        assert!(text.contains("UPLOADS /u: success=3\n  upload sizes: 3 uploads, ~9000 bytes in all, mean ~3000 bytes\n    <=         1 KB: 1\n    <=        10 KB: 2\n"), "{text}");
    }
}
