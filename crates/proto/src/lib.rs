//! Wire types of the inspector's NATS messages, generated from `proto/inspector/v1`.
//!
//! These are transport types only. Services work with the domain types of
//! `inspector-domain`, which convert to and from these at the edge.
#![allow(missing_debug_implementations, unused_qualifications)]

/// Version 1 of the wire contract (`package inspector.v1`).
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/inspector.v1.rs"));
}

pub use prost;
pub use prost::Message;
pub use prost_types::Timestamp;
