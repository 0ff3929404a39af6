//! The one way a series is defined. Every metric goes through [`Registry::define`]: it builds
//! the stat name ([`super::name`]), picks the Envoy type, defines the series once per
//! [`Slot`], and lists what accumulates for the next module ([`Handover`]). Nothing else calls
//! `define_metric`, so no series can miss the hand-over.

use crate::host::{MetricId, MetricKind, MetricsHost, SharedStore};
use crate::shared::Keys;

use super::contract::Metric;
use super::handover::Handover;
use super::name::Part;
use crate::metrics::naming::Naming;

/// Where a series keeps its metric id: empty until first defined (and while defining fails,
/// so that the next use tries again).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Slot(Option<MetricId>);

impl Slot {
    pub fn id(self) -> Option<MetricId> {
        self.0
    }
}

/// The series one plugin's configuration defines in this VM.
#[derive(Debug, Clone)]
pub struct Registry {
    handover: Handover,
    /// How this configuration names its series.
    naming: Naming,
}

impl Registry {
    pub fn new(keys: &Keys) -> Registry {
        Registry { handover: Handover::new(keys), naming: Naming::default() }
    }

    /// A registry for a new configuration of the same plugin in this VM: what it has seen
    /// listed carries over.
    pub fn carry_on(&self) -> Registry {
        self.clone()
    }

    /// The same registry, naming new series this way.
    pub fn with_naming(mut self, naming: Naming) -> Registry {
        self.naming = naming;
        self
    }

    pub fn naming(&self) -> &Naming {
        &self.naming
    }

    /// Defines `part` of `metric` with these label values (in `metric.labels()` order) and
    /// `extra` labels (attribute labels).
    pub fn define(
        &mut self,
        host: &impl MetricsHost,
        metric: Metric,
        (part, values, extra): (Part, &[&str], &[(&str, &str)]),
    ) -> Option<MetricId> {
        let name = self.naming.stat_name(metric, part, values, extra);
        let kind = match part {
            Part::Whole => metric.kind(),
            // Exact histograms are published as counters.
            Part::Bucket(_) | Part::Sum | Part::Count => MetricKind::Counter,
        };
        let id = host.define_metric(kind, &name).ok()?;
        if !metric.is_set_whole() {
            self.handover.note(kind, &name);
        }
        Some(id)
    }

    /// The id in `slot`, defining the series first if needed (`extra`: attribute labels).
    pub fn id(
        &mut self,
        slot: &mut Slot,
        host: &impl MetricsHost,
        (metric, values, extra): (Metric, &[&str], &[(&str, &str)]),
    ) -> Option<MetricId> {
        if slot.0.is_none() {
            slot.0 = self.define(host, metric, (Part::Whole, values, extra));
        }
        slot.0
    }

    /// Defines what other VMs listed ([`Handover::take_over`]).
    pub fn take_over(&mut self, host: &(impl MetricsHost + SharedStore)) {
        self.handover.take_over(host);
    }

    /// Lists what this VM defined ([`Handover::publish`]).
    pub fn publish(&mut self, host: &(impl MetricsHost + SharedStore)) {
        self.handover.publish(host);
    }

    pub fn handover(&self) -> &Handover {
        &self.handover
    }
}
