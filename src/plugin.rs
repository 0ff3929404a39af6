//! Per-VM state and the two moments that record anything: a request starts (route resolved,
//! in-flight gauge up) and a stream finishes (gauge down, counters and histograms).

use crate::config::{Config, ConfigError};
use crate::host::{Host, MetricId, MetricsHost, SharedStore};
use crate::method::Method;
use crate::metrics::{stat_name, Metric, SeriesCache};
use crate::outcome::{OutcomeLabels, RouteKind};
use crate::route::{Resolution, RouteId, RouteResolver, RouteTable, RuleId};

/// One recorded request between its headers and its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    pub method: Method,
    pub route: RouteId,
    pub rule: Option<RuleId>,
    pub started_ns: Option<u64>,
    /// The gauge this request incremented, so the end decrements exactly what was added.
    pub in_progress: Option<MetricId>,
    pub request_bytes: u64,
    pub response_bytes: u64,
}

#[derive(Debug)]
pub struct Plugin {
    /// One line about the configuration, for the log.
    description: String,
    resolver: RouteResolver,
    outcome_labels: OutcomeLabels,
    series: SeriesCache,
}

/// Builds the plugin from configuration bytes and publishes `routemeter_config_invalid`
/// (0 or 1). A rejected configuration is the caller's to log; it must not stop Envoy:
/// Envoy 1.40 refuses the whole bootstrap when `on_configure` fails, whatever the failure
/// policy, so the glue stays loaded as a pass-through and this gauge makes the state visible.
pub fn configure(bytes: &[u8], host: &(impl MetricsHost + SharedStore)) -> Result<Plugin, ConfigError> {
    let parsed = Config::from_json(bytes);
    let invalid = Metric::ConfigInvalid;
    if let Ok(id) = host.define_metric(invalid.kind(), &stat_name(invalid, &[])) {
        // On a gauge, record sets the value: 1 however many VMs report it.
        let _ = host.record_metric(id, u64::from(parsed.is_err()));
    }
    let plugin = Plugin::new(parsed?);
    RouteTable::create_shared_set(host);
    Ok(plugin)
}

impl Plugin {
    pub fn new(config: Config) -> Plugin {
        let description = format!(
            "{} route templates, {} exclusions, max_routes {}, max_path_depth {}, use_route_name {}",
            config.rules.len(),
            config.exclusions.len(),
            config.max_routes,
            config.max_path_depth,
            config.use_route_name
        );
        Plugin {
            description,
            resolver: RouteResolver::new(
                config.rules,
                config.exclusions,
                config.use_route_name,
                config.max_routes,
                config.max_path_depth,
            ),
            outcome_labels: config.outcome_labels,
            series: SeriesCache::default(),
        }
    }

    /// Request headers arrived. `None` for excluded paths: nothing is recorded for them.
    /// `in_flight`: raise the in-progress gauge (not for streams first seen at their end).
    pub fn start(
        &mut self,
        method: &[u8],
        path: &[u8],
        now_ns: Option<u64>,
        in_flight: bool,
        host: &impl Host,
    ) -> Option<InFlight> {
        let method = Method::from_bytes(method);
        let Resolution::Route { id: route, rule } = self.resolver.resolve(method, path, host) else {
            return None;
        };
        let series = self.series.method_series(host, route, self.resolver.label(route), method);
        let in_progress = series.in_progress.filter(|id| in_flight && host.increment_metric(*id, 1).is_ok());
        Some(InFlight {
            method,
            route,
            rule,
            started_ns: now_ns,
            in_progress,
            request_bytes: 0,
            response_bytes: 0,
        })
    }

    /// The stream is over. `status` is the response code, 0 when no response was sent;
    /// `duration_ns` from request headers to the end, when known.
    pub fn finish(&mut self, req: InFlight, status: u16, duration_ns: Option<u64>, host: &impl Host) {
        if let Some(gauge) = req.in_progress {
            let _ = host.increment_metric(gauge, -1);
        }
        let route_label = self.resolver.label(req.route);
        let series = self.series.method_series(host, req.route, route_label, req.method);
        if let Some(id) = series.requests_counter(host, req.method, route_label, status) {
            let _ = host.increment_metric(id, 1);
        }
        if let Some(ns) = duration_ns {
            // Whole milliseconds, rounded up. Envoy keeps integer samples exactly and counts
            // a sample in `le=b` when it is <= b (measured on 1.40), so with rounding up
            // `le="25"` holds exactly the requests that took at most 25 ms, for every integer
            // bound; rounding down would put a 1.7 ms request under `le="1"`.
            record(host, series.duration, ns.div_ceil(1_000_000));
        }
        record(host, series.request_bytes, req.request_bytes);
        record(host, series.response_bytes, req.response_bytes);

        let Some(rule) = req.rule.and_then(|r| self.resolver.rule(r)) else { return };
        let Some(outcome) = rule.outcomes.classify(rule.kind, status) else { return };
        let metric = match rule.kind {
            RouteKind::Upload => Metric::UploadsTotal,
            RouteKind::Download => Metric::DownloadsTotal,
            RouteKind::Plain => return,
        };
        let outcome_label = self.outcome_labels.label(outcome);
        if let Some(id) = self.series.outcome_counter(host, metric, req.route, route_label, outcome, outcome_label) {
            let _ = host.increment_metric(id, 1);
        }
        if rule.kind == RouteKind::Upload {
            record(host, self.series.upload_size(host, req.route, route_label), req.request_bytes);
        }
    }

    pub fn describe(&self) -> &str {
        &self.description
    }

    /// Route labels this VM knows (for tests and diagnostics).
    pub fn known_routes(&self) -> usize {
        self.resolver.known_labels()
    }
}

fn record(host: &impl MetricsHost, id: Option<MetricId>, value: u64) {
    if let Some(id) = id {
        let _ = host.record_metric(id, value);
    }
}
