//! Tokio transports (RFC 3261 §18) and the task that drives the sans-IO SIP endpoint.
//!
//! Owns: UDP sockets, TCP listeners and connections (framing, limits, slow-loris and idle
//! timeouts, connection cap), and [`driver::SipDriver`], the one task that owns the
//! [`crate::sip::endpoint::Endpoint`]. Messages are parsed in the socket tasks, so parsing runs on
//! every core; the endpoint only sees parsed messages.
//!
//! Must not know: call logic, queues, SQL (store writes arrive as ready-made operations).

pub mod driver;
pub mod tcp;
pub mod udp;

use crate::sip::endpoint::Flow;
use crate::sip::message::Message;
use crate::sip::parse::ParseFailure;
use crate::sip::transaction::Bytes;
use std::net::SocketAddr;
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
    },
    ConnClosed {
        conn: u64,
    },
    /// Dialling `remote` failed; what was queued for it is dropped.
    ConnectFailed {
        remote: SocketAddr,
    },
}
