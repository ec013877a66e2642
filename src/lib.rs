//! ctid: a SIP call-center daemon. The module map, who owns which state and which way the
//! dependencies point: `docs/design.md`.

pub mod acd;
pub mod admin;
pub mod api;
pub mod app;
pub mod call;
pub mod cli;
pub mod clock;
pub mod config;
pub mod media;
pub mod metrics;
pub mod outbound;
pub mod outbound_metrics;
pub mod report;
pub mod resolve;
pub mod sip;
pub mod stats;
pub mod store;
pub mod table;
pub mod transport;
pub mod trunk;
pub mod web;
