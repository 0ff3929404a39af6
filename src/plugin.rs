//! Per-VM state and the moments that record anything: a request starts (route resolved,
//! in-flight gauge up), a stream finishes (gauge down, counters and histograms), and the
//! periodic flush that hands what the VM counted to Envoy's stats.

use crate::config::{Config, ConfigError};
use crate::host::{Host, MetricId, MetricsHost, SharedStore};
use crate::latency::LatencyQuantiles;
use crate::method::Method;
use crate::metrics::handover::{self, Unpublished};
use crate::metrics::{stat_name, Aggregates, Finished, Metric, SeriesLabels};
use crate::openapi::source::{FetchOutcome, FetchRequest, OpenApiSource};
use crate::outcome::OutcomeId;
use crate::outcome::{OutcomeLabels, RouteKind};
use crate::route::{LabelId, Limits, Resolution, RouteResolver, RuleId};

/// One recorded request between its headers and its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub route: LabelId,
    pub rule: Option<RuleId>,
    pub started_ns: Option<u64>,
    /// The in-progress gauge went up for it, so its end brings it down.
    pub gauge_raised: bool,
    pub request_bytes: u64,
    pub response_bytes: u64,
}

#[derive(Debug)]
pub struct Plugin {
    /// One line about the configuration, for the log.
    description: String,
    resolver: RouteResolver,
    outcome_labels: OutcomeLabels,
    aggregates: Aggregates,
    /// Series this VM defined that the shared list (for a module update) does not have yet.
    unpublished: Unpublished,
    /// How much of the shared series list (bytes) this VM has taken over.
    series_taken: usize,
    /// `None` when no quantiles are configured.
    latency: Option<LatencyQuantiles>,
    flush_interval_ms: u64,
    openapi: Option<OpenApiSource>,
    /// `routemeter_openapi_fetches_total` by outcome, `routemeter_openapi_routes`.
    openapi_fetches: [Option<MetricId>; FetchOutcome::LABELS.len()],
    openapi_routes: Option<MetricId>,
}

/// Builds the plugin from configuration bytes and publishes `routemeter_config_invalid`
/// (0 or 1). A rejected configuration is the caller's to log; it must not stop Envoy:
/// Envoy 1.40 refuses the whole bootstrap when `on_configure` fails, whatever the failure
/// policy, so the glue stays loaded as a pass-through and this gauge makes the state visible.
///
/// First it takes over the series VMs of this `vm_id` listed ([`handover`]), so that a
/// module update keeps them, whatever this configuration is: all of them in a new VM
/// (`series_taken` 0), what was added since in a VM configured again (the count of its
/// current configuration, [`Plugin::series_taken`]).
pub fn configure(
    bytes: &[u8],
    series_taken: usize,
    host: &(impl MetricsHost + SharedStore),
) -> Result<Plugin, ConfigError> {
    let series_taken = handover::take_over(host, series_taken);
    let parsed = Config::from_json(bytes);
    let invalid = Metric::ConfigInvalid;
    if let Ok(id) = host.define_metric(invalid.kind(), &stat_name(invalid, &[])) {
        // On a gauge, record sets the value: 1 however many VMs report it.
        let _ = host.record_metric(id, u64::from(parsed.is_err()));
    }
    let mut plugin = Plugin::new(parsed?);
    plugin.series_taken = series_taken;
    Ok(plugin)
}

impl Plugin {
    pub fn new(config: Config) -> Plugin {
        let openapi = match &config.openapi {
            Some(o) => format!("openapi {}{} every {} s", o.cluster, o.path, o.refresh_seconds),
            None => "no openapi".to_string(),
        };
        let description = format!(
            "{} route templates, {} exclusions, {openapi}, learn {}, max_routes {}, max_path_depth {}, use_route_name {}",
            config.rules.len(),
            config.exclusions.len(),
            config.learn,
            config.max_routes,
            config.max_path_depth,
            config.use_route_name
        );
        let limits = Limits::new(config.max_routes as u32, config.max_path_depth, config.learn);
        Plugin {
            description,
            resolver: RouteResolver::new(config.rules, config.exclusions, config.use_route_name, limits),
            outcome_labels: config.outcome_labels,
            aggregates: Aggregates::new(config.histograms, config.duration_buckets, config.size_buckets),
            unpublished: Unpublished::default(),
            series_taken: 0,
            latency: config.latency.as_ref().map(LatencyQuantiles::new),
            flush_interval_ms: config.flush_interval_ms,
            openapi: config.openapi.map(OpenApiSource::new),
            openapi_fetches: [None; FetchOutcome::LABELS.len()],
            openapi_routes: None,
        }
    }

    /// How often the glue should tick.
    pub fn tick_period_ms(&self) -> u64 {
        self.flush_interval_ms
    }

    /// The periodic tick: flush what the VM counted, share its latency window (and publish
    /// the quantiles if it is this VM's turn), adopt what other workers learned, and say
    /// whether the OpenAPI document is due (the glue makes the call).
    pub fn tick(&mut self, now_ns: Option<u64>, host: &impl Host) -> Option<FetchRequest> {
        self.flush(host);
        self.series_taken = handover::take_over(host, self.series_taken);
        if let (Some(latency), Some(now)) = (&mut self.latency, now_ns) {
            let resolver = &self.resolver;
            latency.tick(
                now,
                self.flush_interval_ms,
                |id| resolver.label(id).to_string(),
                resolver.known_labels(),
                host,
            );
        }
        self.resolver.refresh(host);
        self.openapi.as_mut()?.due(now_ns?)
    }

    /// Hands everything counted since the last flush to Envoy's stats (also when the VM
    /// stops), and lists the series it defined for the next module ([`handover`]).
    pub fn flush(&mut self, host: &(impl MetricsHost + SharedStore)) {
        let labels = Labels { resolver: &self.resolver, outcomes: &self.outcome_labels };
        self.aggregates.flush(&labels, &self.unpublished.noting(host));
        self.series_taken = self.unpublished.publish(host, self.series_taken);
    }

    /// How much of the shared series list this VM has taken over ([`handover::take_over`]).
    pub fn series_taken(&self) -> usize {
        self.series_taken
    }

    /// Requests finished and the in-flight change not yet flushed ([`Aggregates::unflushed`]).
    pub fn unflushed(&self) -> (u64, i64) {
        self.aggregates.unflushed()
    }

    /// The VM stops (reconfiguration, shutdown): flush, and take its latency window out of
    /// the shared set so the next publication no longer counts it.
    pub fn stop(&mut self, host: &(impl MetricsHost + SharedStore)) {
        self.flush(host);
        if let Some(latency) = &mut self.latency {
            latency.stop(host);
        }
    }

    /// The host could not make the OpenAPI call.
    pub fn openapi_dispatch_failed(&mut self, now_ns: u64, host: &impl MetricsHost) {
        if let Some(source) = &mut self.openapi {
            let outcome = source.dispatch_failed(now_ns);
            self.openapi_outcome_noted(outcome, host);
        }
    }

    /// The answer to the OpenAPI call: `status` is its `:status` (absent when the call failed
    /// or timed out); `body` reads the body (only called when it will be used).
    pub fn openapi_response(
        &mut self,
        now_ns: u64,
        status: Option<u16>,
        body_size: usize,
        body: impl FnOnce() -> Option<Vec<u8>>,
        host: &impl MetricsHost,
    ) {
        if let Some(source) = &mut self.openapi {
            let outcome = source.on_response(now_ns, status, body_size, body);
            self.openapi_outcome_noted(outcome, host);
        }
    }

    /// [`Plugin::openapi_outcome`], its new series listed for the next module.
    fn openapi_outcome_noted(&mut self, outcome: FetchOutcome, host: &impl MetricsHost) {
        let unpublished = std::mem::take(&mut self.unpublished);
        self.openapi_outcome(outcome, &unpublished.noting(host));
        self.unpublished = unpublished;
    }

    fn openapi_outcome(&mut self, outcome: FetchOutcome, host: &impl MetricsHost) {
        let Some(source) = &self.openapi else { return };
        let from = format!("{}{}", source.config().cluster, source.config().path);
        match &outcome {
            FetchOutcome::Loaded(routes) => {
                log::info!(
                    "openapi: {} route templates from {from} (base path {:?}, {} paths skipped)",
                    routes.templates.len(),
                    routes.base_path,
                    routes.skipped.len()
                );
                for (path, why) in routes.skipped.iter().take(5) {
                    log::info!("openapi: skipped {path}: {why}");
                }
            }
            FetchOutcome::HttpError(code) => {
                log::warn!("openapi: {from} answered {code}; keeping the last good routes")
            }
            FetchOutcome::Unavailable => log::warn!("openapi: no answer from {from}; keeping the last good routes"),
            FetchOutcome::TooLarge(n) => {
                log::warn!("openapi: {from} is {n} bytes, over max_bytes; keeping the last good routes")
            }
            FetchOutcome::Invalid(e) => log::warn!("openapi: {from}: {e}; keeping the last good routes"),
        }
        let slot = FetchOutcome::LABELS.iter().position(|l| *l == outcome.label()).unwrap_or(0);
        let counter = Metric::OpenApiFetches;
        if self.openapi_fetches[slot].is_none() {
            self.openapi_fetches[slot] =
                host.define_metric(counter.kind(), &stat_name(counter, &[outcome.label()])).ok();
        }
        if let Some(id) = self.openapi_fetches[slot] {
            let _ = host.increment_metric(id, 1);
        }
        if let FetchOutcome::Loaded(routes) = outcome {
            self.resolver.set_openapi_templates(routes.templates);
            let gauge = Metric::OpenApiRoutes;
            if self.openapi_routes.is_none() {
                self.openapi_routes = host.define_metric(gauge.kind(), &stat_name(gauge, &[])).ok();
            }
            if let Some(id) = self.openapi_routes {
                let _ = host.record_metric(id, self.resolver.openapi_templates() as u64);
            }
        }
    }

    /// Request headers arrived. `None` for excluded paths: nothing is recorded for them.
    /// `raise_gauge`: raise the in-progress gauge (not for streams first seen at their end).
    pub fn start(
        &mut self,
        method: &[u8],
        path: &[u8],
        now_ns: Option<u64>,
        raise_gauge: bool,
        host: &impl Host,
    ) -> Option<Request> {
        let method = Method::from_bytes(method);
        let Resolution::Route { id: route, rule } = self.resolver.resolve(method, path, host) else {
            return None;
        };
        if raise_gauge {
            self.aggregates.started(route, method);
        }
        Some(Request {
            method,
            route,
            rule,
            started_ns: now_ns,
            gauge_raised: raise_gauge,
            request_bytes: 0,
            response_bytes: 0,
        })
    }

    /// The stream is over at `now_ns` (when the clock answered). `status` is the response
    /// code, 0 when no response was sent; `duration_ns` from request headers to the end,
    /// when known.
    pub fn finish(
        &mut self,
        req: Request,
        status: u16,
        duration_ns: Option<u64>,
        now_ns: Option<u64>,
        host: &impl Host,
    ) {
        if let (Some(latency), Some(d), Some(now)) = (&mut self.latency, duration_ns, now_ns) {
            latency.record(req.route, d, now);
        }
        let labels = Labels { resolver: &self.resolver, outcomes: &self.outcome_labels };
        let finished = Finished {
            route: req.route,
            method: req.method,
            gauge_raised: req.gauge_raised,
            status,
            // Whole milliseconds, rounded up, so `le="25"` holds exactly the requests that
            // took at most 25 ms (rounding down would put a 1.7 ms request under `le="1"`).
            duration_ms: duration_ns.map(|ns| ns.div_ceil(1_000_000)),
            request_bytes: req.request_bytes,
            response_bytes: req.response_bytes,
        };
        // Only `envoy` histograms define series here (their first sample).
        self.aggregates.finished(&finished, &labels, &self.unpublished.noting(host));

        let Some(rule) = req.rule.and_then(|r| self.resolver.rule(r)) else { return };
        let Some(outcome) = rule.outcomes.classify(rule.kind, status) else { return };
        let metric = match rule.kind {
            RouteKind::Upload => Metric::UploadsTotal,
            RouteKind::Download => Metric::DownloadsTotal,
            RouteKind::Plain => return,
        };
        let upload = rule.kind == RouteKind::Upload;
        self.aggregates.outcome(req.route, metric, outcome);
        if upload {
            self.aggregates.upload_size(req.route, req.request_bytes, &labels, &self.unpublished.noting(host));
        }
    }

    pub fn describe(&self) -> &str {
        &self.description
    }

    /// Route labels this VM knows (for tests and diagnostics).
    pub fn known_routes(&self) -> usize {
        self.resolver.known_labels()
    }

    pub fn resolver(&self) -> &RouteResolver {
        &self.resolver
    }

    /// Routes holding a latency window and the bytes those windows hold.
    pub fn latency_footprint(&self) -> (usize, usize) {
        self.latency.as_ref().map_or((0, 0), LatencyQuantiles::footprint)
    }
}

/// Label values for the series the aggregates define.
struct Labels<'a> {
    resolver: &'a RouteResolver,
    outcomes: &'a OutcomeLabels,
}

impl SeriesLabels for Labels<'_> {
    fn route(&self, id: LabelId) -> &str {
        self.resolver.label(id)
    }
    fn outcome(&self, id: OutcomeId) -> &str {
        self.outcomes.label(id)
    }
}
