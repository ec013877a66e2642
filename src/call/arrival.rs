//! A new call arrives: the caller's INVITE checked (number, call limit, SDP, media port), the
//! call recorded and queued in the engine, answered (or 183, early media) once it may queue — or
//! refused with a final error and recorded `rejected`.
//!
//! Must not know: sockets, SQL, the clock (the time of the input is `self.now`).

use super::*;

impl CallManager {
    /// Refuse a new call and record it (outcome `rejected`, with the SIP code and why).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn refuse_call(
        &mut self,
        tx: ServerTxId,
        invite: &Request,
        dialed: &str,
        queue: Option<&str>,
        status: u16,
        reason: &str,
    ) {
        tracing::info!(dialed, status, reason, "call refused");
        let now = self.now.wall_ms;
        if let Some(q) = queue {
            self.figures.handle_refused(q, self.now);
        }
        self.reject(tx, invite, status, reason).await;
        let id = CallId(self.next_call);
        self.next_call += 1;
        let (number, name) = legs::caller_identity(invite);
        self.record(CallOp::Started {
            id: id.0,
            sip_call_id: invite.headers.get("Call-ID").unwrap_or("").to_string(),
            direction: "inbound",
            caller_number: number,
            caller_name: name,
            dialed_number: Some(dialed.to_string()),
            queue: queue.map(str::to_string),
            entered_at_ms: now,
        })
        .await;
        self.event(id, "rejected", None, Some(format!("{status} {reason}")))
            .await;
        self.record(CallOp::Ended {
            id: id.0,
            ended_at_ms: now,
            outcome: "rejected",
            queue: queue.map(str::to_string),
            wait_ms: Some(0),
            talk_ms: None,
            short_abandon: None,
            hangup_by: Some("ctid"),
            hangup_cause: Some(reason.to_string()),
            sip_code: Some(status),
        })
        .await;
    }

    pub(super) async fn reject(
        &self,
        tx: ServerTxId,
        request: &Request,
        status: u16,
        reason: &str,
    ) {
        let mut r = response_to(request, status, None);
        if !reason.is_empty() {
            r.reason = reason.to_string();
        }
        self.send(Command::Respond { tx, response: r }).await;
    }

    pub(super) async fn new_call(&mut self, tx: ServerTxId, invite: Request, flow: Flow) {
        let dialed = crate::sip::uri::Uri::parse(&invite.uri)
            .ok()
            .and_then(|u| u.user_or_number())
            .unwrap_or_default();
        let Some(queue) = self.settings.numbers.get(&dialed).cloned() else {
            return self
                .refuse_call(
                    tx,
                    &invite,
                    &dialed,
                    None,
                    404,
                    "Not Found: no queue for this number",
                )
                .await;
        };
        if self.calls.len() >= self.settings.max_calls {
            tracing::warn!(calls = self.calls.len(), "call limit reached");
            return self
                .refuse_call(
                    tx,
                    &invite,
                    &dialed,
                    Some(&queue),
                    503,
                    "Service Unavailable: call limit",
                )
                .await;
        }
        if invite.body.is_empty() {
            return self
                .refuse_call(
                    tx,
                    &invite,
                    &dialed,
                    Some(&queue),
                    488,
                    "Not Acceptable Here: SDP offer required",
                )
                .await;
        }
        let offer = match sdp::parse(&invite.body) {
            Ok(o) => o,
            Err(e) => {
                let why = format!("Not Acceptable Here: {e}");
                return self
                    .refuse_call(tx, &invite, &dialed, Some(&queue), 488, &why)
                    .await;
            }
        };
        let negotiated = match sdp::negotiate_offer(&offer, &[0, 8], false) {
            Ok(n) => n,
            Err(e) => {
                let why = format!("Not Acceptable Here: {e}");
                return self
                    .refuse_call(tx, &invite, &dialed, Some(&queue), 488, &why)
                    .await;
            }
        };
        let sockets = match self.pool.allocate().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "no RTP port for a new call");
                return self
                    .refuse_call(
                        tx,
                        &invite,
                        &dialed,
                        Some(&queue),
                        503,
                        "Service Unavailable: no media port",
                    )
                    .await;
            }
        };
        let local_rtp = SocketAddr::new(self.pool.ip(), sockets.local_rtp.port());
        let local_tag = new_tag();
        let local = Advertise::apply(self.settings.advertise.as_ref(), flow.local);
        let contact = legs::contact_uri(local, flow.transport);
        let Ok(dialog) = Dialog::from_uas(&invite, &local_tag, &contact) else {
            return self
                .reject(tx, &invite, 400, "Bad Request: no usable Contact")
                .await;
        };
        let id = CallId(self.next_call);
        self.next_call += 1;
        let session = self.now.wall_ms;
        let answer = legs::answer_caller(
            &invite,
            &local_tag,
            &contact,
            &offer,
            &negotiated,
            local_rtp,
            session,
        );
        self.send(Command::AddDialog(dialog.key.clone())).await;
        let early = self.settings.early_media.contains(&queue);
        self.by_server_tx.insert(tx, id);
        self.by_dialog
            .insert(dialog.key.clone(), (id, LegRef::Caller));
        let (number, name) = legs::caller_identity(&invite);
        let (number_for_call, name_for_call) = (number.clone(), name.clone());
        let sip_call_id = invite.headers.get("Call-ID").unwrap_or("").to_string();
        let now = self.now.mono;
        let priority = invite
            .headers
            .get(&self.settings.priority_header)
            .and_then(|p| p.trim().parse::<i32>().ok())
            .unwrap_or(0);
        tracing::info!(call = %id, queue, caller = ?number, priority, sip_call_id = %sip_call_id, "call entered the queue");
        self.record(CallOp::Started {
            id: id.0,
            sip_call_id,
            direction: "inbound",
            caller_number: number,
            caller_name: name,
            dialed_number: Some(dialed),
            queue: Some(queue.clone()),
            entered_at_ms: self.now.wall_ms,
        })
        .await;
        self.event(id, "entered", None, Some(queue.clone())).await;
        self.calls.insert(
            id,
            Call {
                queue: queue.clone(),
                caller_number: number_for_call,
                caller_name: name_for_call,
                priority,
                server_tx: tx,
                entered: now,
                caller: CallerLeg {
                    dialog,
                    peer: flow.into(),
                    contact,
                    negotiated,
                    sockets: Some(sockets),
                    local_rtp,
                    sdp_version: 1,
                },
                offers: offers::Offers::default(),
                connected: None,
                answered: None,
                answer_wait: None,
                media: None,
                phase: media::Phase::Live,
                offer_pending: None,
                end_cause: None,
                caller_ended: false,
                answer: answer::CallerAnswer::held(answer),
            },
        );
        self.figures.handle_entered(&queue);
        self.publish(control::CallEvent::CallEntered {
            call: id.0,
            queue: queue.clone(),
            caller_number: self.calls.get(&id).and_then(|c| c.caller_number.clone()),
        });
        self.engine.handle(
            now,
            Input::CallArrived {
                call: id,
                queue: QueueId(queue),
                priority,
            },
        );
        // A call the engine refuses at once (join_empty = false, a full queue, overflow
        // "hangup:…") is ended here with a final 4xx/5xx, before any 200, so a PBX can fail
        // over; one that queues is answered (or, early media, gets 183) only now.
        self.apply_actions().await;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if let Some(response) = call.answer.queued(early) {
            self.send(Command::Respond { tx, response }).await;
            self.start_media(id);
        }
    }
}
