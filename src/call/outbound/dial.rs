//! Dialing an outbound attempt: ring the reserved agent's phone, then, once the agent is on the
//! line, the customer through the trunk (digest credentials when challenged), and bridge the
//! customer's answer into the agent's media session.
//!
//! Must not know: SQL, sockets, SIP parsing.

use super::ending::with_cseq_of;
use super::*;

impl CallManager {
    /// Ring the reserved `agent` for `attempt` (the customer is dialed once the agent answers).
    /// The call's id, or `None` when the attempt was given back (agent no longer reserved, no
    /// registration, no media port).
    pub(super) async fn ob_dial(
        &mut self,
        agent: AgentId,
        attempt: AttemptId,
        contact_name: Option<String>,
        number: String,
        list_name: String,
    ) -> Option<CallId> {
        let give_back = |m: &mut CallManager, why: &str| {
            tracing::info!(agent = %agent, %attempt, why, "outbound attempt given back before dialing");
            if let Some(d) = &m.outbound {
                d.result(attempt, AttemptResult::Skipped, None, m.now.wall_ms);
            }
            m.ob_cool_down(&agent, None);
        };
        if self.engine.agent_state(&agent) != Some(&AgentState::Paused(PAUSE_REASON.into())) {
            give_back(self, "agent no longer reserved");
            return None;
        }
        let binding = self.board.binding(&agent.0, self.now);
        let Some((binding, (transport, remote))) = binding
            .as_ref()
            .and_then(|b| legs::binding_target(b).map(|t| (b, t)))
        else {
            give_back(self, "no reachable registration");
            return None;
        };
        let sockets = match self.pool.allocate().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "no RTP port for an outbound agent leg");
                give_back(self, "no media port");
                return None;
            }
        };
        let local_sip = self.settings.local_for(transport, remote);
        let local_rtp = SocketAddr::new(self.pool.ip(), sockets.local_rtp.port());
        let offer = AgentOffer {
            law: 0,
            dtmf: Some(AGENT_DTMF_PT),
            local_rtp,
            session: self.now.wall_ms,
        };
        let invite = legs::invite_agent(
            binding,
            local_sip,
            transport,
            Some(&number),
            contact_name.as_deref(),
            &new_tag(),
            &offer,
        );
        let id = CallId(self.next_call);
        self.next_call += 1;
        let tx = self.tu_id();
        let peer = Peer { transport, remote };
        let customer_call_id = new_call_id("ctid");
        let caller_id = self.ob_caller_id();
        self.record(CallOp::Started {
            id: id.0,
            sip_call_id: customer_call_id.clone(),
            direction: "outbound",
            caller_number: Some(caller_id),
            caller_name: contact_name.clone(),
            dialed_number: Some(number.clone()),
            queue: None,
            entered_at_ms: self.now.wall_ms,
        })
        .await;
        self.send(Command::SendAs {
            id: tx,
            transport,
            remote,
            request: invite.clone(),
        })
        .await;
        tracing::info!(call = %id, agent = %agent, %attempt, list = %list_name, "outbound: ringing the agent");
        self.event(
            id,
            "offered",
            Some(&agent),
            Some(format!("attempt {attempt}")),
        )
        .await;
        let d = self.outbound.as_mut()?;
        d.ask(StoreReq::Link {
            attempt,
            call: id.0,
        });
        d.by_tx.insert(tx, (id, Leg::Agent));
        d.invites.insert(tx, (invite.clone(), peer));
        d.calls.insert(
            id,
            OCall {
                attempt,
                list: list_name,
                agent: agent.clone(),
                number,
                phase: Phase::AgentRinging,
                agent_leg: OLeg {
                    tx,
                    invite,
                    peer,
                    sockets: Some(sockets),
                    dialog: None,
                    answer: None,
                },
                customer: None,
                customer_call_id,
                media: None,
                ringing_recorded: false,
                dialed: None,
                answered: None,
            },
        );
        d.after(self.now, AGENT_RING, Msg::AgentRingTimeout(id));
        self.board.handle_call(&agent, id.0);
        Some(id)
    }

    /// The number the customer sees: the trunk's username, else `ctid`.
    pub(super) fn ob_caller_id(&self) -> String {
        self.outbound
            .as_ref()
            .and_then(|d| d.settings.trunk.as_ref())
            .and_then(|t| t.username.clone())
            .unwrap_or_else(|| "ctid".into())
    }

    /// The agent answered: ACK, start its media (silence), then call the customer.
    pub(super) async fn ob_agent_answered(&mut self, id: CallId, tx: ClientTxId, resp: Response) {
        let Some(d) = self.outbound.as_mut() else {
            return;
        };
        d.invites.remove(&tx);
        let Some(c) = d
            .calls
            .get_mut(&id)
            .filter(|c| c.phase == Phase::AgentRinging)
        else {
            return;
        };
        let peer = c.agent_leg.peer;
        let Ok(mut dialog) = Dialog::from_uac(&c.agent_leg.invite, &resp) else {
            tracing::warn!(call = %id, "agent answered without a usable To tag/Contact");
            return self.ob_agent_failed(id, None).await;
        };
        let key = dialog.key.clone();
        d.by_dialog.insert(key.clone(), (id, Leg::Agent));
        self.send(Command::AddDialog(key.clone())).await;
        self.send(Command::SendStateless {
            transport: peer.transport,
            remote: peer.remote,
            request: dialog.ack(1),
        })
        .await;
        let answer =
            sdp::parse(&resp.body).and_then(|a| sdp::read_answer(&a, &[0, 8, AGENT_DTMF_PT]));
        let n = match answer {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(call = %id, error = %e, "agent answered with unusable SDP");
                let bye = dialog.request(Method::Bye);
                self.send_to(peer, bye).await;
                self.send(Command::RemoveDialog(key.clone())).await;
                if let Some(d) = self.outbound.as_mut() {
                    d.by_dialog.remove(&key);
                }
                return self.ob_agent_failed(id, Some(488)).await;
            }
        };
        let notices = self.notices.clone();
        let cancel = self.cancel.child_token();
        let Some(d) = self.outbound.as_mut() else {
            return;
        };
        let session_cfg = d.settings.session.clone();
        let Some(c) = d.calls.get_mut(&id) else {
            return;
        };
        c.agent_leg.dialog = Some(dialog);
        c.agent_leg.answer = Some(n.clone());
        if let Some(sockets) = c.agent_leg.sockets.take() {
            let session = start_session(id.0, leg_media(sockets, &n), session_cfg, notices, cancel);
            session.send(Media::Background(None));
            c.media = Some(session);
        }
        c.phase = Phase::Dialing;
        let agent = c.agent.clone();
        tracing::info!(call = %id, agent = %agent, "agent on the line; calling the customer");
        self.event(id, "agent_answered", Some(&agent), None).await;
        self.ob_dial_customer(id, n.law).await;
    }

    /// INVITE the customer through the trunk.
    pub(super) async fn ob_dial_customer(&mut self, id: CallId, law: u8) {
        let Some(trunk) = self
            .outbound
            .as_ref()
            .and_then(|d| d.settings.trunk.clone())
        else {
            return self
                .ob_unanswered(id, AttemptResult::Failed, None, "ctid")
                .await;
        };
        let target = self
            .outbound
            .as_ref()
            .and_then(|d| d.settings.trunk_target.get());
        let Some((transport, remote)) = target else {
            tracing::error!(uri = %trunk.uri, "the trunk has no address (its host did not resolve)");
            return self
                .ob_unanswered(id, AttemptResult::Failed, None, "ctid")
                .await;
        };
        let sockets = match self.pool.allocate().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "no RTP port for a customer leg");
                return self
                    .ob_unanswered(id, AttemptResult::Failed, Some(503), "ctid")
                    .await;
            }
        };
        let local_sip = self.settings.local_for(transport, remote);
        let local_rtp = SocketAddr::new(self.pool.ip(), sockets.local_rtp.port());
        let caller_id = self.ob_caller_id();
        let Some(c) = self.outbound.as_ref().and_then(|d| d.calls.get(&id)) else {
            return;
        };
        let host = match crate::sip::uri::Uri::parse(&trunk.uri) {
            Ok(crate::sip::uri::Uri::Sip(u)) => match u.port {
                Some(p) => format!("{}:{p}", u.host),
                None => u.host,
            },
            _ => remote.to_string(),
        };
        let mut invite = Request::new(Method::Invite, format!("sip:{}@{host}", c.number));
        invite.headers.push(
            "From",
            format!("<sip:{caller_id}@{}>;tag={}", local_sip.ip(), new_tag()),
        );
        invite
            .headers
            .push("To", format!("<sip:{}@{host}>", c.number));
        invite.headers.push("Call-ID", c.customer_call_id.clone());
        invite.headers.push("CSeq", "1 INVITE");
        invite.headers.push(
            "Contact",
            format!("<{}>", legs::contact_uri(local_sip, transport)),
        );
        invite.headers.push("Content-Type", "application/sdp");
        let other = if law == 8 { 0 } else { 8 };
        invite.body = sdp::build_offer(
            local_rtp,
            &[law, other],
            Some(AGENT_DTMF_PT),
            20,
            self.now.wall_ms,
            1,
        )
        .into_bytes();
        let (list, number) = (c.list.clone(), c.number.clone());
        let credentials = trunk.username.clone().zip(trunk.password.clone());
        let (reply, got) = oneshot::channel();
        self.send(Command::Send {
            transport,
            remote,
            request: invite.clone(),
            credentials,
            reply,
        })
        .await;
        let Ok(tx) = got.await else {
            return self
                .ob_unanswered(id, AttemptResult::Failed, None, "ctid")
                .await;
        };
        crate::metrics::outbound_dial(&list);
        tracing::info!(call = %id, %remote, "outbound: calling the customer");
        self.event(id, "dialing", None, Some(number)).await;
        let Some(d) = self.outbound.as_mut() else {
            return;
        };
        let peer = Peer { transport, remote };
        d.by_tx.insert(tx, (id, Leg::Customer));
        d.invites.insert(tx, (invite.clone(), peer));
        let timeout = d.settings.cfg.dial_timeout();
        d.after(self.now, timeout, Msg::DialTimeout(id));
        if let Some(c) = d.calls.get_mut(&id) {
            c.dialed = Some(self.now.mono);
            c.customer = Some(OLeg {
                tx,
                invite,
                peer,
                sockets: Some(sockets),
                dialog: None,
                answer: None,
            });
        }
    }

    /// The customer answered: ACK, bridge, record `answered`.
    pub(super) async fn ob_customer_answered(
        &mut self,
        id: CallId,
        tx: ClientTxId,
        resp: Response,
    ) {
        let live = self
            .outbound
            .as_ref()
            .and_then(|d| d.calls.get(&id))
            .is_some_and(|c| c.phase == Phase::Dialing);
        if !live {
            return self.ob_stray(tx, &resp).await;
        }
        let Some(d) = self.outbound.as_mut() else {
            return;
        };
        d.invites.remove(&tx);
        let Some(c) = d.calls.get_mut(&id) else {
            return;
        };
        let Some(leg) = c.customer.as_mut() else {
            return;
        };
        let peer = leg.peer;
        let invite = with_cseq_of(leg.invite.clone(), &resp);
        let Ok(mut dialog) = Dialog::from_uac(&invite, &resp) else {
            tracing::warn!(call = %id, "customer answered without a usable To tag/Contact");
            return self
                .ob_unanswered(id, AttemptResult::Failed, Some(resp.status), "ctid")
                .await;
        };
        let key = dialog.key.clone();
        d.by_dialog.insert(key.clone(), (id, Leg::Customer));
        self.send(Command::AddDialog(key.clone())).await;
        let seq = dialog.local_seq;
        self.send(Command::SendStateless {
            transport: peer.transport,
            remote: peer.remote,
            request: dialog.ack(seq),
        })
        .await;
        let answer =
            sdp::parse(&resp.body).and_then(|a| sdp::read_answer(&a, &[0, 8, AGENT_DTMF_PT]));
        let n = match answer {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(call = %id, error = %e, "customer answered with unusable SDP");
                let bye = dialog.request(Method::Bye);
                self.send_to(peer, bye).await;
                self.send(Command::RemoveDialog(key.clone())).await;
                if let Some(d) = self.outbound.as_mut() {
                    d.by_dialog.remove(&key);
                }
                return self
                    .ob_unanswered(id, AttemptResult::Failed, Some(488), "ctid")
                    .await;
            }
        };
        let Some(d) = self.outbound.as_mut() else {
            return;
        };
        let Some(c) = d.calls.get_mut(&id) else {
            return;
        };
        c.phase = Phase::Talking;
        c.answered = Some(self.now.mono);
        let wait_ms = c.dialed.map_or(0, |t| self.now.since(t).as_millis() as u64);
        let (attempt, agent, list) = (c.attempt, c.agent.clone(), c.list.clone());
        if let Some(leg) = c.customer.as_mut() {
            leg.dialog = Some(dialog);
            leg.answer = Some(n.clone());
            if let (Some(sockets), Some(media)) = (leg.sockets.take(), c.media.as_ref()) {
                media.send(Media::Bridge {
                    agent: Box::new(leg_media(sockets, &n)),
                    recorder: None,
                });
            }
        }
        d.result(
            attempt,
            AttemptResult::Answered,
            Some(resp.status),
            self.now.wall_ms,
        );
        crate::metrics::outbound_attempt(&list, "answered");
        tracing::info!(call = %id, agent = %agent, %attempt, "customer answered; bridged to the agent");
        self.record(CallOp::Answered {
            id: id.0,
            answered_at_ms: self.now.wall_ms,
            agent: agent.0.clone(),
            wait_ms,
            in_target: false,
        })
        .await;
        self.event(id, "answered", Some(&agent), None).await;
        self.board.handle_answered(&agent);
    }
}
