//! What routemeter emits: the metric [`contract`], how labels are encoded into Envoy stat
//! names ([`name`]), histogram bucket bounds ([`buckets`]), the one place series are defined
//! ([`registry`]) and how they outlive a module update ([`handover`]), and what the VM counts
//! between flushes ([`aggregate`]); the [`shapes`] of a configuration's series, for hosts that
//! define metrics up front.

pub mod aggregate;
pub mod buckets;
pub mod contract;
pub mod handover;
pub mod label_value;
pub mod name;
pub mod naming;
pub mod registry;
pub mod shapes;

pub use aggregate::{Aggregates, CompletedRequest, HistogramMode, SeriesId, SeriesLabels};
pub use buckets::Bounds;
pub use contract::{LabelKey, Metric, Unit};
pub use name::Part;
pub use naming::{part_name, stat_name};
pub use registry::{Registry, Slot};
