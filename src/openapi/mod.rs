//! Routes from an OpenAPI document (3.x, or Swagger 2.0): every path becomes a route
//! template, prefixed with the server's base path, ordered most specific first (OpenAPI
//! matches concrete paths before templated ones). The filter loads them from the upstream
//! ([`source`]); the `routemeter openapi` command writes them as static configuration.
//!
//! OpenAPI path templates use routemeter's own `{name}` syntax, including parameters inside
//! a segment (`/Calls/{Sid}.json`). Only `paths` keys and the server URL are read; operations
//! are skipped without being built, so a multi-megabyte document costs little memory.

pub mod source;

use std::collections::BTreeMap;
use std::fmt;

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::route::Template;

/// More templates than this in one document are not loaded (bounds labels and memory).
pub const MAX_TEMPLATES: usize = 5_000;

#[derive(Debug, Deserialize)]
struct Document {
    openapi: Option<IgnoredAny>,
    swagger: Option<IgnoredAny>,
    #[serde(rename = "basePath")]
    base_path: Option<String>,
    #[serde(default)]
    servers: Vec<Server>,
    paths: Option<BTreeMap<String, IgnoredAny>>,
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

/// The templates of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routes {
    /// Prefixed to every path (`/v2` from `https://api.example.com/v2`).
    pub base_path: String,
    /// Most specific first.
    pub templates: Vec<Template>,
    /// Paths that could not be used, with why.
    pub skipped: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenApiError(pub String);

impl fmt::Display for OpenApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OpenApiError {}

/// Reads `document` (JSON). `base_path` overrides the one the document declares.
pub fn parse(document: &[u8], base_path: Option<&str>) -> Result<Routes, OpenApiError> {
    let doc: Document =
        serde_json::from_slice(document).map_err(|e| OpenApiError(format!("not a JSON OpenAPI document: {e}")))?;
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
    let paths = doc.paths.ok_or_else(|| OpenApiError("the document has no `paths`".into()))?;
    let base = match base_path {
        Some(b) => b.trim_end_matches('/').to_string(),
        None => doc
            .base_path
            .as_deref()
            .map_or_else(|| server_base(doc.servers.first()), |b| b.trim_end_matches('/').to_string()),
    };
    let mut templates: Vec<Template> = Vec::new();
    let mut skipped = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for path in paths.keys().filter(|p| p.starts_with('/')) {
        // `#anchor` and `?query` variants some documents use are the same route to a proxy.
        let clean = path.split(['#', '?']).next().unwrap_or(path);
        let text = format!("{base}{clean}");
        if !seen.insert(text.clone()) {
            continue;
        }
        match Template::parse(&text) {
            Ok(t) if templates.len() < MAX_TEMPLATES => templates.push(t),
            Ok(_) => skipped.push((text, format!("more than {MAX_TEMPLATES} templates"))),
            Err(reason) => skipped.push((text, reason)),
        }
    }
    templates.sort_by(|a, b| a.specificity().cmp(&b.specificity()).then_with(|| a.text().cmp(b.text())));
    Ok(Routes { base_path: base, templates, skipped })
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
