//! When to fetch the upstream's OpenAPI document and what a response means. Pure: the glue
//! makes the HTTP call (proxy-wasm `http_call` from the root context) and hands the answer
//! back; time comes in as an argument. Failures keep the last good routes and retry sooner
//! than a normal refresh; nothing here is on a request's path.

use super::config::OpenApiConfig;
use super::{parse_stream, Routes};

/// After a failure, retry after this long (or the refresh interval, if shorter).
const RETRY_NS: u64 = 30_000_000_000;
/// A call still unanswered this long after its timeout is given up.
const LOST_CALL_GRACE_NS: u64 = 5_000_000_000;

/// One HTTP call to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    pub cluster: String,
    pub path: String,
    pub authority: String,
    pub timeout_ms: u64,
}

/// What a fetch gave; `label()` is the `status` label of `routemeter_openapi_fetches_total`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    Loaded(Routes),
    /// The upstream answered with a non-2xx status.
    HttpError(u16),
    /// No answer: unknown cluster, connection failure, timeout.
    Unavailable,
    TooLarge(usize),
    /// The body is not an OpenAPI document.
    Invalid(String),
}

impl FetchOutcome {
    pub fn label(&self) -> &'static str {
        match self {
            FetchOutcome::Loaded(_) => "ok",
            FetchOutcome::HttpError(_) => "http_error",
            FetchOutcome::Unavailable => "unavailable",
            FetchOutcome::TooLarge(_) => "too_large",
            FetchOutcome::Invalid(_) => "invalid",
        }
    }

    pub const LABELS: [&'static str; 5] = ["ok", "http_error", "unavailable", "too_large", "invalid"];
}

#[derive(Debug, Clone)]
pub struct OpenApiSource {
    config: OpenApiConfig,
    /// When the next fetch is due (0: at the first chance).
    next_ns: u64,
    /// Since when a call is out.
    in_flight: Option<u64>,
}

impl OpenApiSource {
    pub fn new(config: OpenApiConfig) -> OpenApiSource {
        OpenApiSource { config, next_ns: 0, in_flight: None }
    }

    pub fn config(&self) -> &OpenApiConfig {
        &self.config
    }

    /// A call to make now, if one is due and none is out.
    pub fn due(&mut self, now_ns: u64) -> Option<FetchRequest> {
        if let Some(since) = self.in_flight {
            let lost_after =
                since.saturating_add(self.config.timeout_ms * 1_000_000).saturating_add(LOST_CALL_GRACE_NS);
            if now_ns < lost_after {
                return None;
            }
            self.in_flight = None;
        }
        if now_ns < self.next_ns {
            return None;
        }
        self.in_flight = Some(now_ns);
        Some(FetchRequest {
            cluster: self.config.cluster.clone(),
            path: self.config.path.clone(),
            authority: self.config.authority.clone(),
            timeout_ms: self.config.timeout_ms,
        })
    }

    /// The call [`OpenApiSource::due`] asked for will not be made now (another VM is
    /// fetching): it is due again at the next look.
    pub fn postpone(&mut self) {
        self.in_flight = None;
    }

    /// The host refused to make the call (unknown cluster): retry later.
    pub fn dispatch_failed(&mut self, now_ns: u64) -> FetchOutcome {
        self.in_flight = None;
        self.schedule(now_ns, false);
        FetchOutcome::Unavailable
    }

    /// The answer: `status` is the `:status` header (absent on timeouts and resets); `body`
    /// is read only when it will be used, as it streams in.
    pub fn on_response(
        &mut self,
        now_ns: u64,
        status: Option<u16>,
        body_size: usize,
        body: impl std::io::Read,
    ) -> FetchOutcome {
        self.in_flight = None;
        let outcome = match status {
            None => FetchOutcome::Unavailable,
            Some(code) if !(200..300).contains(&code) => FetchOutcome::HttpError(code),
            Some(_) if body_size > self.config.max_bytes => FetchOutcome::TooLarge(body_size),
            Some(_) => match parse_stream(body, self.config.base_path.as_deref()) {
                Ok(routes) => FetchOutcome::Loaded(routes),
                Err(e) => FetchOutcome::Invalid(e.0),
            },
        };
        self.schedule(now_ns, matches!(outcome, FetchOutcome::Loaded(_)));
        outcome
    }

    fn schedule(&mut self, now_ns: u64, ok: bool) {
        let refresh = self.config.refresh_seconds * 1_000_000_000;
        let wait = if ok { refresh } else { refresh.min(RETRY_NS) };
        self.next_ns = now_ns.saturating_add(wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> OpenApiConfig {
        OpenApiConfig {
            cluster: "app".into(),
            path: "/openapi.json".into(),
            authority: "app".into(),
            refresh_seconds: 300,
            timeout_ms: 5_000,
            max_bytes: 100,
            base_path: None,
        }
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn fetches_at_once_then_every_refresh_and_retries_sooner_after_a_failure() {
        let mut src = OpenApiSource::new(config());
        let req = src.due(10 * S).unwrap();
        assert_eq!((req.cluster.as_str(), req.path.as_str(), req.timeout_ms), ("app", "/openapi.json", 5_000));
        assert_eq!(src.due(11 * S), None, "one call at a time");
        let doc = br#"{"openapi":"3.0.0","paths":{"/a/{x}":{}}}"#.to_vec();
        let ok = src.on_response(12 * S, Some(200), doc.len(), &doc[..]);
        assert_eq!(ok.label(), "ok");
        assert_eq!(src.due(311 * S), None);
        assert!(src.due(312 * S).is_some());
        assert_eq!(src.on_response(313 * S, Some(503), 0, std::io::empty()), FetchOutcome::HttpError(503));
        assert_eq!(src.due(342 * S), None);
        assert!(src.due(343 * S).is_some());
        assert_eq!(src.on_response(344 * S, None, 0, std::io::empty()), FetchOutcome::Unavailable);
        assert!(src.due(374 * S).is_some());
        assert_eq!(src.on_response(375 * S, Some(200), 101, std::io::empty()), FetchOutcome::TooLarge(101));
        assert!(src.due(405 * S).is_some());
        assert_eq!(src.on_response(406 * S, Some(200), 4, &b"nope"[..]).label(), "invalid");
        assert!(src.due(436 * S).is_some());
        assert_eq!(src.dispatch_failed(437 * S), FetchOutcome::Unavailable);
        assert!(src.due(467 * S).is_some());
    }

    #[test]
    fn a_call_that_never_answers_is_given_up() {
        let mut src = OpenApiSource::new(config());
        assert!(src.due(0).is_some());
        assert_eq!(src.due(9 * S), None);
        assert!(src.due(10 * S).is_some());
    }
}
