//! Service level objectives per route, from the `slos` list of the plugin configuration. The
//! filter needs only their latency thresholds (each becomes a bound of the duration
//! histogram, so good events are counted exactly, not interpolated); `routemeter slo` turns
//! the whole spec into recording rules, burn-rate alerts and a dashboard.

use serde::Deserialize;

use crate::config_error::ConfigError;
use crate::transfer::StatusMatch;

pub const DEFAULT_WINDOW_DAYS: u64 = 30;
/// The longest alert window is 3 days (ticket, slow burn); a period must hold it twice over.
const WINDOW_DAYS: std::ops::RangeInclusive<u64> = 7..=90;
const MAX_THRESHOLD_MS: u64 = 3_600_000;
pub const MAX_SLOS: usize = 50;

/// One objective, as written. Availability unless `latency_ms` is given.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlo {
    #[serde(default)]
    pub name: Option<String>,
    /// A route label; absent: every route, each on its own.
    #[serde(default)]
    pub route: Option<String>,
    /// Percent of events that must be good, e.g. 99.9.
    pub objective: f64,
    /// Good events finish within this many milliseconds.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Statuses of bad events (`"5xx"`, `"503"`, `"0"`: no response); default 5xx and 0.
    #[serde(default)]
    pub bad: Option<Vec<String>>,
    #[serde(default = "default_window_days")]
    pub window_days: u64,
}

fn default_window_days() -> u64 {
    DEFAULT_WINDOW_DAYS
}

/// One objective over a rolling window.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// Unique, `[a-z0-9-]`: rule groups and the `sloth_slo` label are named after it.
    pub name: String,
    /// The route label it covers; `None`: every route, each on its own.
    pub route: Option<String>,
    /// The fraction of events that must be good, e.g. 0.999.
    pub objective: f64,
    pub window_days: u64,
    pub sli: Sli,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sli {
    /// Bad events: requests whose status matches (by default 5xx and `0`, no response).
    Availability { bad: Vec<StatusMatch> },
    /// Bad events: requests slower than this many milliseconds.
    Latency { threshold_ms: u64 },
}

impl Slo {
    /// The error budget: the fraction of events that may be bad.
    pub fn budget(&self) -> f64 {
        1.0 - self.objective
    }
}

/// `/api/v1/status/{job_id}` -> `api-v1-status-job-id`.
fn slug(route: &str) -> String {
    let mut out = String::new();
    for c in route.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// Step two for `slos`: values checked, names given and unique.
pub fn validate(raw: Vec<RawSlo>) -> Result<Vec<Slo>, ConfigError> {
    if raw.len() > MAX_SLOS {
        return Err(ConfigError::new("slos", format!("at most {MAX_SLOS} objectives, got {}", raw.len())));
    }
    let mut slos: Vec<Slo> = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let field = |f: &str| format!("slos[{i}].{f}");
        if !(r.objective.is_finite() && r.objective > 0.0 && r.objective < 100.0) {
            return Err(ConfigError::new(
                field("objective"),
                format!("must be a percentage between 0 and 100, got {}", r.objective),
            ));
        }
        if !WINDOW_DAYS.contains(&r.window_days) {
            let (lo, hi) = (WINDOW_DAYS.start(), WINDOW_DAYS.end());
            return Err(ConfigError::new(
                field("window_days"),
                format!("must be between {lo} and {hi}, got {}", r.window_days),
            ));
        }
        if let Some(route) = &r.route {
            // Route labels are printable; quotes and backslashes would need escaping in PromQL.
            let printable = |b: u8| b.is_ascii_graphic() && b != b'"' && b != b'\\';
            let safe = route.starts_with('/') && route.len() <= 256 && route.bytes().all(printable);
            if !safe {
                return Err(ConfigError::new(
                    field("route"),
                    format!("{route:?} is not a route label (a template such as /api/v1/upload)"),
                ));
            }
        }
        let sli = match (r.latency_ms, r.bad) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    field("bad"),
                    "a latency objective has no bad statuses (bad events are slow ones)",
                ))
            }
            (Some(ms), None) if !(1..=MAX_THRESHOLD_MS).contains(&ms) => {
                return Err(ConfigError::new(
                    field("latency_ms"),
                    format!("must be between 1 and {MAX_THRESHOLD_MS}, got {ms}"),
                ))
            }
            (Some(ms), None) => Sli::Latency { threshold_ms: ms },
            (None, None) => Sli::Availability { bad: vec![StatusMatch::Class(5), StatusMatch::Code(0)] },
            (None, Some(list)) if list.is_empty() => {
                return Err(ConfigError::new(field("bad"), "must name at least one status"))
            }
            (None, Some(list)) => {
                let parse = |(j, s): (usize, &String)| {
                    StatusMatch::parse(s).ok_or_else(|| {
                        let why =
                            format!("expected a status (\"503\"), a class (\"5xx\") or \"0\" (no response), got {s:?}");
                        ConfigError::new(format!("slos[{i}].bad[{j}]"), why)
                    })
                };
                Sli::Availability { bad: list.iter().enumerate().map(parse).collect::<Result<_, _>>()? }
            }
        };
        let kind = match sli {
            Sli::Availability { .. } => "availability".to_string(),
            Sli::Latency { threshold_ms } => format!("latency-{threshold_ms}ms"),
        };
        let name = match (r.name, &r.route) {
            (Some(name), _) => name,
            (None, Some(route)) if !slug(route).is_empty() => format!("{}-{kind}", slug(route)),
            (None, _) => kind,
        };
        let well_formed = name.len() <= 64
            && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !well_formed {
            return Err(ConfigError::new(
                field("name"),
                format!("{name:?} must be lower-case letters, digits and '-' (64 at most)"),
            ));
        }
        if let Some(j) = slos.iter().position(|s| s.name == name) {
            return Err(ConfigError::new(
                field("name"),
                format!("{name:?} is already the name of slos[{j}]; give each objective its own"),
            ));
        }
        slos.push(Slo { name, route: r.route, objective: r.objective / 100.0, window_days: r.window_days, sli });
    }
    Ok(slos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Vec<RawSlo> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn names_defaults_and_statuses() {
        let slos = validate(raw(r#"[{"route": "/api/v1/upload", "objective": 99.5},
                {"route": "/api/v1/status/{job_id}", "objective": 99, "latency_ms": 250},
                {"objective": 99.9, "bad": ["5xx", "429"], "window_days": 28, "name": "all-routes"}]"#))
        .unwrap();
        let names: Vec<&str> = slos.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["api-v1-upload-availability", "api-v1-status-job-id-latency-250ms", "all-routes"]);
        assert_eq!(slos[0].sli, Sli::Availability { bad: vec![StatusMatch::Class(5), StatusMatch::Code(0)] });
        assert_eq!(slos[1].sli, Sli::Latency { threshold_ms: 250 });
        assert_eq!(slos[2].sli, Sli::Availability { bad: vec![StatusMatch::Class(5), StatusMatch::Code(429)] });
        assert_eq!((slos[0].objective, slos[0].window_days, slos[2].window_days), (0.995, 30, 28));
        assert!((slos[2].budget() - 0.001).abs() < 1e-12);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"[{"objective": 100}]"#, "slos[0].objective: must be a percentage between 0 and 100, got 100"),
            (r#"[{"objective": 99, "window_days": 3}]"#, "slos[0].window_days: must be between 7 and 90, got 3"),
            (
                r#"[{"objective": 99, "route": "api"}]"#,
                "slos[0].route: \"api\" is not a route label (a template such as /api/v1/upload)",
            ),
            (
                r#"[{"objective": 99, "latency_ms": 5, "bad": ["5xx"]}]"#,
                "slos[0].bad: a latency objective has no bad statuses (bad events are slow ones)",
            ),
            (r#"[{"objective": 99, "latency_ms": 0}]"#, "slos[0].latency_ms: must be between 1 and 3600000, got 0"),
            (
                r#"[{"objective": 99, "bad": ["5xx", "oops"]}]"#,
                "slos[0].bad[1]: expected a status (\"503\"), a class (\"5xx\") or \"0\" (no response), got \"oops\"",
            ),
            (
                r#"[{"objective": 99}, {"objective": 98}]"#,
                "slos[1].name: \"availability\" is already the name of slos[0]; give each objective its own",
            ),
            (
                r#"[{"objective": 99, "name": "Upload SLO"}]"#,
                "slos[0].name: \"Upload SLO\" must be lower-case letters, digits and '-' (64 at most)",
            ),
        ];
        for (json, want) in cases {
            assert_eq!(validate(raw(json)).unwrap_err().to_string(), want, "{json}");
        }
    }
}
