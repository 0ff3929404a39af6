//! What routemeter emits: the metric [`contract`], how labels are encoded into Envoy stat
//! names ([`name`]), and the per-VM cache of defined metric ids ([`series`]).

pub mod contract;
pub mod name;
pub mod series;

pub use contract::{LabelKey, Metric, Unit};
pub use name::stat_name;
pub use series::{MethodSeries, SeriesCache};
