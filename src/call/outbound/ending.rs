//! How outbound calls end: responses and failures of their legs, BYEs and other requests in
//! their dialogs, busy/no answer/failure results, the end of the talk and the agent's wrap-up.
//!
//! Must not know: SQL, sockets, SIP parsing.

use super::*;

impl CallManager {
    /// A response on an outbound leg.
    pub(super) async fn ob_response(
        &mut self,
        id: CallId,
        leg: Leg,
        tx: ClientTxId,
        resp: Response,
    ) {
        if resp.status >= 200 {
            if let Some(d) = self.outbound.as_mut() {
                d.by_tx.remove(&tx);
            }
        }
        match (leg, resp.status) {
            (_, 100) => {}
            (Leg::Agent, 101..=199) => {}
            (Leg::Agent, 200..=299) => self.ob_agent_answered(id, tx, resp).await,
            (Leg::Agent, _) => {
                if let Some(d) = self.outbound.as_mut() {
                    d.invites.remove(&tx);
                }
                tracing::info!(call = %id, status = resp.status, "agent's phone refused the outbound call");
                self.ob_agent_failed(id, Some(resp.status)).await;
            }
            (Leg::Customer, 101..=199) => {
                let Some(d) = self.outbound.as_mut() else {
                    return;
                };
                let Some(c) = d.calls.get_mut(&id) else {
                    return;
                };
                if !c.ringing_recorded && matches!(resp.status, 180 | 183) {
                    c.ringing_recorded = true;
                    let attempt = c.attempt;
                    d.result(
                        attempt,
                        AttemptResult::Ringing,
                        Some(resp.status),
                        self.now.wall_ms,
                    );
                    self.event(id, "ringing", None, Some(resp.status.to_string()))
                        .await;
                }
            }
            (Leg::Customer, 200..=299) => self.ob_customer_answered(id, tx, resp).await,
            (Leg::Customer, status) => {
                if let Some(d) = self.outbound.as_mut() {
                    d.invites.remove(&tx);
                }
                let result = result_of(status);
                tracing::info!(call = %id, status, %result, "customer call not answered");
                self.ob_unanswered(id, result, Some(status), "customer")
                    .await;
            }
        }
    }

    /// A response to an INVITE whose call is over: ACK and BYE a 2xx, forget it when final.
    pub(super) async fn ob_stray(&mut self, tx: ClientTxId, resp: &Response) {
        if resp.status < 200 {
            return;
        }
        let Some((req, peer)) = self.outbound.as_mut().and_then(|d| d.invites.remove(&tx)) else {
            return;
        };
        if resp.status >= 300 {
            return;
        }
        let req = with_cseq_of(req, resp);
        if let Ok(mut d) = Dialog::from_uac(&req, resp) {
            let seq = d.local_seq;
            self.send(Command::SendStateless {
                transport: peer.transport,
                remote: peer.remote,
                request: d.ack(seq),
            })
            .await;
            let bye = d.request(Method::Bye);
            self.send_to(peer, bye).await;
        }
    }

    /// A request inside an outbound leg's dialog (BYE, re-INVITE, INFO…).
    pub(super) async fn ob_in_dialog(
        &mut self,
        tx: ServerTxId,
        req: Request,
        id: CallId,
        leg: Leg,
    ) {
        let ok = response_to_ok(&req);
        self.send(Command::Respond { tx, response: ok }).await;
        if req.method != Method::Bye {
            return;
        }
        let Some(c) = self.outbound.as_mut().and_then(|d| d.calls.get_mut(&id)) else {
            return;
        };
        // That leg's dialog is over: no BYE goes back to it.
        let gone = match leg {
            Leg::Agent => c.agent_leg.dialog.take(),
            Leg::Customer => c.customer.as_mut().and_then(|l| l.dialog.take()),
        };
        if let Some(dlg) = gone {
            if let Some(d) = self.outbound.as_mut() {
                d.by_dialog.remove(&dlg.key);
            }
            self.send(Command::RemoveDialog(dlg.key)).await;
        }
        let phase = self
            .outbound
            .as_ref()
            .and_then(|d| d.calls.get(&id))
            .map(|c| c.phase);
        let by = match leg {
            Leg::Agent => "agent",
            Leg::Customer => "customer",
        };
        match phase {
            Some(Phase::Talking) => self.ob_end_talk(id, None, by).await,
            Some(_) => {
                tracing::info!(call = %id, by, "hung up before the customer answered");
                self.ob_unanswered(id, AttemptResult::Failed, None, by)
                    .await
            }
            None => {}
        }
    }

    /// The agent's phone did not take the call: the customer was never dialed, so the attempt
    /// is given back (`skipped` by the agent) and the agent rests a while.
    pub(super) async fn ob_agent_failed(&mut self, id: CallId, code: Option<u16>) {
        let Some(c) = self.ob_take(id).await else {
            return;
        };
        if let Some(d) = &self.outbound {
            d.result(c.attempt, AttemptResult::Skipped, None, self.now.wall_ms);
        }
        crate::metrics::outbound_attempt(&c.list, "skipped");
        self.event(id, "rejected", Some(&c.agent), code.map(|s| s.to_string()))
            .await;
        self.ob_end_record(id, "agent_unavailable", None, "agent", code)
            .await;
        self.ob_cool_down(&c.agent, None);
    }

    /// The customer call ended without an answer (busy, rejected, no answer, failed, or the
    /// agent gave up): store the result, hang up the agent, wrap-up.
    pub(super) async fn ob_unanswered(
        &mut self,
        id: CallId,
        result: AttemptResult,
        code: Option<u16>,
        by: &'static str,
    ) {
        let Some(mut c) = self.ob_take(id).await else {
            return;
        };
        if c.phase == Phase::AgentRinging {
            // The customer was never called.
            self.send(Command::Cancel { tx: c.agent_leg.tx }).await;
            if let Some(d) = &self.outbound {
                d.result(c.attempt, AttemptResult::Skipped, None, self.now.wall_ms);
            }
            crate::metrics::outbound_attempt(&c.list, "skipped");
            self.ob_end_record(id, "interrupted", None, by, code).await;
            self.ob_free(&c.agent);
            return;
        }
        if let Some(leg) = c.customer.as_ref().filter(|l| l.dialog.is_none()) {
            if by != "customer" {
                // Still ringing (timeout, agent gone, shutdown): CANCEL it.
                self.send(Command::Cancel { tx: leg.tx }).await;
            }
        }
        if let Some(mut dlg) = c.agent_leg.dialog.take() {
            let bye = dlg.request(Method::Bye);
            self.send_to(c.agent_leg.peer, bye).await;
        }
        if let Some(d) = &self.outbound {
            d.result(c.attempt, result, code, self.now.wall_ms);
        }
        crate::metrics::outbound_attempt(&c.list, result.as_str());
        self.event(
            id,
            result.as_str(),
            Some(&c.agent),
            code.map(|s| s.to_string()),
        )
        .await;
        let cause = (by == "agent").then(|| "abandoned by the agent".to_string());
        self.ob_end_record(id, result.as_str(), None, by, code)
            .await;
        if let Some(cause) = cause {
            self.event(id, "abandoned", Some(&c.agent), Some(cause))
                .await;
        }
        let wrapup = self.ob_wrapup(&c.agent);
        self.ob_release(&c.agent, wrapup);
    }

    /// A bridged call ended (`by` hung up, or ctid): BYE the other leg, record, wrap-up.
    pub(super) async fn ob_end_talk(&mut self, id: CallId, code: Option<u16>, by: &'static str) {
        let Some(mut c) = self.ob_take(id).await else {
            return;
        };
        if let Some(mut dlg) = c.agent_leg.dialog.take() {
            let bye = dlg.request(Method::Bye);
            self.send_to(c.agent_leg.peer, bye).await;
        }
        if let Some(leg) = c.customer.as_mut() {
            if let Some(mut dlg) = leg.dialog.take() {
                let bye = dlg.request(Method::Bye);
                self.send_to(leg.peer, bye).await;
            }
        }
        if let Some(d) = &self.outbound {
            d.ask(StoreReq::Hangup {
                attempt: c.attempt,
                at_ms: self.now.wall_ms,
            });
        }
        let talk = c.answered.map(|a| self.now.since(a));
        tracing::info!(call = %id, by, "outbound call ended");
        self.event(id, "ended", Some(&c.agent), None).await;
        self.ob_end_record(id, "answered", talk, by, code).await;
        let wrapup = self.ob_wrapup(&c.agent);
        self.ob_release(&c.agent, wrapup);
    }

    pub(super) fn ob_wrapup(&self, agent: &AgentId) -> Duration {
        self.outbound
            .as_ref()
            .map_or(Duration::ZERO, |d| d.settings.wrapup(agent))
    }

    pub(super) async fn ob_end_record(
        &mut self,
        id: CallId,
        outcome: &'static str,
        talk: Option<Duration>,
        by: &'static str,
        code: Option<u16>,
    ) {
        self.record(CallOp::Ended {
            id: id.0,
            ended_at_ms: self.now.wall_ms,
            outcome,
            queue: None,
            wait_ms: None,
            talk_ms: talk.map(|t| t.as_millis() as u64),
            short_abandon: None,
            hangup_by: Some(by),
            hangup_cause: None,
            sip_code: code,
        })
        .await;
    }

    /// Forget a call: its transaction and dialog routes (INVITEs stay known until their final
    /// response), its media.
    pub(super) async fn ob_take(&mut self, id: CallId) -> Option<OCall> {
        let d = self.outbound.as_mut()?;
        let c = d.calls.remove(&id)?;
        d.by_tx.retain(|_, (cid, _)| *cid != id);
        let keys: Vec<DialogKey> = d
            .by_dialog
            .iter()
            .filter(|(_, (cid, _))| *cid == id)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &keys {
            d.by_dialog.remove(k);
        }
        for k in keys {
            self.send(Command::RemoveDialog(k)).await;
        }
        self.board.handle_call_gone(&c.agent, id.0);
        Some(c)
    }
}

/// The request as sent after a digest retry: the CSeq number the response carries.
pub(super) fn with_cseq_of(mut req: Request, resp: &Response) -> Request {
    if let Some(c) = resp.headers.get("CSeq").and_then(|c| CSeq::parse(c).ok()) {
        req.headers.set("CSeq", format!("{} {}", c.seq, c.method));
    }
    req
}

pub(super) fn response_to_ok(req: &Request) -> Response {
    crate::sip::build::response_to(req, 200, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cseq_follows_the_digest_retry() {
        let mut req = Request::new(Method::Invite, "sip:+441@127.0.0.1");
        req.headers.push("CSeq", "1 INVITE");
        let mut resp = crate::sip::build::response_to(&req, 200, Some("t"));
        resp.headers.set("CSeq", "2 INVITE");
        let req = with_cseq_of(req, &resp);
        assert_eq!(req.headers.get("CSeq"), Some("2 INVITE"));
    }
}
