//! Media anchored at ctid: RTP/RTCP sockets and the relay between the two legs of a call.
//!
//! Owns: the RTP port range ([`PortPool`]: one even RTP port and its odd RTCP port per leg, given
//! back when the [`LegSockets`] are dropped) and the per-call relay task ([`start_relay`]): symmetric
//! RTP (latching onto where a peer really sends from, for PBXs and phones behind NAT), plausibility
//! checks on every datagram, counters the call can read through its [`RelayHandle`].
//!
//! Must not know: SIP, SDP parsing, dialogs, queues or agents. The call layer reads addresses out
//! of SDP and hands them in as plain [`std::net::SocketAddr`]s.

pub mod ports;
pub mod relay;

pub use ports::{LegSockets, PortPool};
pub use relay::{
    start_relay, start_relay_with_config, DirectionStats, DropStats, RelayConfig, RelayHandle,
    RelayStats, Side,
};

use thiserror::Error;

/// Errors at the media module boundary.
#[derive(Debug, Error)]
pub enum MediaError {
    /// The configured range holds no even RTP port followed by its odd RTCP port (or starts at 0).
    #[error("RTP port range {start}-{end} holds no even/odd port pair")]
    InvalidRange { start: u16, end: u16 },
    /// Every pair in the range is in use here or could not be bound (held by another process).
    #[error("no free RTP/RTCP port pair left in the range")]
    Exhausted,
}
