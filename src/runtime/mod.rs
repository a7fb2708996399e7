//! Cores: one monoio runtime per thread, cross-core hops to a shard's owner, shutdown.
pub mod latch;
pub use latch::Latch;
