//! `routemeter routes learned`: freezes the route labels a fleet learned into configuration
//! templates. Prometheus already holds every proxy's labels; this reads them back, keeps the
//! ones with traffic, drops the early guesses that learning later replaced, and writes the
//! rest as `routes` (most specific first), to be reviewed and delivered (ECDS, Istio's
//! `WasmPlugin`): every proxy then gives the same labels from the first request on.
//!
//! A guess is a label that another label generalises (`/repos/torvalds/{id}` under
//! `/repos/{id}/{id}`) and that no longer gets requests: learning converted its position,
//! so its series stopped. A static word next to a parameter (`/gists/public` beside
//! `/gists/{id}`) keeps getting requests, so it stays.

use routemeter::route::Template;
use serde_json::Value;

/// A route label as Prometheus has it: requests over the whole window, and recently.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub label: String,
    pub total: f64,
    pub recent: f64,
}

/// The templates to freeze, most specific first.
pub fn freeze(observed: &[Observed]) -> Vec<Template> {
    let candidates: Vec<(&Observed, Vec<&str>)> = observed
        .iter()
        .filter(|o| o.total > 0.0 && o.label != "__other__" && Template::parse(&o.label).is_ok())
        .map(|o| (o, segments(&o.label)))
        .collect();
    let replaced = |(o, segs): &(&Observed, Vec<&str>)| {
        o.recent <= 0.0 && candidates.iter().any(|(t, general)| t.label != o.label && generalises(general, segs))
    };
    let mut kept: Vec<Template> =
        candidates.iter().filter(|c| !replaced(c)).filter_map(|(o, _)| Template::parse(&o.label).ok()).collect();
    kept.sort_by(|a, b| a.specificity().cmp(&b.specificity()).then_with(|| a.text().cmp(b.text())));
    kept
}

fn segments(label: &str) -> Vec<&str> {
    label.split('/').skip(1).collect()
}

/// `general` has a learned parameter wherever `specific` has a word instead, and is the same
/// elsewhere (`/a/{id}` generalises `/a/x`, not `/a/{org}`: that is another way of naming it).
fn generalises(general: &[&str], specific: &[&str]) -> bool {
    let param = |s: &str| s.starts_with('{') && s.ends_with('}');
    general.len() == specific.len()
        && general.iter().zip(specific).all(|(g, s)| g == s || (*g == "{id}" && !param(s)))
        && general.iter().zip(specific).any(|(g, s)| g != s)
}

/// The route labels of `metric` (by `label`) with their increase over `since` and over
/// `recent`, from the Prometheus at `url`.
pub fn observe(
    url: &str,
    (metric, label): (&str, &str),
    (since, recent): (&str, &str),
) -> Result<Vec<Observed>, String> {
    let name = |s: &str| {
        let mut chars = s.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !name(metric) || !name(label) {
        return Err(format!("--metric {metric:?} and --label {label:?} must be Prometheus names"));
    }
    let by_label = |window: &str| -> Result<Vec<(String, f64)>, String> {
        let promql = format!("sum by ({label}) (increase({metric}[{window}]))");
        let endpoint = format!("{}/api/v1/query", url.trim_end_matches('/'));
        // Prometheus explains a refused query in the body of its 400 or 422.
        let response = match ureq::get(&endpoint).query("query", &promql).call() {
            Ok(response) => response,
            Err(ureq::Error::Status(code, response)) => {
                let why = response.into_string().unwrap_or_default();
                return Err(format!("{endpoint}: {promql}: {code}: {why}"));
            }
            Err(e) => return Err(format!("{endpoint}: {e} (http:// only)")),
        };
        let text = response.into_string().map_err(|e| format!("{endpoint}: {e}"))?;
        let body: Value = serde_json::from_str(&text).map_err(|e| format!("{endpoint}: {e}"))?;
        if body["status"] != "success" {
            return Err(format!("{endpoint}: {promql}: {}", body["error"]));
        }
        let results = body["data"]["result"].as_array().cloned().unwrap_or_default();
        Ok(results
            .iter()
            .filter_map(|r| {
                let name = r["metric"][label].as_str()?.to_string();
                let value = r["value"][1].as_str()?.parse().ok()?;
                Some((name, value))
            })
            .collect())
    };
    let recent = by_label(recent)?;
    let total = by_label(since)?;
    if total.is_empty() {
        return Err(format!("no {metric} series with a {label} label in the last {since}"));
    }
    Ok(total
        .into_iter()
        .map(|(label, total)| {
            let recent = recent.iter().find(|(l, _)| *l == label).map_or(0.0, |(_, v)| *v);
            Observed { label, total, recent }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(label: &str, total: f64, recent: f64) -> Observed {
        Observed { label: label.into(), total, recent }
    }

    #[test]
    fn guesses_merge_into_what_replaced_them_and_static_words_stay() {
        let observed = [
            seen("/repos/{id}/{id}/issues", 900.0, 40.0),
            // Early guesses, silent since their position was converted.
            seen("/repos/torvalds/{id}/issues", 3.0, 0.0),
            seen("/repos/rust-lang/rust/issues", 1.0, 0.0),
            // A static word beside the parameter, still in use.
            seen("/gists/public", 20.0, 2.0),
            seen("/gists/{id}", 80.0, 9.0),
            // No traffic in the window, the cap's label, not a template.
            seen("/old/route", 0.0, 0.0),
            seen("__other__", 5.0, 1.0),
            seen("/a b", 1.0, 1.0),
            // Quiet, but nothing replaced it; a named parameter is not a guess of `{id}`.
            seen("/users/me", 4.0, 0.0),
            seen("/orgs/{org}", 3.0, 0.0),
            seen("/orgs/{id}", 3.0, 1.0),
        ];
        let kept: Vec<String> = freeze(&observed).iter().map(|t| t.text().to_string()).collect();
        assert_eq!(
            kept,
            ["/gists/public", "/users/me", "/gists/{id}", "/orgs/{id}", "/orgs/{org}", "/repos/{id}/{id}/issues"]
        );
    }
}
