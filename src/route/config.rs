//! The `routes` section of the plugin configuration: templates, their methods, and the
//! transfers (uploads, downloads) they carry with their outcome labels; parsed (the JSON
//! shape) then validated into [`RouteRule`]s.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::attribute::{AttributeLabel, RawAttribute};
use crate::config_error::ConfigError;
use crate::method::{Method, MethodSet};
use crate::metrics::naming::RawFamily;
use crate::transfer::{OutcomeLabels, OutcomePolicy, StatusMatch, Transfer, TransferKind};

use super::{RouteRule, Template};

const MAX_OUTCOME_LABEL_LEN: usize = 64;
/// Bounds the `status` label of the outcome counters (and keeps outcome ids small).
const MAX_OUTCOME_LABELS: usize = 64;
const MAX_OVERRIDES_PER_ROUTE: usize = 100;

/// One route, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub template: String,
    /// Only these methods match; absent: every method.
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    #[serde(default)]
    pub kind: Option<RawKind>,
    /// Status (`"410"`, `"0"`) or class (`"4xx"`) -> outcome label.
    #[serde(default)]
    pub outcomes: BTreeMap<String, String>,
    /// Attribute labels of this route's series, after the configuration's global ones.
    #[serde(default)]
    pub labels: Vec<RawAttribute>,
    /// This route's own metric names (`{"uploads_total": "excel_conversions_total"}`).
    #[serde(default)]
    pub names: BTreeMap<String, RawFamily>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawKind {
    Upload,
    Download,
}

impl RouteRule {
    /// Step two for `routes[i]` (`field`); outcome labels it introduces go into `labels`,
    /// headers its attribute labels read into `headers`.
    pub fn from_raw(
        field: &str,
        raw: RawRoute,
        (labels, headers): (&mut OutcomeLabels, &mut Vec<String>),
    ) -> Result<RouteRule, ConfigError> {
        let err = |at: &str, reason: String| ConfigError::new(format!("{field}{at}"), reason);
        let template = Template::parse(&raw.template).map_err(|reason| err(".template", reason))?;
        let attributes = raw
            .labels
            .into_iter()
            .enumerate()
            .map(|(i, l)| AttributeLabel::from_raw(&format!("{field}.labels[{i}]"), l, headers))
            .collect::<Result<Vec<_>, _>>()?;
        let methods = match raw.methods {
            None => None,
            Some(names) if names.is_empty() => {
                return Err(err(".methods", "must not be empty; leave it out to match every method".into()))
            }
            Some(names) => {
                let mut set = MethodSet::default();
                for (i, name) in names.iter().enumerate() {
                    let m = Method::from_config(name).ok_or_else(|| {
                        let expected = "GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH, OTHER";
                        err(&format!(".methods[{i}]"), format!("unknown method {name:?}; expected one of {expected}"))
                    })?;
                    set.insert(m);
                }
                Some(set)
            }
        };
        let kind = match raw.kind {
            None if raw.outcomes.is_empty() => return Ok(RouteRule { template, methods, transfer: None, attributes }),
            None => {
                let why = "only routes with \"kind\": \"upload\" or \"download\" have outcomes";
                return Err(err(".outcomes", why.into()));
            }
            Some(RawKind::Upload) => TransferKind::Upload,
            Some(RawKind::Download) => TransferKind::Download,
        };
        if raw.outcomes.len() > MAX_OVERRIDES_PER_ROUTE {
            let why = format!("at most {MAX_OVERRIDES_PER_ROUTE} overrides, got {}", raw.outcomes.len());
            return Err(err(".outcomes", why));
        }
        let mut overrides = Vec::with_capacity(raw.outcomes.len());
        for (key, label) in &raw.outcomes {
            let at = format!(".outcomes.{key}");
            let status = StatusMatch::parse(key).ok_or_else(|| {
                err(&at, "key must be a status code 100-599, \"0\" (no response) or a class \"1xx\"-\"5xx\"".into())
            })?;
            if !is_outcome_label(label) {
                let why = format!(
                    "outcome {label:?} must be 1-{MAX_OUTCOME_LABEL_LEN} characters of a-z, 0-9 and '_', starting with a letter"
                );
                return Err(err(&at, why));
            }
            let id = labels.intern(label);
            if labels.len() > MAX_OUTCOME_LABELS {
                let why = format!(
                    "more than {MAX_OUTCOME_LABELS} distinct outcome labels in the configuration (defaults included)"
                );
                return Err(err(&at, why));
            }
            overrides.push((status, id));
        }
        let transfer = Transfer { kind, outcomes: OutcomePolicy::new(overrides), durations_of: None };
        Ok(RouteRule { template, methods, transfer: Some(transfer), attributes })
    }
}

fn is_outcome_label(label: &str) -> bool {
    let mut bytes = label.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && label.len() <= MAX_OUTCOME_LABEL_LEN
        && bytes.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
}
