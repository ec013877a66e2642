//! The seat's answers to ctid's INVITEs: a refusal ends the offer, a 2xx connects it (or, when
//! its offer was withdrawn meanwhile, is ACKed and hung up). Responses are matched to offers by
//! client transaction ([`super::offers`]), never by agent: a seat offered the same call twice
//! answers each INVITE on its own.
//!
//! Must not know: sockets, SQL, the engine's internals.

use super::{CallManager, LegRef, AGENT_DTMF_PT, TU_ID_BASE};
use crate::acd::{CallId, Input};
use crate::media::sdp;
use crate::sip::dialog::Dialog;
use crate::sip::endpoint::ClientTxId;
use crate::sip::message::{Method, Response};
use crate::transport::driver::Command;

impl CallManager {
    pub(super) async fn agent_response(&mut self, tx: ClientTxId, resp: Response) {
        let Some((id, _)) = self.by_client_tx.get(&tx).cloned() else {
            if tx.0 & TU_ID_BASE == 0 && resp.status >= 200 {
                let _ = self.replies.try_send((tx, resp.status));
            } else if (200..300).contains(&resp.status) {
                // A late answer to an INVITE whose call is gone.
                self.stray_answer(tx, &resp).await;
            }
            return;
        };
        if resp.status < 200 {
            return;
        }
        let now = self.now.mono;
        // The agent whose live offer this INVITE is; none once the offer was withdrawn (the
        // 487 to ctid's CANCEL, a 2xx crossing it), even if the agent is ringing again.
        let live = self
            .calls
            .get(&id)
            .and_then(|c| c.offers.agent_of(tx).cloned());
        if resp.status >= 300 {
            self.by_client_tx.remove(&tx);
            self.sent_invites.remove(&tx);
            let Some(agent) = live else {
                return;
            };
            if let Some(call) = self.calls.get_mut(&id) {
                call.offers.remove_tx(tx);
            }
            self.event(
                id,
                "rejected",
                Some(&agent),
                Some(format!("{} {}", resp.status, resp.reason)),
            )
            .await;
            self.offer_failed(now, id, agent, false);
            return;
        }
        // 2xx: the seat answered.
        let Some(call) = self.calls.get(&id) else {
            return self.stray_answer(tx, &resp).await;
        };
        let (Some(agent), Some(leg)) = (live, call.offers.leg_of(tx)) else {
            // A retransmitted 2xx of the connected leg: ACK it again. Else the offer was
            // withdrawn: ACK and hang up.
            let again = call
                .connected
                .as_ref()
                .filter(|c| c.tx == tx)
                .and_then(|c| c.dialog.as_ref().map(|d| (d.ack(1), c.peer)));
            if let Some((ack, peer)) = again {
                self.send(Command::SendStateless {
                    transport: peer.transport,
                    remote: peer.remote,
                    request: ack,
                })
                .await;
                return;
            }
            return self.stray_answer(tx, &resp).await;
        };
        let peer = leg.peer;
        let Ok(mut dialog) = Dialog::from_uac(&leg.invite, &resp) else {
            tracing::warn!(call = %id, agent = %agent, "seat answered without a usable To tag/Contact");
            return self.stray_answer(tx, &resp).await;
        };
        // The endpoint must know the dialog before the seat can send anything in it: once the
        // ACK is out, a BYE may follow at once (and a 481 to it would leave the caller hanging).
        self.send(Command::AddDialog(dialog.key.clone())).await;
        self.pending_ack = Some((id, agent.clone(), peer, dialog.ack(1)));
        self.sent_invites.remove(&tx);
        let answer =
            sdp::parse(&resp.body).and_then(|a| sdp::read_answer(&a, &[0, 8, AGENT_DTMF_PT]));
        match answer {
            Ok(n) => {
                self.by_dialog
                    .insert(dialog.key.clone(), (id, LegRef::Agent(agent.clone())));
                if let Some(leg) = self
                    .calls
                    .get_mut(&id)
                    .and_then(|c| c.offers.leg_of_mut(tx))
                {
                    leg.answer = Some(n);
                    leg.dialog = Some(dialog);
                }
                self.engine
                    .handle(now, Input::OfferAnswered { call: id, agent });
                // Bridge (or drop the offer) before the ACK goes out: see `pending_ack`.
                self.apply_actions().await;
                self.flush_ack(id, None).await;
            }
            Err(e) => {
                tracing::warn!(call = %id, agent = %agent, error = %e, "seat answered with unusable SDP; hanging up on it");
                self.flush_ack(id, None).await;
                let bye = dialog.request(Method::Bye);
                self.send_to(peer, bye).await;
                self.send(Command::RemoveDialog(dialog.key.clone())).await;
                if let Some(call) = self.calls.get_mut(&id) {
                    call.offers.remove_tx(tx);
                }
                self.by_client_tx.remove(&tx);
                self.event(id, "rejected", Some(&agent), Some(format!("bad SDP: {e}")))
                    .await;
                self.offer_failed(now, id, agent, false);
            }
        }
    }

    /// An INVITE to a seat got no final response (Timer B) or its transport failed.
    pub(super) async fn offer_request_failed(&mut self, tx: ClientTxId, reason: &'static str) {
        self.sent_invites.remove(&tx);
        let Some((id, _)) = self.by_client_tx.remove(&tx) else {
            if tx.0 & TU_ID_BASE == 0 {
                let _ = self.replies.try_send((tx, 408));
            }
            return;
        };
        let withdrawn = self.calls.get_mut(&id).and_then(|c| c.offers.remove_tx(tx));
        if let Some((agent, _)) = withdrawn {
            self.event(id, "rejected", Some(&agent), Some(reason.to_string()))
                .await;
            self.offer_failed(self.now.mono, id, agent, true);
        }
    }

    /// Send the ACK owed to a seat of call `id` (to `agent` only, when given), if any.
    pub(super) async fn flush_ack(&mut self, id: CallId, agent: Option<&crate::acd::AgentId>) {
        let owed = self
            .pending_ack
            .as_ref()
            .is_some_and(|(c, a, ..)| *c == id && agent.is_none_or(|x| x == a));
        if !owed {
            return;
        }
        if let Some((_, _, peer, request)) = self.pending_ack.take() {
            self.send(Command::SendStateless {
                transport: peer.transport,
                remote: peer.remote,
                request,
            })
            .await;
        }
    }

    /// A 2xx nobody wants any more (the offer was cancelled or the call is gone): ACK and BYE it,
    /// so no seat is left in a call with nobody.
    pub(super) async fn stray_answer(&mut self, tx: ClientTxId, resp: &Response) {
        self.by_client_tx.remove(&tx);
        let Some((req, peer)) = self.sent_invites.remove(&tx) else {
            return;
        };
        if let Ok(mut d) = Dialog::from_uac(&req, resp) {
            tracing::info!(
                tx = tx.0,
                "a seat answered an INVITE ctid no longer wants: ACK and BYE"
            );
            self.send(Command::SendStateless {
                transport: peer.transport,
                remote: peer.remote,
                request: d.ack(1),
            })
            .await;
            let bye = d.request(Method::Bye);
            self.send_to(peer, bye).await;
        }
    }
}
