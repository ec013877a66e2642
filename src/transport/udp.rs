//! SIP over UDP: one receive task per socket. Each datagram is one message (RFC 3261 §18.3).

use super::Inbound;
use crate::sip::endpoint::{Flow, Transport};
use crate::sip::parse::{parse_datagram, Limits};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Receive datagrams on `socket` until cancelled, parse them, pass them to the driver.
pub async fn receive(
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    limits: Limits,
    inbound: mpsc::Sender<Inbound>,
    cancel: CancellationToken,
) {
    // One byte more than the limit, so an oversized datagram is seen as such.
    let mut buf = vec![0u8; limits.max_message_size.saturating_add(1).max(2048)];
    loop {
        let (len, remote) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // ICMP errors surface here on some platforms; they are not fatal.
                    tracing::debug!(error = %e, %local, "udp receive error");
                    continue;
                }
            },
        };
        let result = parse_datagram(&buf[..len], &limits);
        let flow = Flow {
            transport: Transport::Udp,
            local,
            remote,
            conn: 0,
        };
        let msg = Inbound::Message {
            flow,
            result: Box::new(result),
        };
        if inbound.send(msg).await.is_err() {
            return;
        }
    }
}
