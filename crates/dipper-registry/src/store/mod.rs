//! Where the registry's records live: the [`Store`] seam, with the embedded log ([`EmbeddedStore`]) and
//! Kafka ([`KafkaStore`]) behind it.

mod embedded;
mod kafka;

pub(crate) use embedded::now_ms;

pub use embedded::EmbeddedStore;
pub use kafka::{KafkaStore, KafkaStoreConfig};

use crate::wire::RawRecord;
use crate::RegistryError;

/// An append-only, totally ordered sequence of registry records (one topic partition).
pub trait Store: Send {
    /// Names the store in messages, e.g. `kafka 10.0.0.1:9092 topic _dipper_models`.
    fn describe(&self) -> String;

    /// The records at positions `from..` (up to `until` when given) and the position after the last one
    /// read. A store that does not exist yet reads as empty.
    fn read(
        &mut self,
        from: u64,
        until: Option<u64>,
    ) -> Result<(Vec<RawRecord>, u64), RegistryError>;

    /// Appends `records` in order, all or nothing where the store can promise it (the embedded log can;
    /// Kafka cannot, and readers ignore a publish cut short), provided the store still ends at
    /// `expected_end`: otherwise nothing is written and a retriable [`RegistryError::Store`] says another
    /// writer came first. Returns the new end.
    fn append(&mut self, expected_end: u64, records: Vec<RawRecord>) -> Result<u64, RegistryError>;
}

impl<S: Store + ?Sized> Store for Box<S> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn read(
        &mut self,
        from: u64,
        until: Option<u64>,
    ) -> Result<(Vec<RawRecord>, u64), RegistryError> {
        (**self).read(from, until)
    }
    fn append(&mut self, expected_end: u64, records: Vec<RawRecord>) -> Result<u64, RegistryError> {
        (**self).append(expected_end, records)
    }
}
