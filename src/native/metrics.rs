//! The core's series over Envoy's labelled metrics. The core names a series by its stat
//! name (`route=.=/a;.;http_requests_total`); a dynamic module can only define metrics while
//! its filter configuration is made, as a name with label names, and emits a value with
//! label values. So each configuration defines every [`shapes`] its series can take when it
//! is made, and a series is its shape's id plus its label values.
//!
//! Envoy's Prometheus page then shows `http_requests_total{method="GET",route="/a"}`: with
//! the runtime flag `envoy.reloadable_features.dynamic_modules_strip_custom_stat_prefix`
//! the metrics namespace is not written, so the names are the Wasm build's, with no
//! `stats_tags` needed.
//!
//! A configuration goes away (ECDS update, listener drain) while its series live on in the
//! core's hand-over: a series is bound to the configuration that defined it and moves to a
//! live one of the same plugin when its own is gone. Envoy keeps one stat per full name, so
//! the value carries on. Defining a series emits 0 to make the stat exist (the hand-over's
//! promise: a series the old module had is on the page before its next request).

use std::collections::HashMap;

use super::abi::{self, Buffer, ConfigEnvoy, METRICS_SUCCESS};
use crate::host::{HostError, MetricId, MetricKind};
use crate::metrics::shapes::{split, Shape};

/// `HostError` statuses of this glue (Envoy's metrics results are 1-3).
const NO_SHAPE: HostError = HostError(100);
const NO_CONFIGURATION: HostError = HostError(101);
const UNKNOWN_SERIES: HostError = HostError(102);

struct Configuration {
    envoy: usize,
    plugin: String,
    /// Shape -> Envoy's metric id (ids are per kind, per labelled or not).
    ids: HashMap<Shape, usize>,
}

struct Series {
    shape: Shape,
    values: Vec<Box<str>>,
    /// (configuration, Envoy's id) it is emitted through.
    bound: Option<(u32, usize)>,
    plugin: String,
}

#[derive(Default)]
pub struct Metrics {
    configurations: HashMap<u32, Configuration>,
    series: Vec<Series>,
    by_name: HashMap<(MetricKind, String), u32>,
}

/// One emit operation: what it does is the series' kind's (the core's two calls).
#[derive(Debug, Clone, Copy)]
pub enum Op {
    /// Counters add; gauges add or subtract.
    Add(i64),
    /// Gauges are set; histograms record.
    Value(u64),
}

impl Metrics {
    /// A configuration is made: define its shapes (only now can Envoy take definitions).
    pub fn add_configuration(&mut self, root: u32, envoy: ConfigEnvoy, plugin: &str, shapes: Vec<Shape>) {
        let mut ids = HashMap::with_capacity(shapes.len());
        for shape in shapes {
            let labels: Vec<Buffer> = shape.labels.iter().map(|l| Buffer::of(l.as_bytes())).collect();
            let define = match shape.kind {
                MetricKind::Counter => abi::envoy_dynamic_module_callback_http_filter_config_define_counter,
                MetricKind::Gauge => abi::envoy_dynamic_module_callback_http_filter_config_define_gauge,
                MetricKind::Histogram => abi::envoy_dynamic_module_callback_http_filter_config_define_histogram,
            };
            let mut id = 0usize;
            // SAFETY: `envoy` is the configuration Envoy is making; the buffers outlive the call.
            let status =
                unsafe { define(envoy, Buffer::of(shape.name.as_bytes()), labels.as_ptr(), labels.len(), &mut id) };
            if status == METRICS_SUCCESS {
                ids.insert(shape, id);
            } else {
                log::warn!("cannot define {} (Envoy status {status}): its series will not be published", shape.name);
            }
        }
        let configuration = Configuration { envoy: envoy as usize, plugin: plugin.to_string(), ids };
        self.configurations.insert(root, configuration);
    }

    /// A configuration is going away (Envoy destroys its stats scope next): its series move
    /// to the newest live configuration of the same plugin, and each counter and gauge is
    /// emitted there once (+0), so that the new scope holds the stat before the old one lets
    /// it go: Envoy keeps a stat only while a scope holds it, and a series with no traffic
    /// since the change would vanish from the page. (An Envoy histogram cannot be touched
    /// without a sample: `"histograms": "envoy"` series restart when they next get one.)
    pub fn remove_configuration(&mut self, root: u32) {
        self.configurations.remove(&root);
        let moved: Vec<u32> = (0..self.series.len() as u32)
            .filter(|i| self.series.get(*i as usize).is_some_and(|s| s.bound.is_some_and(|(r, _)| r == root)))
            .collect();
        for id in moved {
            if let Some(s) = self.series.get_mut(id as usize) {
                s.bound = None;
                if s.shape.kind != MetricKind::Histogram {
                    let _ = self.emit(MetricId(id), Op::Add(0));
                }
            }
        }
    }

    /// The configuration series of `plugin` are defined through: `root` while it lives, else
    /// the newest live one of the plugin (roots count down).
    fn configuration_for(&self, root: u32, plugin: &str) -> Option<(u32, &Configuration)> {
        match self.configurations.get(&root) {
            Some(c) => Some((root, c)),
            None => {
                let same = self.configurations.iter().filter(|(_, c)| c.plugin == plugin);
                same.min_by_key(|(r, _)| **r).map(|(r, c)| (*r, c))
            }
        }
    }

    /// The series `stat` of `kind`, defined through the configuration `root` (or the one
    /// that replaced it).
    pub fn define(&mut self, (root, plugin): (u32, &str), kind: MetricKind, stat: &str) -> Result<MetricId, HostError> {
        if let Some(id) = self.by_name.get(&(kind, stat.to_string())) {
            return Ok(MetricId(*id));
        }
        let (name, labels) = split(stat).ok_or(NO_SHAPE)?;
        let shape = Shape { kind, name: name.to_string(), labels: labels.iter().map(|(k, _)| k.to_string()).collect() };
        let (root, c) = self.configuration_for(root, plugin).ok_or(NO_CONFIGURATION)?;
        let envoy_id = *c.ids.get(&shape).ok_or(NO_SHAPE)?;
        let values = labels.iter().map(|(_, v)| Box::from(*v)).collect();
        let id = u32::try_from(self.series.len()).map_err(|_| UNKNOWN_SERIES)?;
        self.series.push(Series { shape, values, bound: Some((root, envoy_id)), plugin: c.plugin.clone() });
        self.by_name.insert((kind, stat.to_string()), id);
        if kind != MetricKind::Histogram {
            let _ = self.emit(MetricId(id), Op::Add(0));
        }
        Ok(MetricId(id))
    }

    pub fn emit(&mut self, id: MetricId, op: Op) -> Result<(), HostError> {
        let Metrics { configurations, series, .. } = self;
        let s = series.get_mut(id.0 as usize).ok_or(UNKNOWN_SERIES)?;
        let bound = s.bound.filter(|(root, _)| configurations.contains_key(root));
        let (root, envoy_id) = match bound {
            Some(b) => b,
            None => {
                // Its configuration is gone: the newest live one with its shape, of its own
                // plugin if it has one (Envoy keeps one stat per name, whoever emits it).
                let found = configurations
                    .iter()
                    .filter_map(|(root, c)| c.ids.get(&s.shape).map(|id| (c.plugin != s.plugin, *root, *id)))
                    .min()
                    .map(|(_, root, id)| (root, id));
                if found.is_none() && s.bound.is_some() {
                    log::warn!("{}: no live configuration publishes it any more; its counts are dropped", s.shape.name);
                }
                s.bound = found;
                found.ok_or(NO_CONFIGURATION)?
            }
        };
        let envoy = configurations.get(&root).ok_or(NO_CONFIGURATION)?.envoy as ConfigEnvoy;
        let values: Vec<Buffer> = s.values.iter().map(|v| Buffer::of(v.as_bytes())).collect();
        let (ptr, len) = (values.as_ptr(), values.len());
        // SAFETY: a live configuration (Envoy destroys it only after `config_destroy`, which
        // removes it first); the buffers outlive the call.
        let status = unsafe {
            match (s.shape.kind, op) {
                (MetricKind::Counter, Op::Add(n)) => {
                    abi::envoy_dynamic_module_callback_http_filter_config_increment_counter(
                        envoy,
                        envoy_id,
                        ptr,
                        len,
                        n.max(0) as u64,
                    )
                }
                (MetricKind::Gauge, Op::Add(n)) if n >= 0 => {
                    abi::envoy_dynamic_module_callback_http_filter_config_increment_gauge(
                        envoy, envoy_id, ptr, len, n as u64,
                    )
                }
                (MetricKind::Gauge, Op::Add(n)) => {
                    abi::envoy_dynamic_module_callback_http_filter_config_decrement_gauge(
                        envoy,
                        envoy_id,
                        ptr,
                        len,
                        n.unsigned_abs(),
                    )
                }
                (MetricKind::Gauge, Op::Value(v)) => {
                    abi::envoy_dynamic_module_callback_http_filter_config_set_gauge(envoy, envoy_id, ptr, len, v)
                }
                (MetricKind::Histogram, Op::Value(v)) => {
                    abi::envoy_dynamic_module_callback_http_filter_config_record_histogram_value(
                        envoy, envoy_id, ptr, len, v,
                    )
                }
                _ => return Err(UNKNOWN_SERIES),
            }
        };
        match status {
            METRICS_SUCCESS => Ok(()),
            other => Err(HostError(other)),
        }
    }
}
