//! Requests inside a call's dialogs: BYE, re-INVITE/UPDATE (hold, resume, a new address; with
//! or without SDP), INFO (DTMF), and the ACK that carries an answer to ctid's offer.
//!
//! Must not know: sockets, SQL, the clock (the time of the input is `self.now`).

use super::*;

impl CallManager {
    pub(super) async fn in_dialog(&mut self, tx: ServerTxId, req: Request) {
        let key = caller::dialog_key(&req);
        let Some((id, leg)) = self.by_dialog.get(&key).cloned() else {
            return self.reject(tx, &req, 481, "").await;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return self.reject(tx, &req, 481, "").await;
        };
        let dialog = match &leg {
            LegRef::Caller => Some(&mut call.caller.dialog),
            LegRef::Agent(a) => call
                .connected
                .as_mut()
                .filter(|c| &c.agent == a)
                .or_else(|| call.offers.of_agent_mut(a))
                .and_then(|l| l.dialog.as_mut()),
        };
        let Some(dialog) = dialog else {
            return self.reject(tx, &req, 481, "").await;
        };
        if let Err(code) = dialog.handle_request(&req) {
            return self.reject(tx, &req, code, "").await;
        }
        match req.method {
            Method::Bye => {
                self.send(Command::Respond {
                    tx,
                    response: response_to(&req, 200, None),
                })
                .await;
                let by = match leg {
                    LegRef::Caller => "caller",
                    LegRef::Agent(_) => "agent",
                };
                self.leg_hung_up(id, leg, by).await;
            }
            Method::Invite | Method::Update if !req.body.is_empty() => {
                self.reoffer(tx, id, leg, req).await
            }
            Method::Invite => self.offer_in_200(tx, id, leg, req).await,
            Method::Info => {
                let key = crate::media::dtmf::parse_info(
                    req.headers.get("Content-Type").unwrap_or(""),
                    &req.body,
                );
                let status = if key.is_some() || req.body.is_empty() {
                    200
                } else {
                    415
                };
                self.send(Command::Respond {
                    tx,
                    response: response_to(&req, status, None),
                })
                .await;
                if let (Some(k), LegRef::Caller) = (key, &leg) {
                    tracing::debug!(call = %id, key = %k, "DTMF by SIP INFO");
                    self.key_pressed(id, k).await;
                }
            }
            _ => {
                self.send(Command::Respond {
                    tx,
                    response: response_to(&req, 200, None),
                })
                .await;
            }
        }
    }

    /// A re-INVITE without SDP (RFC 3261 §14.1, RFC 3264 §5): ctid offers its SDP for the leg in
    /// the 200 (same port, the codec already in use) and takes the answer from the ACK.
    pub(super) async fn offer_in_200(
        &mut self,
        tx: ServerTxId,
        id: CallId,
        leg: LegRef,
        req: Request,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let (local_rtp, version, law, dtmf) = match &leg {
            LegRef::Caller => {
                call.caller.sdp_version += 1;
                let n = &call.caller.negotiated;
                (
                    call.caller.local_rtp,
                    call.caller.sdp_version,
                    n.law,
                    n.dtmf,
                )
            }
            LegRef::Agent(a) => {
                let Some(c) = call.connected.as_mut().filter(|c| &c.agent == a) else {
                    return self.reject(tx, &req, 491, "").await;
                };
                c.sdp_version += 1;
                let law = c.answer.as_ref().map_or(0, |n| n.law);
                let dtmf = c.answer.as_ref().and_then(|n| n.dtmf);
                (c.local_rtp, c.sdp_version, law, dtmf)
            }
        };
        let contact = call.caller.contact.clone();
        call.offer_pending = Some(leg);
        let mut r = response_to(&req, 200, None);
        r.headers.push("Contact", format!("<{contact}>"));
        r.headers.push("Content-Type", "application/sdp");
        r.body =
            sdp::build_offer(local_rtp, &[law], dtmf, 20, self.now.wall_ms, version).into_bytes();
        self.send(Command::Respond { tx, response: r }).await;
    }

    /// An ACK to a 2xx: when it answers the offer ctid made in that 2xx, the leg's media follows.
    pub(super) async fn ack_with_answer(&mut self, req: Request) {
        if req.body.is_empty() {
            return;
        }
        let key = caller::dialog_key(&req);
        let Some((id, leg)) = self.by_dialog.get(&key).cloned() else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.offer_pending.as_ref() != Some(&leg) {
            return;
        }
        call.offer_pending = None;
        // What ctid offered in its 200 (see `offer_in_200`): the leg's law and its DTMF type.
        let (law, dtmf) = match &leg {
            LegRef::Caller => (call.caller.negotiated.law, call.caller.negotiated.dtmf),
            LegRef::Agent(_) => call
                .connected
                .as_ref()
                .and_then(|c| c.answer.as_ref())
                .map_or((0, None), |n| (n.law, n.dtmf)),
        };
        let offered: Vec<u8> = std::iter::once(law).chain(dtmf).collect();
        let n = match sdp::parse(&req.body).and_then(|a| sdp::read_answer(&a, &offered)) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(call = %id, error = %e, "unusable SDP answer in an ACK; media unchanged");
                return;
            }
        };
        let side = match leg {
            LegRef::Caller => {
                call.caller.negotiated.remote = n.remote;
                Side::A
            }
            LegRef::Agent(_) => Side::B,
        };
        let held = n.direction != sdp::Direction::SendRecv || n.remote.is_none();
        if let Some(m) = &call.media {
            m.send(MediaCommand::Remote {
                side,
                addr: n.remote,
            });
            m.send(MediaCommand::Hold { side, held });
        }
        let agent = match leg {
            LegRef::Agent(a) => Some(a),
            LegRef::Caller => None,
        };
        let kind = if held { "hold" } else { "resumed" };
        self.event(id, kind, agent.as_ref(), Some("answer in ACK".into()))
            .await;
    }

    /// A re-INVITE/UPDATE with SDP on a leg: hold, resume, or a new address. Answered with
    /// ctid's SDP for that leg (same port); the relay follows a new address.
    pub(super) async fn reoffer(&mut self, tx: ServerTxId, id: CallId, leg: LegRef, req: Request) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let offer = match sdp::parse(&req.body) {
            Ok(o) => o,
            Err(e) => {
                return self
                    .reject(tx, &req, 488, &format!("Not Acceptable Here: {e}"))
                    .await
            }
        };
        let n = match sdp::negotiate_offer(&offer, &[call.caller.negotiated.codec], true) {
            Ok(n) => n,
            Err(e) => {
                return self
                    .reject(tx, &req, 488, &format!("Not Acceptable Here: {e}"))
                    .await
            }
        };
        let (local_rtp, contact, version, side) = match &leg {
            LegRef::Caller => {
                call.caller.sdp_version += 1;
                // Before the bridge, the relay starts from this address.
                call.caller.negotiated.remote = n.remote;
                (
                    call.caller.local_rtp,
                    call.caller.contact.clone(),
                    call.caller.sdp_version,
                    Side::A,
                )
            }
            LegRef::Agent(_) => {
                let Some(c) = call.connected.as_mut() else {
                    return self.reject(tx, &req, 491, "").await;
                };
                c.sdp_version += 1;
                let contact = call.caller.contact.clone();
                (c.local_rtp, contact, c.sdp_version, Side::B)
            }
        };
        if let Some(m) = &call.media {
            m.send(MediaCommand::Remote {
                side,
                addr: n.remote,
            });
            m.send(MediaCommand::Hold {
                side,
                held: n.direction != sdp::Direction::SendRecv || n.remote.is_none(),
            });
        }
        let kind = if n.direction == sdp::Direction::SendRecv {
            "resumed"
        } else {
            "hold"
        };
        let session = self.now.wall_ms;
        let resp = legs::answer_reinvite(&req, &contact, &offer, &n, local_rtp, session, version);
        self.send(Command::Respond { tx, response: resp }).await;
        let agent = match leg {
            LegRef::Agent(a) => Some(a),
            LegRef::Caller => None,
        };
        self.event(id, kind, agent.as_ref(), None).await;
    }
}
