//! Thread hand-off: the bounded SPSC ring and the publisher that pushes parsed frames into it.

pub mod publish;
pub mod ring;
