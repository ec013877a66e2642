//! What the call manager does with the ACD engine's decisions: ring a seat, stop ringing it,
//! bridge the legs, and end calls that leave the queue without an agent.

use super::answer::Ending;
use super::legs::{self, AgentOffer, Peer};
use super::{AgentLeg, CallManager};
use crate::acd::{Action, AgentId, CallId, CancelReason, Input, Outcome};
use crate::sip::build::new_tag;
use crate::sip::message::Method;
use crate::store::CallOp;
use crate::transport::driver::Command;
use std::net::SocketAddr;

/// The final status for a caller ctid never answered and ends without a configured cause.
const REFUSAL_STATUS: u16 = 480;

impl CallManager {
    /// Carry out every pending engine action (they may produce more inputs, hence the loop),
    /// then hand on what the board produced.
    pub(super) async fn apply_actions(&mut self) {
        while let Some(action) = self.engine.poll_action() {
            match action {
                Action::Offer { call, agent } => self.offer(call, agent).await,
                Action::CancelOffer {
                    call,
                    agent,
                    reason,
                } => self.cancel_offer(call, agent, reason).await,
                Action::OfferMissed { call, agent } => {
                    tracing::info!(call = %call, agent = %agent, "seat did not answer in time");
                    self.event(call, "missed", Some(&agent), None).await;
                }
                Action::Connected { call, agent, wait } => self.connected(call, agent, wait).await,
                Action::Left {
                    call,
                    queue,
                    outcome,
                    wait,
                    hangup_cause,
                } => self.left(call, queue.0, outcome, wait, hangup_cause).await,
                Action::Moved { call, from, to } => {
                    tracing::info!(call = %call, from = %from, to = %to, "call moved to another queue");
                    if let Some(c) = self.calls.get_mut(&call) {
                        c.queue = to.0.clone();
                    }
                    self.event(call, "moved", None, Some(format!("{from} -> {to}")))
                        .await;
                }
                Action::AgentStateChanged { agent, state } => {
                    tracing::debug!(agent = %agent, state = state.kind(), "agent state");
                    self.board_state(&agent, &state);
                    self.figures
                        .handle_agent_state(agent, state.kind(), self.now);
                }
            }
        }
        self.flush_board().await;
    }

    /// Ring `agent`'s seat for `call`.
    async fn offer(&mut self, id: CallId, agent: AgentId) {
        let now = self.now.mono;
        let binding = self.board.binding(&agent.0, self.now);
        let target = binding
            .as_ref()
            .and_then(|b| legs::binding_target(b).map(|t| (b, t)));
        let Some((binding, (transport, remote))) = target else {
            tracing::warn!(call = %id, agent = %agent, "no reachable registration for the agent");
            self.offer_failed(now, id, agent, false);
            return;
        };
        let Some(call) = self.calls.get(&id) else {
            self.offer_failed(now, id, agent, false);
            return;
        };
        let sockets = match self.pool.allocate().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "no RTP port for an agent leg");
                self.offer_failed(now, id, agent, false);
                return;
            }
        };
        let local_sip = self.settings.local_for(transport, remote);
        let local_rtp = SocketAddr::new(self.pool.ip(), sockets.local_rtp.port());
        let (number, name) = (call.caller_number.clone(), call.caller_name.clone());
        let offer = AgentOffer {
            law: call.caller.negotiated.law,
            dtmf: Some(super::AGENT_DTMF_PT),
            local_rtp,
            session: self.now.wall_ms,
        };
        let invite = legs::invite_agent(
            binding,
            local_sip,
            transport,
            number.as_deref(),
            name.as_deref(),
            &new_tag(),
            &offer,
        );
        let tx = self.tu_id();
        let peer = Peer { transport, remote };
        self.by_client_tx.insert(tx, (id, agent.clone()));
        self.sent_invites.insert(tx, (invite.clone(), peer));
        self.send(Command::SendAs {
            id: tx,
            transport,
            remote,
            request: invite.clone(),
        })
        .await;
        tracing::info!(call = %id, agent = %agent, %remote, "offering the call to a seat");
        self.board.handle_call(&agent, id.0);
        self.publish(super::control::CallEvent::CallOffered {
            call: id.0,
            agent: agent.0.clone(),
        });
        self.event(id, "offered", Some(&agent), None).await;
        let replaced = self.calls.get_mut(&id).and_then(|call| {
            call.offers.insert(
                tx,
                agent.clone(),
                AgentLeg {
                    agent,
                    tx,
                    invite,
                    peer,
                    sockets: Some(sockets),
                    local_rtp,
                    dialog: None,
                    answer: None,
                    sdp_version: 1,
                },
            )
        });
        if let Some((old, _)) = replaced {
            // The engine never offers one call twice to an agent at once; should it, the
            // older INVITE must not ring on.
            tracing::warn!(call = %id, "a second offer to the same seat replaces the first");
            self.send(Command::Cancel { tx: old }).await;
        }
    }

    /// Stop ringing a seat: CANCEL its INVITE, or BYE it if it answered meanwhile.
    async fn cancel_offer(&mut self, id: CallId, agent: AgentId, reason: CancelReason) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some((_, leg)) = call.offers.remove_agent(&agent) else {
            return;
        };
        tracing::debug!(call = %id, agent = %agent, ?reason, "cancelling the offer");
        match leg.dialog {
            Some(mut d) => {
                // It answered just before: ACK (if still owed), then hang up on it.
                self.flush_ack(id, Some(&agent)).await;
                self.by_dialog.remove(&d.key);
                let _ = self.commands.try_send(Command::RemoveDialog(d.key.clone()));
                let bye = d.request(Method::Bye);
                self.send_to(leg.peer, bye).await;
            }
            None => self.send(Command::Cancel { tx: leg.tx }).await,
        }
    }

    /// The seat answered and the engine confirmed: bridge the media of both legs.
    async fn connected(&mut self, id: CallId, agent: AgentId, wait: std::time::Duration) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some((_, mut leg)) = call.offers.remove_agent(&agent) else {
            return;
        };
        let now = self.now.mono;
        call.answered = Some(now);
        call.answer_wait = Some(wait);
        if let Some(ok) = call.answer.seat_answered() {
            // Early media: the caller is answered now, when the agent is; it counts as answered
            // once the caller ACKs (see `answer`).
            let tx = call.server_tx;
            let _ = self
                .commands
                .try_send(Command::Respond { tx, response: ok });
        }
        let agent_media = (leg.sockets.take(), leg.answer.clone());
        tracing::info!(call = %id, agent = %agent, wait_ms = wait.as_millis() as u64, "call answered and bridged");
        call.connected = Some(leg);
        let uncounted = call.answer.uncounted();
        self.board.handle_call(&agent, id.0);
        if !uncounted {
            self.count_answer(id).await;
        }
        self.bridge_media(id, agent_media.0, agent_media.1).await;
        self.flush_ack(id, Some(&agent)).await;
    }

    /// Count a bridged call as answered: figures, board, live event, record.
    pub(super) async fn count_answer(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.answer.take_uncounted();
        let (Some(wait), Some(agent)) = (
            call.answer_wait,
            call.connected.as_ref().map(|c| c.agent.clone()),
        ) else {
            return;
        };
        let wait_ms = wait.as_millis() as u64;
        let in_target = self.figures.handle_answered(&call.queue, wait, self.now);
        self.board.handle_answered(&agent);
        self.publish(super::control::CallEvent::CallAnswered {
            call: id.0,
            agent: agent.0.clone(),
            wait_secs: wait.as_secs_f64(),
        });
        self.record(CallOp::Answered {
            id: id.0,
            answered_at_ms: self.now.wall_ms,
            agent: agent.0.clone(),
            wait_ms,
            in_target,
        })
        .await;
        self.event(id, "answered", Some(&agent), None).await;
    }

    /// The call left the queue without being answered (or was answered: nothing to do here).
    pub(super) async fn left(
        &mut self,
        id: CallId,
        queue: String,
        outcome: Outcome,
        wait: std::time::Duration,
        cause: Option<u16>,
    ) {
        let (kind, name) = match &outcome {
            Outcome::Answered => return,
            Outcome::Abandoned => ("abandoned", "abandoned"),
            Outcome::Timeout => ("timeout", "timeout"),
            Outcome::Overflow(_) => ("overflow", "overflow"),
            Outcome::Rejected => ("rejected", "rejected"),
        };
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let caller_gone = call.caller_ended;
        let end_cause = call.end_cause;
        // Never answered (refused on arrival, or early media): the caller gets a final error
        // with this status instead of a BYE (see `bye_caller`).
        let cause = match (cause, call.answer.unanswered() && !caller_gone) {
            (None, true) => Some(REFUSAL_STATUS),
            (c, _) => c,
        };
        let callback = end_cause == Some("callback_requested");
        let (kind, name) = if callback {
            ("callback_requested", "callback_requested")
        } else {
            (kind, name)
        };
        tracing::info!(call = %id, queue, outcome = name, wait_ms = wait.as_millis() as u64, "call left the queue");
        self.event(id, kind, None, cause.map(|c| format!("SIP {c}")))
            .await;
        let short = self.figures.handle_left(&queue, name, wait, self.now);
        self.publish(super::control::CallEvent::CallLeft {
            call: id.0,
            queue: queue.clone(),
            outcome: name.to_string(),
            wait_secs: wait.as_secs_f64(),
        });
        let by = if end_cause.is_some() || !caller_gone {
            "ctid"
        } else {
            "caller"
        };
        self.end_record(
            id,
            name,
            Some(queue),
            Some(wait),
            None,
            short,
            by,
            end_cause.map(str::to_string),
            cause,
        )
        .await;
        if callback && self.confirm_callback(id) {
            return;
        }
        if !caller_gone {
            self.bye_caller(id, cause).await;
        }
        self.drop_call(id);
    }

    /// Hang up a call from ctid's side (no ACK, shutdown…), whatever its state.
    pub(super) async fn hang_up(
        &mut self,
        id: CallId,
        by: &'static str,
        reason: Option<String>,
        code: Option<u16>,
    ) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.phase != super::media::Phase::Live {
            // Survey or callback confirmation: the call itself is already recorded.
            self.end_post_call(id).await;
        } else if call.connected.is_some() {
            self.finish(id, by, reason, code).await;
            self.engine
                .handle(self.now.mono, Input::CallEnded { call: id });
        } else {
            self.bye_caller(id, code).await;
            self.engine
                .handle(self.now.mono, Input::CallAbandoned { call: id });
        }
    }

    /// End a bridged call: BYE whichever leg did not hang up, record, release media.
    pub(super) async fn finish(
        &mut self,
        id: CallId,
        by: &'static str,
        reason: Option<String>,
        code: Option<u16>,
    ) {
        if self
            .calls
            .get_mut(&id)
            .is_some_and(|c| c.answer.take_uncounted())
        {
            // Ended before the caller's ACK (the seat hung up at once, shutdown…).
            self.count_answer(id).await;
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let talk = call.answered.map(|a| self.now.since(a));
        let wait = call.answer_wait;
        let agent = call.connected.as_ref().map(|c| c.agent.clone());
        let queue = call.queue.clone();
        let agent_bye = if by == "agent" {
            None
        } else {
            call.connected
                .as_mut()
                .and_then(|c| c.dialog.as_mut().map(|d| (d.request(Method::Bye), c.peer)))
        };
        if let Some((bye, peer)) = agent_bye {
            self.send_to(peer, bye).await;
        }
        let survey = by == "agent" && self.start_survey(id);
        if !survey {
            self.bye_caller(id, code).await;
        }
        tracing::info!(call = %id, by, "call ended");
        self.publish(super::control::CallEvent::CallEnded {
            call: id.0,
            by: by.to_string(),
        });
        if let Some(t) = talk {
            self.figures.handle_talk(&queue, t, self.now);
        }
        self.event(id, "ended", agent.as_ref(), reason.clone())
            .await;
        self.end_record(
            id,
            "answered",
            Some(queue),
            wait,
            talk,
            None,
            by,
            reason,
            code,
        )
        .await;
        if survey {
            // The agent's leg is over; the caller stays for the survey.
            if let Some(leg) = self.calls.get_mut(&id).and_then(|c| c.connected.take()) {
                self.by_client_tx.remove(&leg.tx);
                if let Some(d) = &leg.dialog {
                    self.by_dialog.remove(&d.key);
                    self.send(Command::RemoveDialog(d.key.clone())).await;
                }
            }
        } else {
            self.drop_call(id);
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn end_record(
        &self,
        id: CallId,
        outcome: &'static str,
        queue: Option<String>,
        wait: Option<std::time::Duration>,
        talk: Option<std::time::Duration>,
        short_abandon: Option<bool>,
        by: &'static str,
        cause: Option<String>,
        code: Option<u16>,
    ) {
        self.record(CallOp::Ended {
            id: id.0,
            ended_at_ms: self.now.wall_ms,
            outcome,
            queue,
            wait_ms: wait.map(|w| w.as_millis() as u64),
            talk_ms: talk.map(|t| t.as_millis() as u64),
            short_abandon,
            hangup_by: Some(by),
            hangup_cause: cause,
            sip_code: code,
        })
        .await;
    }

    /// BYE to the caller (ctid ends the call), with a Reason header carrying `cause`.
    pub(super) async fn bye_caller(&mut self, id: CallId, cause: Option<u16>) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.caller_ended {
            return;
        }
        let ending = call.answer.end(cause.unwrap_or(REFUSAL_STATUS));
        call.caller_ended = true;
        let (tx, key, peer) = (
            call.server_tx,
            call.caller.dialog.key.clone(),
            call.caller.peer,
        );
        let bye = matches!(ending, Ending::Bye | Ending::ByeAfterAck).then(|| {
            let mut bye = call.caller.dialog.request(Method::Bye);
            if let Some(c) = cause {
                bye.headers.push("Reason", format!("SIP ;cause={c}"));
            }
            bye
        });
        self.by_dialog.remove(&key);
        self.send(Command::RemoveDialog(key.clone())).await;
        match (ending, bye) {
            // Never answered (refused on arrival, early media): a final error, not a BYE.
            (Ending::Refuse(response), _) => self.send(Command::Respond { tx, response }).await,
            (Ending::Bye, Some(bye)) => self.send_to(peer, bye).await,
            (Ending::ByeAfterAck, Some(bye)) => self.hold_bye(tx, key, peer, bye),
            _ => {}
        }
    }

    /// A waiting call ended by ctid's shutdown: BYE the caller, cancel ringing seats, record
    /// `interrupted`.
    pub(super) async fn interrupt(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let wait = self.now.since(call.entered);
        let queue = call.queue.clone();
        let offers: Vec<AgentId> = call.offers.agents();
        for agent in offers {
            self.cancel_offer(id, agent, CancelReason::CallerGone).await;
        }
        self.bye_caller(id, Some(503)).await;
        self.event(id, "interrupted", None, Some("ctid shutting down".into()))
            .await;
        self.end_record(
            id,
            "interrupted",
            Some(queue),
            Some(wait),
            None,
            None,
            "ctid",
            Some("ctid shutting down".into()),
            Some(503),
        )
        .await;
        self.drop_call(id);
    }

    /// Forget a call: its maps, its dialogs, its relay (dropping the handle stops it).
    pub(super) fn drop_call(&mut self, id: CallId) {
        let Some(call) = self.calls.remove(&id) else {
            return;
        };
        self.by_dialog.remove(&call.caller.dialog.key);
        let _ = self
            .commands
            .try_send(Command::RemoveDialog(call.caller.dialog.key.clone()));
        for leg in call.offers.legs().chain(call.connected.iter()) {
            self.by_client_tx.remove(&leg.tx);
            self.sent_invites.remove(&leg.tx);
            if let Some(d) = &leg.dialog {
                self.by_dialog.remove(&d.key);
                let _ = self.commands.try_send(Command::RemoveDialog(d.key.clone()));
            }
        }
        self.by_server_tx.remove(&call.server_tx);
    }
}
