//! Public API descriptions as traffic (tests/data/apis/*.json, trimmed from the npm
//! packages named in that folder's README): every path template filled with realistic
//! values, and the scoring of the route labels a proxy gave those requests.
//!
//! Values follow the parameter's name and schema: numbers, UUIDs, SHAs, enum members, keys
//! (`NODA_RUNO`), slugs (`kavo-mira2`) and names (`alhago`) from seeded pools, string ids
//! as numbers or base62 tokens. Written independently of the filter: the scoring compares
//! labels with the templates, not with anything routemeter computes.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use testkit::rng::Rng;

pub const APIS: [&str; 10] =
    ["bitbucket", "digitalocean", "github", "gitlab", "jira", "kubernetes", "slack", "stripe", "twilio", "zoom"];

#[derive(Debug, Clone)]
pub enum Kind {
    Int,
    Uuid,
    Sha,
    Key,
    Slug,
    Name,
    Date,
    Email,
    StringId,
    Enum(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub method: String,
    pub params: BTreeMap<String, Kind>,
}

/// One path template of an API (base path included), with its operations.
#[derive(Debug, Clone)]
pub struct Template {
    pub path: String,
    pub ops: Vec<Operation>,
}

#[derive(Debug, Clone)]
pub struct Api {
    pub name: String,
    /// The OpenAPI document, as committed.
    pub document: Vec<u8>,
    pub templates: Vec<Template>,
}

pub fn data_dir() -> std::path::PathBuf {
    testkit::bootstrap::repo_root().join("tests/data/apis")
}

/// Loads `tests/data/apis/{name}.json`.
pub fn load(name: &str) -> Api {
    let dir = std::env::var_os("APIS_DIR").map(std::path::PathBuf::from).unwrap_or_else(data_dir);
    let file = dir.join(format!("{name}.json"));
    let document = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let doc: Value = serde_json::from_slice(&document).expect("API description is JSON");
    let base = base_path(&doc);
    let mut by_path: BTreeMap<String, Vec<Operation>> = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        // `#anchor` and `?query` variants of one path are the same route to a proxy.
        let clean = path.split(['#', '?']).next().unwrap_or(path);
        for (method, op) in item.as_object().expect("path item") {
            let params = op["parameters"]
                .as_array()
                .map(|ps| ps.iter().map(|p| (p["name"].as_str().unwrap_or("").to_string(), kind_of(p))).collect())
                .unwrap_or_default();
            by_path
                .entry(format!("{base}{clean}"))
                .or_default()
                .push(Operation { method: method.to_uppercase(), params });
        }
    }
    let templates = by_path.into_iter().map(|(path, ops)| Template { path, ops }).collect();
    Api { name: name.to_string(), document, templates }
}

/// The path part of `servers[0].url` (OpenAPI 3) or `basePath` (Swagger 2), no trailing `/`.
fn base_path(doc: &Value) -> String {
    let raw = doc["basePath"].as_str().map(str::to_string).unwrap_or_else(|| {
        let url = doc["servers"][0]["url"].as_str().unwrap_or("");
        let after_scheme = url.split_once("//").map_or(url, |(_, rest)| rest);
        let path = if url.contains("//") { after_scheme.find('/').map_or("", |i| &after_scheme[i..]) } else { url };
        path.to_string()
    });
    raw.trim_end_matches('/').to_string()
}

fn kind_of(param: &Value) -> Kind {
    let schema = if param.get("schema").is_some() { &param["schema"] } else { param };
    let name = param["name"].as_str().unwrap_or("").to_ascii_lowercase();
    if let Some(values) = schema["enum"].as_array().filter(|v| !v.is_empty()) {
        return Kind::Enum(values.iter().map(|v| v.as_str().unwrap_or("").to_string()).collect());
    }
    let ty = schema["type"].as_str().unwrap_or("string");
    let format = schema["format"].as_str().unwrap_or("");
    if ty == "integer" || ty == "number" {
        Kind::Int
    } else if format == "uuid" || name.contains("uuid") {
        Kind::Uuid
    } else if name.contains("sha") || name.contains("digest") || matches!(name.as_str(), "ref" | "commit" | "basehead")
    {
        Kind::Sha
    } else if (name.contains("key") && !name.contains("id")) || name.contains("secret") || name.contains("variable") {
        Kind::Key
    } else if name.ends_with("id") || name.contains("number") {
        Kind::StringId
    } else if ["slug", "repo", "branch", "tag", "project"].iter().any(|w| name.contains(w)) {
        Kind::Slug
    } else if format == "date" || name == "date" || name.ends_with("_date") {
        Kind::Date
    } else if name.contains("email") {
        Kind::Email
    } else {
        Kind::Name
    }
}

const SYLLABLES: [&str; 30] = [
    "ka", "lo", "mi", "ra", "to", "ne", "su", "ba", "di", "fo", "ga", "hu", "je", "ko", "lu", "ma", "no", "pa", "ri",
    "sa", "te", "vu", "wa", "yo", "ze", "al", "ho", "go", "da", "ru",
];
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Seeded pools of names, slugs and keys.
struct Pools {
    names: Vec<String>,
    slugs: Vec<String>,
    keys: Vec<String>,
}

fn word(rng: &mut Rng, min: u64, max: u64) -> String {
    let n = min + rng.below(max - min + 1);
    (0..n).map(|_| *rng.pick(&SYLLABLES)).collect()
}

fn pool(rng: &mut Rng, size: usize, mut make: impl FnMut(&mut Rng) -> String) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for _ in 0..size * 4 {
        let w = make(rng);
        if seen.insert(w.clone()) {
            out.push(w);
            if out.len() == size {
                break;
            }
        }
    }
    out
}

impl Pools {
    fn new(rng: &mut Rng, size: usize) -> Pools {
        let names = pool(rng, size, |r| word(r, 2, 3));
        let slugs = pool(rng, size, |r| {
            let digit = if r.below(10) < 3 { (1 + r.below(9)).to_string() } else { String::new() };
            format!("{}-{}{digit}", word(r, 2, 3), word(r, 1, 3))
        });
        let keys = pool(rng, size, |r| format!("{}_{}", word(r, 2, 2), word(r, 2, 2)).to_uppercase());
        Pools { names, slugs, keys }
    }

    fn value(&self, rng: &mut Rng, kind: &Kind) -> String {
        match kind {
            Kind::Enum(values) => rng.pick(values).clone(),
            Kind::Int => (1 + rng.below(999_999)).to_string(),
            Kind::Uuid => {
                let h = format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64());
                format!("{}-{}-4{}-{}-{}", &h[..8], &h[8..12], &h[13..16], &h[16..20], &h[20..32])
            }
            Kind::Sha => format!("{:016x}{:016x}{:08x}", rng.next_u64(), rng.next_u64(), rng.next_u64() as u32),
            Kind::Key => rng.pick(&self.keys).clone(),
            Kind::Slug => rng.pick(&self.slugs).clone(),
            Kind::Name => rng.pick(&self.names).clone(),
            Kind::Date => format!("2026-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28)),
            Kind::Email => format!("{}@example.com", rng.pick(&self.names)),
            Kind::StringId if rng.below(2) == 0 => (1 + rng.below(999_999)).to_string(),
            Kind::StringId => (0..22).map(|_| *rng.pick(BASE62) as char).collect(),
        }
    }
}

/// One request: method, concrete path, and the index of its template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub template: usize,
}

/// `per_template` requests to each of `templates` templates (all when `None`), chosen and
/// interleaved by `seed`, with pools of `pool` names, slugs and keys.
pub fn traffic(api: &Api, seed: u64, templates: Option<usize>, per_template: usize, pool: usize) -> Vec<Request> {
    let mut rng = Rng::new(seed);
    let mut chosen: Vec<usize> = (0..api.templates.len()).collect();
    if let Some(n) = templates.filter(|n| *n < chosen.len()) {
        rng.shuffle(&mut chosen);
        chosen.truncate(n);
        chosen.sort_unstable();
    }
    let pools = Pools::new(&mut rng, pool);
    let mut out = Vec::new();
    for &t in &chosen {
        let template = &api.templates[t];
        for _ in 0..per_template {
            let op = rng.pick(&template.ops);
            out.push(Request {
                method: op.method.clone(),
                path: fill(&template.path, op, &pools, &mut rng),
                template: t,
            });
        }
    }
    rng.shuffle(&mut out);
    out
}

fn fill(template: &str, op: &Operation, pools: &Pools, rng: &mut Rng) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| open + c) else { break };
        out.push_str(&rest[..open]);
        let name = &rest[open + 1..close];
        let kind = op.params.get(name).cloned().unwrap_or(Kind::Name);
        out.push_str(&pools.value(rng, &kind));
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// How the labels a proxy gave a set of requests compare with their templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Score {
    pub requests: usize,
    pub templates: usize,
    /// Templates whose every request got one label, used by no other template.
    pub exact: usize,
    /// Templates whose requests from the sixth on got one label, used by no other template
    /// (the label they settled on, after learning).
    pub settled: usize,
    /// Distinct labels, `__other__` not included.
    pub labels: usize,
    pub other: usize,
}

impl Score {
    pub fn of(requests: &[Request], labels: &[String]) -> Score {
        assert_eq!(requests.len(), labels.len());
        let mut by_template: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
        let mut templates_of: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
        for (r, l) in requests.iter().zip(labels) {
            by_template.entry(r.template).or_default().push(l);
            templates_of.entry(l).or_default().insert(r.template);
        }
        let own = |l: &str| l != OTHER && templates_of[l].len() == 1;
        let exact = by_template.values().filter(|ls| ls.iter().all(|l| *l == ls[0]) && own(ls[0])).count();
        let settled = by_template
            .values()
            .filter(|ls| {
                let last = ls[ls.len() - 1];
                ls.iter().skip(5).all(|l| *l == last) && own(last)
            })
            .count();
        Score {
            requests: requests.len(),
            templates: by_template.len(),
            exact,
            settled,
            labels: templates_of.keys().filter(|l| **l != OTHER).count(),
            other: labels.iter().filter(|l| *l == OTHER).count(),
        }
    }

    pub fn add(&mut self, other: &Score) {
        self.requests += other.requests;
        self.templates += other.templates;
        self.exact += other.exact;
        self.settled += other.settled;
        self.labels += other.labels;
        self.other += other.other;
    }

    pub fn row(&self, name: &str) -> String {
        format!(
            "| {name} | {} | {} | {:.1} % | {:.1} % | {:.2} | {:.2} % |",
            self.templates,
            self.requests,
            pct(self.exact, self.templates),
            pct(self.settled, self.templates),
            self.labels as f64 / self.templates.max(1) as f64,
            pct(self.other, self.requests)
        )
    }
}

/// Deals `requests` at random to `proxies` (a fleet sharing one traffic: sidecars of one
/// service, gateway replicas), keeping each proxy's share in order.
pub fn deal(requests: &[Request], proxies: usize, seed: u64) -> Vec<Vec<Request>> {
    let mut rng = Rng::new(seed);
    let mut shares = vec![Vec::new(); proxies];
    for r in requests {
        shares[rng.below(proxies as u64) as usize].push(r.clone());
    }
    shares
}

/// What a fleet publishes: the union of its proxies' labels, which Prometheus sums by route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fleet {
    pub templates: usize,
    /// Distinct labels over all proxies, `__other__` not included.
    pub labels: usize,
    /// Templates whose requests got one label on every proxy, the same one.
    pub one_label: usize,
}

impl Fleet {
    /// `shares[p]` and `labels[p]`: proxy `p`'s requests and the labels it gave them.
    pub fn of(shares: &[Vec<Request>], labels: &[Vec<String>]) -> Fleet {
        let mut by_template: BTreeMap<usize, BTreeSet<&str>> = BTreeMap::new();
        for (reqs, ls) in shares.iter().zip(labels) {
            assert_eq!(reqs.len(), ls.len());
            for (r, l) in reqs.iter().zip(ls) {
                by_template.entry(r.template).or_default().insert(l);
            }
        }
        let union: BTreeSet<&str> = by_template.values().flatten().copied().filter(|l| *l != OTHER).collect();
        Fleet {
            templates: by_template.len(),
            labels: union.len(),
            one_label: by_template.values().filter(|ls| ls.len() == 1).count(),
        }
    }

    pub fn add(&mut self, other: &Fleet) {
        self.templates += other.templates;
        self.labels += other.labels;
        self.one_label += other.one_label;
    }

    /// Two cells: labels per template, templates with one label fleet-wide.
    pub fn cells(&self) -> String {
        format!(
            "{:.2} | {:.1} %",
            self.labels as f64 / self.templates.max(1) as f64,
            pct(self.one_label, self.templates)
        )
    }
}

pub const HEADER: &str = "| API | templates hit | requests | exactly one label | one label once learned | labels per template | requests in `__other__` |\n|---|---|---|---|---|---|---|";

/// `HEADER` with the fleet columns: 3 and 10 proxies learning apart from one traffic.
pub const FLEET_HEADER: &str = "| API | templates hit | requests | exactly one label | one label once learned | labels per template | requests in `__other__` | 3 proxies: labels per template | 3 proxies: one label fleet-wide | 10 proxies: labels per template | 10 proxies: one label fleet-wide |\n|---|---|---|---|---|---|---|---|---|---|---|";

pub const OTHER: &str = "__other__";

fn pct(n: usize, of: usize) -> f64 {
    100.0 * n as f64 / of.max(1) as f64
}
