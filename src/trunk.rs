//! Keeping an eye on the PBX trunk: OPTIONS every `qualify_interval_secs`, answering the PBX's
//! digest challenge with the trunk credentials, and logging when the trunk goes up or down.
//!
//! Must not know: sockets (it talks to the SIP driver through commands), SQL.

use crate::config::Trunk;
use crate::resolve::Resolver;
use crate::sip::build::{new_call_id, new_tag};
use crate::sip::endpoint::{ClientTxId, Transport};
use crate::sip::message::{Method, Request};
use crate::transport::driver::Command;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Where the trunk is reached now. Its host may be a DNS name (A/AAAA, SRV when the URI has no
/// port: see [`crate::resolve`]): resolved when ctid starts and again on every qualify round,
/// so a PBX that moves is followed. Written by the qualifier, read by the dialer.
#[derive(Clone, Debug, Default)]
pub struct TrunkTarget(Arc<RwLock<Option<(Transport, SocketAddr)>>>);

impl TrunkTarget {
    pub fn get(&self) -> Option<(Transport, SocketAddr)> {
        *self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resolve `uri` and keep the answer; a failed lookup keeps the last good target (a DNS
    /// hiccup must not take the trunk away) and is returned as the error.
    pub async fn refresh(
        &self,
        resolver: &Resolver,
        uri: &str,
    ) -> Result<(Transport, SocketAddr), String> {
        let found = resolver.sip_target(uri).await?;
        let mut slot = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if *slot != Some(found) {
            tracing::info!(trunk = %uri, target = %found.1, transport = found.0.as_str(), "trunk address");
            *slot = Some(found);
        }
        Ok(found)
    }
}

/// Results of requests the qualifier sent, routed back by the app.
pub type Replies = mpsc::Receiver<(ClientTxId, u16)>;

/// Send OPTIONS to the trunk periodically until cancelled.
pub async fn qualify(
    trunk: Trunk,
    target: TrunkTarget,
    resolver: Resolver,
    commands: mpsc::Sender<Command>,
    mut replies: Replies,
    cancel: CancellationToken,
) {
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
        if let Err(e) = target.refresh(&resolver, &trunk.uri).await {
            tracing::warn!(trunk = %trunk.uri, error = %e, "cannot resolve the trunk");
        }
        let Some((transport, remote)) = target.get() else {
            if up != Some(false) {
                tracing::warn!(trunk = %trunk.uri, "trunk is down (no address)");
                metrics::gauge!("ctid_trunk_up").set(0.0);
                up = Some(false);
            }
            continue;
        };
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
