//! The caller's INVITE transaction as the call layer sees it: its ACK (which confirms the
//! dialog, and releases a BYE ctid held for it), its CANCEL at each stage (waiting, or crossing
//! a seat's answer), and the end of a call whose caller never sent the ACK. The rules live in
//! [`super::answer`]; this module carries them out.
//!
//! Must not know: sockets, SQL, transaction timers (the endpoint reports them).

use super::legs::Peer;
use super::{tag, CallId, CallManager, LegRef};
use crate::acd::{Input, Outcome};
use crate::media::session::{Command as MediaCommand, Side};
use crate::sip::endpoint::{DialogKey, ServerTxId};
use crate::sip::message::{Method, Request};

/// `hangup_cause` of a call ended because the caller never acknowledged ctid's 2xx.
pub(super) const NO_ACK: &str = "no_ack";

/// A BYE to a caller whose ACK has not arrived yet.
pub(super) struct OwedBye {
    key: DialogKey,
    peer: Peer,
    bye: Request,
}

/// The dialog an in-dialog request (ACK, BYE…) from the caller names.
pub(super) fn dialog_key(req: &Request) -> DialogKey {
    DialogKey {
        call_id: req.headers.get("Call-ID").unwrap_or("").to_string(),
        local_tag: tag(req, "To").unwrap_or_default(),
        remote_tag: tag(req, "From").unwrap_or_default(),
    }
}

impl CallManager {
    /// An ACK to a 2xx: it confirms the caller's dialog (and may carry an SDP answer).
    pub(super) async fn caller_ack(&mut self, req: Request) {
        let key = dialog_key(&req);
        let owed = self
            .owed_byes
            .iter()
            .find(|(_, o)| o.key == key)
            .map(|(tx, _)| *tx);
        if let Some(o) = owed.and_then(|tx| self.owed_byes.remove(&tx)) {
            tracing::debug!(call_id = %key.call_id, "caller's ACK arrived: sending the BYE held for it");
            self.send_to(o.peer, o.bye).await;
            return;
        }
        if let Some((id, LegRef::Caller)) = self.by_dialog.get(&key).cloned() {
            self.caller_confirmed(id).await;
        }
        self.ack_with_answer(req).await;
    }

    /// The caller's dialog is confirmed: from now on its RTP is expected, and an early-media
    /// answer counts.
    async fn caller_confirmed(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(count) = call.answer.acked() else {
            return;
        };
        if let Some(m) = &call.media {
            m.send(MediaCommand::Hold {
                side: Side::A,
                held: false,
            });
        }
        if count {
            self.count_answer(id).await;
        }
    }

    /// The caller cancelled its INVITE; the endpoint already answered it 487 (so no 2xx of
    /// ctid's reached the caller).
    pub(super) async fn caller_cancelled(&mut self, tx: ServerTxId) {
        let Some(id) = self.by_server_tx.get(&tx).copied() else {
            return;
        };
        self.bye_sent_by_caller(id);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.answer.cancelled();
        if call.connected.is_none() {
            // Waiting or ringing: the engine cancels the offers and reports the call as left.
            return self
                .engine
                .handle(self.now.mono, Input::CallAbandoned { call: id });
        }
        // The seat's 200 crossed the CANCEL: ctid connected the seat (and ACKed it), but its 2xx
        // to the caller came after the 487. The caller is gone; hang up on the seat.
        tracing::info!(call = %id, "caller hung up as the agent answered: hanging up on the agent");
        let wait = self.now.since(call.entered);
        let queue = call.queue.clone();
        let agent_bye = call
            .connected
            .as_mut()
            .and_then(|c| c.dialog.as_mut().map(|d| (d.request(Method::Bye), c.peer)));
        if let Some((bye, peer)) = agent_bye {
            self.send_to(peer, bye).await;
        }
        self.engine
            .handle(self.now.mono, Input::CallEnded { call: id });
        self.left(id, queue, Outcome::Abandoned, wait, None).await;
    }

    /// ctid's 2xx to the caller was never acknowledged (Timer H/L): the dialog is confirmed now
    /// and ended with a BYE (§13.3.1.4); the call is recorded with cause `no_ack`.
    pub(super) async fn caller_ack_timeout(&mut self, tx: ServerTxId) {
        if let Some(o) = self.owed_byes.remove(&tx) {
            self.send_to(o.peer, o.bye).await;
            return;
        }
        let Some(id) = self.by_server_tx.get(&tx).copied() else {
            return;
        };
        tracing::warn!(call = %id, "caller never acknowledged the answer; ending the call");
        let uncounted = match self.calls.get_mut(&id) {
            Some(call) => {
                call.end_cause = Some(NO_ACK);
                call.answer.ack_timed_out()
            }
            None => return,
        };
        if uncounted {
            self.count_answer(id).await;
        }
        self.hang_up(id, "ctid", Some(NO_ACK.into()), None).await;
    }

    /// Keep `bye` for the caller of the INVITE `tx` until its ACK (or the ACK wait's end).
    pub(super) fn hold_bye(&mut self, tx: ServerTxId, key: DialogKey, peer: Peer, bye: Request) {
        tracing::debug!(call_id = %key.call_id, "BYE to the caller held until its ACK");
        self.owed_byes.insert(tx, OwedBye { key, peer, bye });
    }
}
