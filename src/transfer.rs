//! Routes that carry uploads or downloads, and the outcome classes of those transfers: the
//! `status` label of `uploads_total` and `downloads_total`, derived from the HTTP status
//! (0 = no response) by a per-kind default table that a route may override per code
//! (`"422"`) or per class (`"4xx"`).

/// Which way a route's transfers go (`"kind"` of a configured route).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferKind {
    Upload,
    Download,
}

/// A route's transfers: their kind and how their outcomes are classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub kind: TransferKind,
    pub outcomes: OutcomePolicy,
    /// Durations recorded only for transfers with this outcome (a route family's
    /// `"outcome"`: seed 000 times successful conversions only).
    pub durations_of: Option<OutcomeId>,
}

impl Transfer {
    /// The outcome of a transfer that ended with `status` (0: no response).
    pub fn outcome(&self, status: u16) -> OutcomeId {
        self.outcomes.classify(self.kind, status)
    }
}

/// Index into [`OutcomeLabels`]: only the table and the defaults below make them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OutcomeId(pub(crate) u16);

pub const SUCCESS: OutcomeId = OutcomeId(0);
pub const ABORTED: OutcomeId = OutcomeId(1);
pub const FAILED_ERROR: OutcomeId = OutcomeId(2);
pub const FAILED_SIZE: OutcomeId = OutcomeId(3);
pub const FAILED_VALIDATION: OutcomeId = OutcomeId(4);
pub const FAILED_NOT_FOUND: OutcomeId = OutcomeId(5);
pub const FAILED_NOT_READY: OutcomeId = OutcomeId(6);

const DEFAULT_LABELS: [&str; 7] =
    ["success", "aborted", "failed_error", "failed_size", "failed_validation", "failed_not_found", "failed_not_ready"];

/// The outcome label values: the defaults above, then any the config introduces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeLabels {
    labels: Vec<Box<str>>,
}

impl Default for OutcomeLabels {
    fn default() -> Self {
        OutcomeLabels { labels: DEFAULT_LABELS.iter().map(|l| (*l).into()).collect() }
    }
}

impl OutcomeLabels {
    pub fn intern(&mut self, label: &str) -> OutcomeId {
        if let Some(i) = self.labels.iter().position(|l| &**l == label) {
            return OutcomeId(i as u16);
        }
        self.labels.push(label.into());
        OutcomeId((self.labels.len() - 1) as u16)
    }

    /// The id of an outcome label the configuration has.
    pub fn find(&self, label: &str) -> Option<OutcomeId> {
        self.labels.iter().position(|l| &**l == label).map(|i| OutcomeId(i as u16))
    }

    pub fn label(&self, id: OutcomeId) -> &str {
        self.labels.get(usize::from(id.0)).map_or("failed_error", |l| l)
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Which statuses an override applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusMatch {
    /// One code; 0 means "no response".
    Code(u16),
    /// `1xx` .. `5xx`, stored as the hundreds digit.
    Class(u16),
}

impl StatusMatch {
    /// Parses `"404"`, `"0"` or `"4xx"`.
    pub fn parse(key: &str) -> Option<StatusMatch> {
        let bytes = key.as_bytes();
        match bytes {
            [d @ b'1'..=b'5', b'x', b'x'] => Some(StatusMatch::Class(u16::from(d - b'0'))),
            [b'0'] => Some(StatusMatch::Code(0)),
            [b'1'..=b'5', _, _] => key.parse().ok().map(StatusMatch::Code),
            _ => None,
        }
    }
}

/// A route's overrides of the default table, most specific first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutcomePolicy {
    overrides: Vec<(StatusMatch, OutcomeId)>,
}

impl OutcomePolicy {
    pub fn new(mut overrides: Vec<(StatusMatch, OutcomeId)>) -> OutcomePolicy {
        // Exact codes win over classes regardless of the order they were written in.
        overrides.sort_by_key(|(m, _)| matches!(m, StatusMatch::Class(_)));
        OutcomePolicy { overrides }
    }

    /// The outcome of a transfer of `kind` that ended with `status`.
    pub fn classify(&self, kind: TransferKind, status: u16) -> OutcomeId {
        let overridden = self.overrides.iter().find(|(m, _)| match *m {
            StatusMatch::Code(code) => code == status,
            StatusMatch::Class(class) => status != 0 && status / 100 == class,
        });
        match overridden {
            Some((_, id)) => *id,
            None => default_outcome(kind, status),
        }
    }
}

fn default_outcome(kind: TransferKind, status: u16) -> OutcomeId {
    match (kind, status) {
        (_, 0) => ABORTED,
        (_, 200..=299) => SUCCESS,
        (TransferKind::Upload, 413) => FAILED_SIZE,
        (TransferKind::Upload, 400..=499) => FAILED_VALIDATION,
        (TransferKind::Download, 404) => FAILED_NOT_FOUND,
        (TransferKind::Download, 409 | 425) => FAILED_NOT_READY,
        _ => FAILED_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(kind: TransferKind, policy: &OutcomePolicy, labels: &OutcomeLabels, status: u16) -> String {
        labels.label(policy.classify(kind, status)).to_string()
    }

    #[test]
    fn default_tables() {
        let labels = OutcomeLabels::default();
        let p = OutcomePolicy::default();
        let cases: &[(TransferKind, u16, &str)] = &[
            (TransferKind::Upload, 201, "success"),
            (TransferKind::Upload, 200, "success"),
            (TransferKind::Upload, 413, "failed_size"),
            (TransferKind::Upload, 422, "failed_validation"),
            (TransferKind::Upload, 400, "failed_validation"),
            (TransferKind::Upload, 500, "failed_error"),
            (TransferKind::Upload, 503, "failed_error"),
            (TransferKind::Upload, 302, "failed_error"),
            (TransferKind::Upload, 0, "aborted"),
            (TransferKind::Download, 200, "success"),
            (TransferKind::Download, 404, "failed_not_found"),
            (TransferKind::Download, 409, "failed_not_ready"),
            (TransferKind::Download, 425, "failed_not_ready"),
            (TransferKind::Download, 413, "failed_error"),
            (TransferKind::Download, 500, "failed_error"),
            (TransferKind::Download, 0, "aborted"),
        ];
        for (kind, status, want) in cases {
            assert_eq!(label(*kind, &p, &labels, *status), *want, "{kind:?} {status}");
        }
    }

    #[test]
    fn overrides_exact_before_class_before_default() {
        let mut labels = OutcomeLabels::default();
        let gone = labels.intern("failed_gone");
        let client = labels.intern("failed_client");
        let p = OutcomePolicy::new(vec![(StatusMatch::Class(4), client), (StatusMatch::Code(410), gone)]);
        assert_eq!(label(TransferKind::Download, &p, &labels, 410), "failed_gone");
        assert_eq!(label(TransferKind::Download, &p, &labels, 404), "failed_client");
        assert_eq!(label(TransferKind::Download, &p, &labels, 500), "failed_error");
        assert_eq!(label(TransferKind::Download, &p, &labels, 0), "aborted");
    }

    #[test]
    fn status_match_parsing() {
        assert_eq!(StatusMatch::parse("404"), Some(StatusMatch::Code(404)));
        assert_eq!(StatusMatch::parse("0"), Some(StatusMatch::Code(0)));
        assert_eq!(StatusMatch::parse("4xx"), Some(StatusMatch::Class(4)));
        for bad in ["", "6xx", "0xx", "40", "4044", "099", "600", "4XX", "abc", "-1"] {
            assert_eq!(StatusMatch::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn interning_reuses_defaults() {
        let mut labels = OutcomeLabels::default();
        assert_eq!(labels.intern("success"), SUCCESS);
        assert_eq!(labels.intern("failed_not_ready"), FAILED_NOT_READY);
        assert_eq!(labels.intern("x"), OutcomeId(7));
        assert_eq!(labels.len(), 8);
    }
}
