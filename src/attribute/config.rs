//! An attribute label as configured (`labels` at the top of the configuration, for every
//! route, and in a route), parsed then validated. The combinations a route can have are
//! checked against `max_label_combinations` by the configuration that assembles them.

use serde::Deserialize;

use crate::config_error::ConfigError;
use crate::metrics::label_value::is_label_safe;

/// Values one label may list.
const MAX_VALUES: usize = 64;
const MAX_VALUE_LEN: usize = 64;
/// What a value that is not listed becomes.
pub const OTHER: &str = "other";
/// What an absent value becomes unless the label says otherwise.
const DEFAULT: &str = "none";
/// Label names the contract already uses.
const RESERVED: [&str; 5] = ["method", "route", "status", "le", "quantile"];

/// One label, as written: from a query parameter or a request header.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAttribute {
    pub name: String,
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default)]
    pub header: Option<String>,
    /// The values kept as they are; anything else is `other`.
    pub values: Vec<String>,
    /// The value when the request has none (default `none`).
    #[serde(default)]
    pub default: Option<String>,
}

/// Where a label's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A query parameter, by name.
    Query(String),
    /// A request header: its index in the configuration's list of header names.
    Header(usize),
}

/// One validated label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeLabel {
    pub name: String,
    pub source: Source,
    values: Vec<Box<str>>,
    default: Box<str>,
    /// The choice an absent value takes: a listed value's, or its own after `other`.
    default_choice: u32,
}

impl AttributeLabel {
    /// Step two for the label at `field`; a header it reads is added to `headers` (lower
    /// case, as Envoy keeps them) if new.
    pub fn from_raw(field: &str, raw: RawAttribute, headers: &mut Vec<String>) -> Result<AttributeLabel, ConfigError> {
        let err = |at: &str, why: String| ConfigError::new(format!("{field}{at}"), why);
        let mut name_bytes = raw.name.bytes();
        let well_formed = name_bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
            && name_bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && raw.name.len() <= 64;
        if !well_formed || RESERVED.contains(&raw.name.as_str()) {
            let why = format!(
                "{:?} must be 1-64 characters of a-z, 0-9 and '_', not starting with a digit, and not one of {RESERVED:?}",
                raw.name
            );
            return Err(err(".name", why));
        }
        let source = match (raw.query, raw.header) {
            (Some(q), None) if !q.is_empty() && q.bytes().all(|b| b.is_ascii_graphic() && b != b'&' && b != b'=') => {
                Source::Query(q)
            }
            (None, Some(h)) if !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic() && b != b':') => {
                let h = h.to_ascii_lowercase();
                let i = headers.iter().position(|known| *known == h).unwrap_or(headers.len());
                if i == headers.len() {
                    headers.push(h);
                }
                Source::Header(i)
            }
            _ => {
                return Err(err(
                    "",
                    "needs exactly one of \"query\" (a parameter name) or \"header\" (a header name)".into(),
                ))
            }
        };
        let value_ok =
            |v: &str| !v.is_empty() && v.len() <= MAX_VALUE_LEN && v.bytes().all(is_label_safe) && !v.ends_with('.');
        if raw.values.is_empty() || raw.values.len() > MAX_VALUES {
            return Err(err(".values", format!("must list 1 to {MAX_VALUES} values, got {}", raw.values.len())));
        }
        let mut values: Vec<Box<str>> = Vec::with_capacity(raw.values.len());
        for (i, v) in raw.values.iter().enumerate() {
            if !value_ok(v) || v == OTHER || values.iter().any(|known| **known == **v) {
                let why = format!("{v:?} must be 1-{MAX_VALUE_LEN} label-safe characters (RFC 3986 path characters but ';' and '='), not ending in '.', not \"{OTHER}\", and not listed twice");
                return Err(err(&format!(".values[{i}]"), why));
            }
            values.push(v.as_str().into());
        }
        let default = raw.default.unwrap_or_else(|| DEFAULT.to_string());
        if !value_ok(&default) || default == OTHER {
            let why = format!(
                "{default:?} must be 1-{MAX_VALUE_LEN} label-safe characters, not ending in '.', not \"{OTHER}\""
            );
            return Err(err(".default", why));
        }
        let default_choice = values.iter().position(|v| **v == *default).unwrap_or(values.len() + 1) as u32;
        Ok(AttributeLabel { name: raw.name, source, values, default: default.into(), default_choice })
    }

    /// How many values it can take: its own, `other`, and its default if not listed.
    pub fn choices(&self) -> u32 {
        let listed = self.values.len() as u32 + 1;
        listed + u32::from(self.default_choice > listed - 1)
    }

    /// The choice for a request's raw value (`None`: absent).
    pub fn choice(&self, raw: Option<&[u8]>) -> u32 {
        match raw {
            None => self.default_choice,
            Some(raw) => self.values.iter().position(|v| v.as_bytes() == raw).unwrap_or(self.values.len()) as u32,
        }
    }

    /// The label value of a choice.
    pub fn value(&self, choice: u32) -> &str {
        match self.values.get(choice as usize) {
            Some(v) => v,
            None if choice as usize == self.values.len() => OTHER,
            None => &self.default,
        }
    }
}
