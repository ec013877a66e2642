//! The transaction user for calls. Until queues and the B2BUA exist (issue "Inbound call
//! center"), an INVITE from a trusted PBX is answered `404` — no dialed number reaches a queue
//! yet — and anything else that reaches the TU is answered so no transaction is left open.
//!
//! Must not know: sockets, SQL.

use crate::sip::build::response_to;
use crate::sip::endpoint::{ClientTxId, Event};
use crate::sip::message::Method;
use crate::transport::driver::Command;
use tokio::sync::mpsc;

/// Serve TU events until the endpoint's event queue closes.
/// Final answers to requests ctid sent go to `replies` (the trunk qualifier), `408` when none came.
pub async fn run(
    mut events: mpsc::Receiver<Event>,
    commands: mpsc::Sender<Command>,
    replies: mpsc::Sender<(ClientTxId, u16)>,
) {
    while let Some(ev) = events.recv().await {
        match ev {
            Event::Request { tx, request, flow } => {
                let status = if request.method == Method::Invite {
                    404
                } else {
                    481
                };
                let mut response = response_to(&request, status, None);
                if status == 404 {
                    response.reason = "Not Found: no queue for this number".into();
                }
                tracing::info!(%flow, method = %request.method, uri = %request.uri, status, "request answered");
                if commands
                    .send(Command::Respond { tx, response })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Event::Response { tx, response } if response.status >= 200 => {
                let _ = replies.try_send((tx, response.status));
            }
            Event::RequestFailed { tx, reason } => {
                tracing::debug!(?tx, reason, "request failed");
                let _ = replies.try_send((tx, 408));
            }
            other => tracing::debug!(event = ?other, "transaction user event"),
        }
    }
}
