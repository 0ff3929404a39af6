//! One plugin configuration in one VM, and the moments that record anything: a request starts
//! (route resolved, attribute labels read, in-flight gauge up), it completes (gauge down,
//! counters and histograms), and the periodic flush that hands what the VM counted to Envoy's
//! stats. [`series`]: which series a request counts in.

pub mod series;

use crate::attribute::AttributeSet;
use crate::config::{Config, ConfigError};
use crate::host::{Host, MetricsHost, RequestHead, SharedStore};
use crate::latency::LatencyQuantiles;
use crate::method::Method;
use crate::metrics::{Aggregates, CompletedRequest, Metric, Part, Registry, SeriesId, SeriesLabels, Slot};
use crate::openapi::fetch_slot::FetchSlot;
use crate::openapi::source::{FetchOutcome, FetchRequest, OpenApiSource};
use crate::route::{LabelId, Limits, Resolution, RouteResolver, RuleId};
use crate::shared::Keys;
use crate::transfer::{OutcomeId, OutcomeLabels, TransferKind};

use series::{SeriesKey, SeriesTable};

/// Series keys one VM may intern (routes times their attribute label sets; the sources bound
/// them far below this).
const MAX_SERIES_KEYS: usize = 100_000;

/// One recorded request between its headers and its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub route: LabelId,
    pub rule: Option<RuleId>,
    /// The route with its attribute labels' values.
    pub series: SeriesId,
    pub started_ns: Option<u64>,
    /// The in-progress gauge went up for it, so its end brings it down.
    pub gauge_raised: bool,
    /// Request body bytes: counted from the body callbacks, or Envoy's count for a stream
    /// first seen at its end.
    pub request_bytes: u64,
    /// False when Envoy could not say how many (a stream first seen at its end).
    pub request_bytes_known: bool,
    pub response_bytes: u64,
}

#[derive(Debug)]
pub struct Plugin {
    /// One line about the configuration, for the log.
    description: String,
    resolver: RouteResolver,
    outcome_labels: OutcomeLabels,
    aggregates: Aggregates,
    registry: Registry,
    /// `None` when no quantiles are configured.
    latency: Option<LatencyQuantiles>,
    flush_interval_ms: u64,
    openapi: Option<OpenApiSource>,
    /// This proxy's turn to fetch the document.
    fetch_slot: FetchSlot,
    /// `routemeter_openapi_fetches_total` by outcome label.
    openapi_fetches: Vec<(&'static str, Slot)>,
    openapi_routes: Slot,
    /// Attribute labels: the global set, then each configured rule's (global and its own).
    attributes: Attributes,
    series: SeriesTable,
    /// Route labels whose duration family times one outcome only (seed 000: successful
    /// conversions): other requests with that label (another method, no rule) are not timed.
    timed_only: Vec<(LabelId, OutcomeId)>,
}

/// The attribute label sets of a configuration, and the headers they read.
#[derive(Debug)]
struct Attributes {
    global: AttributeSet,
    /// By configured rule (OpenAPI rules, after them, have the global set).
    by_rule: Vec<AttributeSet>,
    headers: Vec<String>,
}

impl Attributes {
    /// The set of a request that matched `rule`, and whether the rule has its own.
    fn of(&self, rule: Option<RuleId>) -> (&AttributeSet, Option<RuleId>) {
        match rule.and_then(|r| self.by_rule.get(r).map(|set| (set, r))) {
            Some((set, r)) => (set, Some(r)),
            None => (&self.global, None),
        }
    }
}

/// Builds the plugin from configuration bytes and publishes `routemeter_config_invalid`
/// (0 or 1). A rejected configuration is the caller's to log; it must not stop Envoy:
/// Envoy 1.40 refuses the whole bootstrap when `on_configure` fails, whatever the failure
/// policy, so the glue stays loaded as a pass-through and this gauge makes the state visible.
///
/// First it takes over the series VMs of this plugin listed (`metrics::handover`), so that
/// a module update keeps them, whatever this configuration is: all of them in a new VM, what
/// was added since in a VM configured again (`previous`, the registry of this plugin's
/// configuration the VM had).
pub fn configure(
    bytes: &[u8],
    plugin_name: &str,
    previous: Option<&Registry>,
    host: &(impl MetricsHost + SharedStore),
) -> Result<Plugin, ConfigError> {
    let keys = Keys::for_plugin(plugin_name);
    let mut registry = previous.map_or_else(|| Registry::new(&keys), Registry::carry_on);
    registry.take_over(host);
    let parsed = Config::from_json(bytes);
    if let Some(id) = registry.define(host, Metric::ConfigInvalid, (Part::Whole, &[], &[])) {
        // On a gauge, record sets the value: 1 however many VMs report it.
        let _ = host.record_metric(id, u64::from(parsed.is_err()));
    }
    let mut plugin = Plugin::new(parsed?, &keys);
    plugin.registry = registry.with_naming(plugin.registry.naming().clone());
    Ok(plugin)
}

impl Plugin {
    pub fn new(config: Config, keys: &Keys) -> Plugin {
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
        let learned = (limits, keys.learned_routes());
        let global = AttributeSet::new(config.labels);
        let by_rule = config
            .rules
            .iter()
            .map(|r| AttributeSet::new(global.labels().iter().chain(&r.attributes).cloned().collect()))
            .collect();
        let attributes = Attributes { global, by_rule, headers: config.header_names };
        let resolver = RouteResolver::new(config.rules, config.exclusions, config.use_route_name, learned);
        let timed_only = (0..)
            .map_while(|id| resolver.rule(id).map(|r| (id, r)))
            .filter_map(|(id, r)| Some((resolver.rule_label(id), r.transfer.as_ref()?.durations_of?)))
            .collect();
        Plugin {
            description,
            resolver,
            outcome_labels: config.outcome_labels,
            aggregates: Aggregates::new(config.histograms, config.duration_buckets, config.size_buckets)
                .with_status_label(config.naming.profile.histogram_status_label()),
            registry: Registry::new(keys).with_naming(config.naming),
            latency: config.latency.as_ref().map(|l| LatencyQuantiles::new(l, keys)),
            flush_interval_ms: config.flush_interval_ms,
            openapi: config.openapi.map(OpenApiSource::new),
            fetch_slot: FetchSlot::new(keys),
            openapi_fetches: Vec::new(),
            openapi_routes: Slot::default(),
            attributes,
            series: SeriesTable::new(MAX_SERIES_KEYS),
            timed_only,
        }
    }

    /// How often the glue should tick.
    pub fn tick_period_ms(&self) -> u64 {
        self.flush_interval_ms
    }

    /// The periodic tick: flush what the VM counted, define what other VMs listed, share
    /// its latency window (and publish the quantiles if it is this VM's turn), adopt what
    /// other workers learned, and say whether the OpenAPI document is due (the glue makes
    /// the call).
    pub fn tick(&mut self, now_ns: Option<u64>, host: &impl Host) -> Option<FetchRequest> {
        self.flush(host);
        self.registry.take_over(host);
        if let (Some(latency), Some(now)) = (&mut self.latency, now_ns) {
            let resolver = &self.resolver;
            let labels = (|id| resolver.label(id).to_string(), resolver.known_labels());
            latency.tick(now, self.flush_interval_ms, labels, &mut self.registry, host);
        }
        self.resolver.refresh(host);
        let (source, now) = (self.openapi.as_mut()?, now_ns?);
        let fetch = source.due(now)?;
        // Held for the call's timeout (and a little more), at most.
        let until = now.saturating_add(fetch.timeout_ms.saturating_add(1_000).saturating_mul(1_000_000));
        if !self.fetch_slot.take(host, now, until) {
            source.postpone();
            return None;
        }
        Some(fetch)
    }

    /// Hands everything counted since the last flush to Envoy's stats (also when the VM
    /// stops), and lists the series it defined for the next module.
    pub fn flush(&mut self, host: &(impl MetricsHost + SharedStore)) {
        let labels = LabelSource {
            resolver: &self.resolver,
            outcomes: &self.outcome_labels,
            series: &self.series,
            attributes: &self.attributes,
        };
        self.aggregates.flush(&labels, &mut self.registry, host);
        self.registry.publish(host);
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Requests completed and the in-flight change not yet flushed ([`Aggregates::unflushed`]).
    pub fn unflushed(&self) -> (u64, i64) {
        self.aggregates.unflushed()
    }

    /// The VM stops (reconfiguration, shutdown): flush, and take its latency window out of
    /// the shared set so the next publication no longer counts it.
    pub fn stop(&mut self, host: &(impl MetricsHost + SharedStore)) {
        self.flush(host);
        // Whatever answer is still out, the next VM may fetch.
        self.fetch_slot.give_back(host);
        if let Some(latency) = &mut self.latency {
            latency.stop(host);
        }
    }

    /// The host could not make the OpenAPI call.
    pub fn openapi_dispatch_failed(&mut self, now_ns: u64, host: &(impl MetricsHost + SharedStore)) {
        if let Some(source) = &mut self.openapi {
            let outcome = source.dispatch_failed(now_ns);
            self.openapi_outcome(outcome, host);
        }
    }

    /// The answer to the OpenAPI call: `status` is its `:status` (absent when the call failed
    /// or timed out); `body` is read only when it will be used.
    pub fn openapi_response(
        &mut self,
        now_ns: u64,
        status: Option<u16>,
        body_size: usize,
        body: impl std::io::Read,
        host: &(impl MetricsHost + SharedStore),
    ) {
        if let Some(source) = &mut self.openapi {
            let outcome = source.on_response(now_ns, status, body_size, body);
            self.openapi_outcome(outcome, host);
        }
    }

    fn openapi_outcome(&mut self, outcome: FetchOutcome, host: &(impl MetricsHost + SharedStore)) {
        // The answer was read (or none came): the next VM may fetch.
        self.fetch_slot.give_back(host);
        let Some(source) = &self.openapi else { return };
        let from = format!("{}{}", source.config().cluster, source.config().path);
        match &outcome {
            FetchOutcome::Loaded(routes) => {
                log::info!(
                    "openapi: {} route templates from {from} (base path {:?}, {} paths skipped)",
                    routes.template_count(),
                    routes.base_path,
                    routes.skipped_total
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
        let label = outcome.label();
        let at = match self.openapi_fetches.iter().position(|(l, _)| *l == label) {
            Some(at) => at,
            None => {
                self.openapi_fetches.push((label, Slot::default()));
                self.openapi_fetches.len() - 1
            }
        };
        if let Some((_, slot)) = self.openapi_fetches.get_mut(at) {
            if let Some(id) = self.registry.id(slot, host, (Metric::OpenApiFetches, &[label], &[])) {
                let _ = host.increment_metric(id, 1);
            }
        }
        if let FetchOutcome::Loaded(routes) = outcome {
            let count = routes.template_count();
            self.resolver.set_openapi_templates(routes.rules, count);
            if let Some(id) = self.registry.id(&mut self.openapi_routes, host, (Metric::OpenApiRoutes, &[], &[])) {
                let _ = host.record_metric(id, self.resolver.openapi_templates() as u64);
            }
        }
    }

    /// Request headers arrived. `None` for excluded paths: nothing is recorded for them.
    /// `raise_gauge`: raise the in-progress gauge (not for streams first seen at their end).
    pub fn start(
        &mut self,
        head: &RequestHead,
        now_ns: Option<u64>,
        raise_gauge: bool,
        host: &impl Host,
    ) -> Option<Request> {
        let method = Method::from_bytes(&head.method);
        let Resolution::Route { id: route, rule } = self.resolver.resolve(method, &head.path, host) else {
            return None;
        };
        let (set, owner) = self.attributes.of(rule);
        let combination = (!set.is_empty()).then(|| set.combination(&head.path, &head.headers));
        let series = self.series.id(SeriesKey { route, rule: owner, combination });
        if raise_gauge {
            self.aggregates.started(series, method);
        }
        Some(Request {
            method,
            route,
            rule,
            series,
            started_ns: now_ns,
            gauge_raised: raise_gauge,
            request_bytes: 0,
            request_bytes_known: true,
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
        let labels = LabelSource {
            resolver: &self.resolver,
            outcomes: &self.outcome_labels,
            series: &self.series,
            attributes: &self.attributes,
        };
        let transfer = req.rule.and_then(|r| self.resolver.rule(r)).and_then(|r| r.transfer.as_ref());
        let outcome = transfer.map(|t| (t, t.outcome(status)));
        // A duration family may time one outcome only (seed 000: successful conversions).
        let only = self.timed_only.iter().find(|(label, _)| *label == req.route).map(|(_, o)| *o);
        let timed = only.is_none_or(|only| outcome.is_some_and(|(_, o)| o == only));
        let completed = CompletedRequest {
            series: req.series,
            method: req.method,
            gauge_raised: req.gauge_raised,
            status,
            // Whole milliseconds, rounded up, so `le="25"` holds exactly the requests that
            // took at most 25 ms (rounding down would put a 1.7 ms request under `le="1"`).
            duration_ms: duration_ns.filter(|_| timed).map(|ns| ns.div_ceil(1_000_000)),
            request_bytes: req.request_bytes_known.then_some(req.request_bytes),
            response_bytes: req.response_bytes,
        };
        // Only `envoy` histograms define series here (their first sample).
        self.aggregates.completed(&completed, &labels, &mut self.registry, host);

        let Some((transfer, outcome)) = outcome else { return };
        match transfer.kind {
            TransferKind::Upload => {
                self.aggregates.outcome(req.series, Metric::UploadsTotal, outcome);
                if req.request_bytes_known {
                    self.aggregates.upload_size(req.series, req.request_bytes, &labels, &mut self.registry, host);
                }
            }
            TransferKind::Download => self.aggregates.outcome(req.series, Metric::DownloadsTotal, outcome),
        }
    }

    /// The request headers attribute labels read (asked of the host with the request's head).
    pub fn header_names(&self) -> &[String] {
        &self.attributes.headers
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
struct LabelSource<'a> {
    resolver: &'a RouteResolver,
    outcomes: &'a OutcomeLabels,
    series: &'a SeriesTable,
    attributes: &'a Attributes,
}

impl SeriesLabels for LabelSource<'_> {
    fn route(&self, series: SeriesId) -> &str {
        self.series.key(series).map_or(crate::route::OTHER_LABEL, |k| self.resolver.label(k.route))
    }
    fn attributes(&self, series: SeriesId) -> Vec<(&str, &str)> {
        let Some(key) = self.series.key(series) else { return Vec::new() };
        match key.combination {
            Some(combination) => self.attributes.of(key.rule).0.values(combination),
            None => Vec::new(),
        }
    }
    fn outcome(&self, id: OutcomeId) -> &str {
        self.outcomes.label(id)
    }
}
