//! Thread hand-off: the bounded SPSC ring, the publisher that pushes parsed frames into it, and the periodic
//! lock-free copies of counters and histograms for the metrics endpoint (`handover`).

pub(crate) mod handover;
pub(crate) mod publish;
pub(crate) mod ring;

pub use publish::{EventSink, FullPolicy, Publisher};
pub use ring::{Consumer, Producer, ring};
