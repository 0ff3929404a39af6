//! Routes from an OpenAPI document (3.x, or Swagger 2.0): every path becomes a route
//! template, prefixed with the server's base path, ordered most specific first (OpenAPI
//! matches concrete paths before templated ones). The filter loads them from the upstream
//! ([`source`]); the `routemeter openapi` command writes them as static configuration.
//!
//! OpenAPI path templates use routemeter's own `{name}` syntax, including parameters inside
//! a segment (`/Calls/{Sid}.json`). Only `paths` keys, their operations' methods and the
//! server URL are read, as the document streams in: operations are skipped unread and at
//! most [`MAX_TEMPLATES`] paths are kept, so a document of any size costs a VM a bounded
//! amount of memory (linear memory never shrinks, so what a parse takes, it keeps).
//!
//! Paths of one shape whose parameters are named differently (`GET /orgs/{org}/attestations/
//! {subject_digest}`, `DELETE /orgs/{org}/attestations/{attestation_id}`: OpenAPI forbids it,
//! large real documents do it) each apply to their own operations' methods, so a request gets
//! the template its method is documented under. Other templates apply to every method.

pub mod config;
pub mod fetch_slot;
pub mod source;

pub use config::{OpenApiConfig, RawOpenApi};

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::method::{Method, MethodSet};
use crate::route::{RouteRule, Template};

/// More templates than this in one document are not loaded (bounds labels and memory).
pub const MAX_TEMPLATES: usize = 5_000;
/// Paths that cannot be used, listed with why (the rest are only counted).
const MAX_SKIPPED_LISTED: usize = 100;

#[derive(Debug, Deserialize)]
struct Document {
    openapi: Option<IgnoredAny>,
    swagger: Option<IgnoredAny>,
    #[serde(rename = "basePath")]
    base_path: Option<String>,
    #[serde(default)]
    servers: Vec<Server>,
    paths: Option<Paths>,
}

#[derive(Debug, Deserialize)]
struct Server {
    url: String,
    #[serde(default)]
    variables: BTreeMap<String, Variable>,
}

#[derive(Debug, Deserialize)]
struct Variable {
    default: Option<String>,
}

/// The `paths` keys as they stream past: the first [`MAX_TEMPLATES`] usable ones in key order
/// are kept, the others counted, so a document's size does not decide the memory it takes.
#[derive(Debug, Default)]
struct Paths {
    /// Without `#anchor` and `?query` (the same route to a proxy), with the methods of their
    /// operations.
    kept: BTreeMap<String, MethodSet>,
    skipped: Vec<(String, String)>,
    skipped_total: usize,
}

impl Paths {
    fn skip(&mut self, path: String, why: String) {
        self.skipped_total += 1;
        if self.skipped.len() < MAX_SKIPPED_LISTED {
            self.skipped.push((path, why));
        }
    }

    fn add(&mut self, key: String, methods: MethodSet) {
        if !key.starts_with('/') {
            return;
        }
        let clean = key.split(['#', '?']).next().unwrap_or(&key);
        if let Err(reason) = Template::parse(clean) {
            return self.skip(clean.to_string(), reason);
        }
        if let Some(known) = self.kept.get_mut(clean) {
            known.extend(methods);
            return;
        }
        self.kept.insert(clean.to_string(), methods);
        if self.kept.len() > MAX_TEMPLATES {
            if let Some(last) = self.kept.pop_last() {
                self.skip(last.0, format!("more than {MAX_TEMPLATES} templates"));
            }
        }
    }
}

impl<'de> Deserialize<'de> for Paths {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Paths, D::Error> {
        struct Keys;
        impl<'de> Visitor<'de> for Keys {
            type Value = Paths;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Paths, A::Error> {
                let mut paths = Paths::default();
                // Operations are skipped unread: only their methods are kept.
                while let Some(key) = map.next_key::<String>()? {
                    // Extensions (`x-...`) and anything else that is not a path: unread.
                    if !key.starts_with('/') {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                    let Operations(methods) = map.next_value()?;
                    paths.add(key, methods);
                }
                Ok(paths)
            }
        }
        deserializer.deserialize_map(Keys)
    }
}

/// A path item's operations, by method; the rest of it unread (anything not a map, such as
/// an extension's value, has none).
struct Operations(MethodSet);

impl<'de> Deserialize<'de> for Operations {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Operations, D::Error> {
        struct Methods;
        impl<'de> Visitor<'de> for Methods {
            type Value = Operations;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a path item")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Operations, A::Error> {
                let mut methods = MethodSet::default();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<IgnoredAny>()?;
                    let method = Method::from_config(&key.to_ascii_uppercase()).filter(|m| *m != Method::Other);
                    if let Some(m) = method {
                        methods.insert(m);
                        // A server answers HEAD wherever it answers GET.
                        if m == Method::Get {
                            methods.insert(Method::Head);
                        }
                    }
                }
                Ok(Operations(methods))
            }
            fn visit_unit<E>(self) -> Result<Operations, E> {
                Ok(Operations(MethodSet::default()))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Operations, E> {
                Ok(Operations(MethodSet::default()))
            }
            fn visit_str<E>(self, _: &str) -> Result<Operations, E> {
                Ok(Operations(MethodSet::default()))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Operations, E> {
                Ok(Operations(MethodSet::default()))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Operations, E> {
                Ok(Operations(MethodSet::default()))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Operations, E> {
                Ok(Operations(MethodSet::default()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Operations, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Operations(MethodSet::default()))
            }
        }
        deserializer.deserialize_any(Methods)
    }
}

/// The templates of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routes {
    /// Prefixed to every path (`/v2` from `https://api.example.com/v2`).
    pub base_path: String,
    /// Most specific first: plain rules, but for templates sharing a shape, which apply to
    /// their operations' methods only.
    pub rules: Vec<RouteRule>,
    /// Paths that could not be used, with why (the first 100).
    pub skipped: Vec<(String, String)>,
    /// Every path that could not be used.
    pub skipped_total: usize,
}

impl Routes {
    /// Distinct templates (a shape's fallback repeats one of its templates).
    pub fn template_count(&self) -> usize {
        let mut texts: Vec<&str> = self.rules.iter().map(|r| r.template.text()).collect();
        texts.sort_unstable();
        texts.dedup();
        texts.len()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenApiError(pub String);

impl fmt::Display for OpenApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OpenApiError {}

/// Reads a JSON document. `base_path` overrides the one it declares.
pub fn parse(document: &[u8], base_path: Option<&str>) -> Result<Routes, OpenApiError> {
    from_json(serde_json::from_slice(document), base_path)
}

/// [`parse`], as the document streams in: only what is kept stays in memory.
pub fn parse_stream(document: impl std::io::Read, base_path: Option<&str>) -> Result<Routes, OpenApiError> {
    from_json(serde_json::from_reader(document), base_path)
}

fn from_json(doc: serde_json::Result<Document>, base_path: Option<&str>) -> Result<Routes, OpenApiError> {
    let doc = doc.map_err(|e| OpenApiError(format!("not a JSON OpenAPI document: {e}")))?;
    from_document(doc, base_path)
}

/// Reads an already parsed document (the command line also accepts YAML).
pub fn from_value(document: serde_json::Value, base_path: Option<&str>) -> Result<Routes, OpenApiError> {
    let doc: Document =
        serde_json::from_value(document).map_err(|e| OpenApiError(format!("not an OpenAPI document: {e}")))?;
    from_document(doc, base_path)
}

fn from_document(doc: Document, base_path: Option<&str>) -> Result<Routes, OpenApiError> {
    if doc.openapi.is_none() && doc.swagger.is_none() {
        return Err(OpenApiError("not an OpenAPI document: no `openapi` or `swagger` field".into()));
    }
    let mut paths = doc.paths.ok_or_else(|| OpenApiError("the document has no `paths`".into()))?;
    let base = match base_path {
        Some(b) => b.trim_end_matches('/').to_string(),
        None => doc
            .base_path
            .as_deref()
            .map_or_else(|| server_base(doc.servers.first()), |b| b.trim_end_matches('/').to_string()),
    };
    // What was skipped as it streamed in, with the base path as the templates have it.
    for (path, reason) in &mut paths.skipped {
        path.insert_str(0, &base);
        if let Err(why) = Template::parse(path) {
            *reason = why;
        }
    }
    let mut templates: Vec<(Template, MethodSet)> = Vec::with_capacity(paths.kept.len());
    for (path, methods) in std::mem::take(&mut paths.kept) {
        let text = format!("{base}{path}");
        match Template::parse(&text) {
            Ok(t) => templates.push((t, methods)),
            Err(reason) => paths.skip(text, reason),
        }
    }
    let mut shapes: BTreeMap<String, usize> = BTreeMap::new();
    for (t, _) in &templates {
        *shapes.entry(shape(t.text())).or_default() += 1;
    }
    let mut rules: Vec<RouteRule> = templates
        .into_iter()
        .map(|(template, methods)| {
            let shared = shapes.get(&shape(template.text())).is_some_and(|n| *n > 1);
            let methods = (shared && methods != MethodSet::default()).then_some(methods);
            RouteRule { methods, ..RouteRule::plain(template) }
        })
        .collect();
    // Within a shape, the method-bound templates first; a request with a method none of them
    // lists (OPTIONS) falls to the shape's first template, bound to no method.
    let mut fallbacks: BTreeMap<String, Template> = BTreeMap::new();
    for r in &rules {
        let key = shape(r.template.text());
        if r.methods.is_some() && !rules.iter().any(|o| o.methods.is_none() && shape(o.template.text()) == key) {
            fallbacks.entry(key).or_insert_with(|| r.template.clone());
        }
    }
    rules.extend(fallbacks.into_values().map(RouteRule::plain));
    rules.sort_by(|a, b| {
        let key = |r: &RouteRule| (r.template.specificity(), r.methods.is_none());
        key(a).cmp(&key(b)).then_with(|| a.template.text().cmp(b.template.text()))
    });
    Ok(Routes { base_path: base, rules, skipped: paths.skipped, skipped_total: paths.skipped_total })
}

/// A template with its parameters' names and empty segments left out: `/orgs/{}/attestations/{}`
/// (`/a/{x}/` is the shape of `/a/{y}`: they match the same requests).
fn shape(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut in_param = false;
    let segments: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
    for c in format!("/{}", segments.join("/")).chars() {
        match c {
            '{' => {
                in_param = true;
                out.push('{');
            }
            '}' => {
                in_param = false;
                out.push('}');
            }
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

/// The path of the first server URL (`https://h/v2` -> `/v2`, `/api` -> `/api`), with server
/// variables replaced by their defaults; no trailing `/`.
fn server_base(server: Option<&Server>) -> String {
    let Some(server) = server else { return String::new() };
    let mut url = server.url.clone();
    for (name, var) in &server.variables {
        if let Some(default) = &var.default {
            url = url.replace(&format!("{{{name}}}"), default);
        }
    }
    let path = match url.split_once("//") {
        Some((_, after)) => after.find('/').map_or("", |i| &after[i..]),
        None => url.as_str(),
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    if path.contains('{') {
        return String::new();
    }
    path.trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests;
