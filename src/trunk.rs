//! Keeping an eye on the PBX trunk: OPTIONS every `qualify_interval_secs`, answering the PBX's
//! digest challenge with the trunk credentials, and logging when the trunk goes up or down.
//!
//! Must not know: sockets (it talks to the SIP driver through commands), SQL.

use crate::config::Trunk;
use crate::sip::build::{new_call_id, new_tag};
use crate::sip::endpoint::{ClientTxId, Transport};
use crate::sip::message::{Method, Request};
use crate::sip::uri::Uri;
use crate::transport::driver::Command;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Where the trunk URI points: transport and socket address (the host must be an IP literal).
pub fn target(uri: &str) -> Option<(Transport, SocketAddr)> {
    let Ok(Uri::Sip(u)) = Uri::parse(uri) else {
        return None;
    };
    let ip = u.host.trim_matches(['[', ']']).parse().ok()?;
    let transport = match u.params.value("transport") {
        Some(t) if t.eq_ignore_ascii_case("tcp") => Transport::Tcp,
        _ => Transport::Udp,
    };
    Some((transport, SocketAddr::new(ip, u.port.unwrap_or(5060))))
}

/// Results of requests the qualifier sent, routed back by the app.
pub type Replies = mpsc::Receiver<(ClientTxId, u16)>;

/// Send OPTIONS to the trunk periodically until cancelled.
pub async fn qualify(
    trunk: Trunk,
    commands: mpsc::Sender<Command>,
    mut replies: Replies,
    cancel: CancellationToken,
) {
    let Some((transport, remote)) = target(&trunk.uri) else {
        return;
    };
    if trunk.qualify_interval_secs == 0 {
        return;
    }
    let credentials = trunk.username.clone().zip(trunk.password.clone());
    let call_id = new_call_id("ctid");
    let tag = new_tag();
    let mut up: Option<bool> = None;
    let mut seq = 1u32;
    let mut tick = tokio::time::interval(Duration::from_secs(trunk.qualify_interval_secs));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let mut req = Request::new(Method::Options, trunk.uri.clone());
        req.headers
            .push("From", format!("<sip:ctid@ctid.invalid>;tag={tag}"));
        req.headers.push("To", format!("<{}>", trunk.uri));
        req.headers.push("Call-ID", call_id.clone());
        req.headers.push("CSeq", format!("{seq} OPTIONS"));
        seq = seq.wrapping_add(2);
        let (reply, id) = oneshot::channel();
        let cmd = Command::Send {
            transport,
            remote,
            request: req,
            credentials: credentials.clone(),
            reply,
        };
        if commands.send(cmd).await.is_err() {
            return;
        }
        let Ok(id) = id.await else { return };
        // Wait for this request's final answer (ignore stragglers of earlier ones).
        let status = loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = replies.recv() => match r {
                    Some((rid, status)) if rid == id => break status,
                    Some(_) => continue,
                    None => return,
                },
            }
        };
        let now_up = (200..300).contains(&status);
        if up != Some(now_up) {
            if now_up {
                tracing::info!(trunk = %trunk.uri, status, "trunk is up");
            } else {
                tracing::warn!(trunk = %trunk.uri, status, "trunk is down");
            }
            metrics::gauge!("ctid_trunk_up").set(if now_up { 1.0 } else { 0.0 });
            up = Some(now_up);
        }
    }
}
