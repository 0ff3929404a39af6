//! What routemeter emits: the metric [`contract`], how labels are encoded into Envoy stat
//! names ([`name`]), histogram bucket bounds ([`buckets`]), and what the VM counts between
//! flushes ([`aggregate`]), and how its series outlive a module update ([`handover`]).

pub mod aggregate;
pub mod buckets;
pub mod contract;
pub mod handover;
pub mod name;

pub use aggregate::{Aggregates, Finished, HistogramMode, SeriesLabels};
pub use buckets::Bounds;
pub use contract::{LabelKey, Metric, Unit};
pub use name::{part_name, stat_name, Part};
