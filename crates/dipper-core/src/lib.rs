//! Shared vocabulary of dipper: feature schemas, the decoding of events into numeric feature rows, and the errors
//! that name where bad input came from. Every other crate builds on these types; this crate has no I/O of its own.

pub mod row;
pub mod schema;
pub mod time;

pub use row::{DecodeError, MissingPolicy, RowDecoder};
pub use schema::{
    is_unknown_category, FeatureKind, FeatureSchema, FeatureSpec, SchemaError, UNKNOWN_CATEGORY,
};
