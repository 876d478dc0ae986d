//! Thread hand-off: the bounded SPSC ring and the publisher that pushes parsed frames into it.

pub(crate) mod publish;
pub(crate) mod ring;

pub use publish::{EventSink, FullPolicy, Publisher};
pub use ring::{Consumer, Producer, ring};
