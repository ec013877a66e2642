//! Tokio transports (RFC 3261 §18) and the task that drives the sans-IO SIP endpoint.
//!
//! Owns: UDP sockets, TCP and TLS listeners and connections (framing, admission per source with a
//! reserve for trusted peers, slow-loris and idle timeouts), and [`driver::SipDriver`], the one task that owns the
//! [`crate::sip::endpoint::Endpoint`]. Messages are parsed in the socket tasks, so parsing runs on
//! every core; the endpoint only sees parsed messages.
//!
//! Must not know: call logic, queues, SQL (store writes arrive as ready-made operations).

pub mod driver;
pub mod limits;
pub mod load;
pub mod tcp;
pub mod tls;
pub mod udp;

use crate::sip::endpoint::Flow;
use crate::sip::message::Message;
use crate::sip::parse::ParseFailure;
use crate::sip::transaction::Bytes;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tokio::sync::mpsc;

/// What socket tasks tell the driver.
#[derive(Debug)]
pub enum Inbound {
    Message {
        flow: Flow,
        result: Box<Result<Message, ParseFailure>>,
    },
    /// A TCP connection is up (accepted or dialled); `writer` sends bytes on it.
    ConnOpened {
        conn: u64,
        local: SocketAddr,
        remote: SocketAddr,
        writer: mpsc::Sender<Bytes>,
        /// Set by the driver when the connection carried an authenticated REGISTER (the
        /// connection task sets it itself for a valid message from a trusted peer).
        proven: Arc<AtomicBool>,
    },
    ConnClosed {
        conn: u64,
    },
    /// Dialling `remote` failed; what was queued for it is dropped.
    ConnectFailed {
        remote: SocketAddr,
    },
}
