//! The endpoint's server side: a received request from validation (RFC 3261 §8.2 order) and
//! trust through its server transaction, CANCEL (§9.2) and ACK matching, and the transaction
//! user's answers ([`Endpoint::respond`]) back out as transmits.
//!
//! Must not know: sockets, the clock (`now` is an input), calls or queues.

use super::*;

impl Endpoint {
    pub(super) fn handle_request(&mut self, now: Instant, flow: Flow, mut req: Request) {
        let Some(key) = TxKey::for_request(&req) else {
            self.stats.parse_dropped += 1;
            return;
        };
        if req.method == Method::Ack {
            self.handle_ack(now, flow, key, req);
            return;
        }
        if let Some(&id) = self.server_keys.get(&key) {
            self.stats.retransmissions_absorbed += 1;
            if let Some(tx) = self.server.get_mut(&id) {
                let actions = tx.machine.handle_request_retransmit(now);
                self.server_actions(id, actions);
                self.arm_server(id);
            }
            return;
        }
        // Strangers get stateless answers: no transaction, nothing retransmitted, nothing kept.
        if !self.trusted(flow) {
            if let Some((status, reason)) = self.stateless_refusal(&req) {
                let refusal = (status == 403).then_some(Refusal::Untrusted);
                self.refuse_stateless(flow, req, status, reason, refusal);
                return;
            }
        }
        // A new call while ctid cannot keep up, or from a peer that does not acknowledge the
        // calls it got: 503 at the door, before any work (calls in progress go on).
        if let Some(r) = self.refuse_at_door(&req, flow) {
            self.refuse_stateless(flow, req, 503, "Service Unavailable", Some(r));
            return;
        }
        // Response destination per §18.2.2 / RFC 3581.
        let mut resp_flow = flow;
        if flow.transport == Transport::Udp {
            resp_flow.remote = stamp_via(&mut req, flow.remote, self.cfg.force_rport);
        } else {
            stamp_via(&mut req, flow.remote, false);
        }
        let id = self.alloc_id();
        let reliable = flow.transport.reliable();
        let is_invite = req.method == Method::Invite;
        let machine = if is_invite {
            ServerMachine::Invite(ServerInvite::new(now, self.cfg.timers, reliable))
        } else {
            ServerMachine::NonInvite(ServerNonInvite::new(now, self.cfg.timers, reliable))
        };
        let call_id = req.headers.get("Call-ID").unwrap_or("").to_string();
        let cseq = cseq_of(&req);
        let from_tag = tag_of(&req, "From");
        let to_tag = tag_of(&req, "To");
        let merge_key = match (&from_tag, &to_tag) {
            (Some(f), None) => Some((f.clone(), call_id.clone(), cseq)),
            _ => None,
        };
        let merged_with = merge_key.as_ref().and_then(|k| self.merged.get(k)).copied();
        let tx = ServerTx {
            key: key.clone(),
            machine,
            flow: resp_flow,
            request: is_invite.then(|| req.clone()),
            to_tag: new_tag(),
            ack_match: is_invite.then(|| (call_id.clone(), cseq)),
            merge_key: merge_key.clone(),
        };
        self.server.insert(id, tx);
        self.stats.server_transactions += 1;
        self.server_keys.insert(key.clone(), id);
        if merged_with.is_none() {
            if let Some(k) = merge_key {
                self.merged.insert(k, id);
            }
        }
        let stx = ServerTxId(id);
        if is_invite {
            let trying = response_to(&req, 100, None);
            self.respond(now, stx, trying);
        }

        if req.method == Method::Cancel {
            self.handle_cancel(now, stx, &key, &req);
            return;
        }
        if let Some(resp) = self.precheck(&req, flow, merged_with.is_some(), to_tag.as_deref()) {
            self.respond(now, stx, resp);
            return;
        }
        let in_dialog = to_tag.is_some();
        if in_dialog {
            let dk = DialogKey {
                call_id,
                local_tag: to_tag.unwrap_or_default(),
                remote_tag: from_tag.unwrap_or_default(),
            };
            if !self.dialogs.contains(&dk) {
                let r = self.reply(&req, 481);
                self.respond(now, stx, r);
                return;
            }
            self.events.push_back(Event::Request {
                tx: stx,
                request: req,
                flow,
            });
            return;
        }
        match req.method {
            Method::Options => {
                let mut r = self.reply(&req, 200);
                r.headers.push("Allow", ALLOW);
                r.headers.push("Accept", ACCEPT);
                r.headers.push("Accept-Encoding", "identity");
                r.headers.push("Supported", "");
                self.respond(now, stx, r);
            }
            Method::Register => {
                let source = flow.to_string();
                let unix = self.unix_ms(now);
                let (mut r, outcome) =
                    self.registrar
                        .handle_register(&req, &source, flow.remote.ip(), unix);
                tracing::debug!(%flow, ?outcome, status = r.status, "REGISTER");
                match outcome {
                    RegisterOutcome::AuthFailed(why) => self.stats.auth_failures[why.index()] += 1,
                    RegisterOutcome::Throttled => {
                        self.stats.refused[Refusal::AuthThrottled.index()] += 1
                    }
                    RegisterOutcome::Registered if flow.transport.reliable() => {
                        self.proven.push_back(flow.conn)
                    }
                    _ => {}
                }
                self.server_header(&mut r);
                self.respond(now, stx, r);
                self.flush_registrar(now);
            }
            Method::Invite => self.events.push_back(Event::Request {
                tx: stx,
                request: req,
                flow,
            }),
            _ => {
                // BYE, INFO, UPDATE outside a dialog.
                let r = self.reply(&req, 481);
                self.respond(now, stx, r);
            }
        }
    }

    /// The checks every new request passes before anyone acts on it. `None` = go on.
    pub(super) fn precheck(
        &self,
        req: &Request,
        _flow: Flow,
        merged: bool,
        to_tag: Option<&str>,
    ) -> Option<Response> {
        if self.draining && to_tag.is_none() && req.method != Method::Cancel {
            let mut r = self.reply(req, 503);
            r.headers.push("Retry-After", "5");
            return Some(r);
        }
        let mf = req
            .headers
            .get("Max-Forwards")
            .and_then(|v| parse_bounded(v, 255));
        if mf == Some(0) && req.method != Method::Options {
            return Some(self.reply(req, 483));
        }
        let looped = req.headers.get_all("Via").any(|v| {
            Via::parse(v)
                .ok()
                .and_then(|v| v.branch().map(|b| b.starts_with(BRANCH_PREFIX)))
                == Some(true)
        });
        if looped || merged {
            return Some(self.reply(req, 482));
        }
        // (Untrusted sources never get here with an out-of-dialog request other than OPTIONS,
        // REGISTER or CANCEL: they are answered statelessly, see `stateless_refusal`.)
        match req.method {
            Method::Other(_) => {
                let mut r = self.reply(req, 501);
                r.headers.push("Allow", ALLOW);
                return Some(r);
            }
            Method::Message
            | Method::Subscribe
            | Method::Notify
            | Method::Refer
            | Method::Publish
            | Method::Prack => {
                let mut r = self.reply(req, 405);
                r.headers.push("Allow", ALLOW);
                return Some(r);
            }
            _ => {}
        }
        match Uri::parse(&req.uri) {
            Ok(Uri::Sip(_)) | Ok(Uri::Tel { .. }) => {}
            _ => return Some(self.reply(req, 416)),
        }
        let unsupported: Vec<&str> = req.headers.list("Require").collect();
        if !unsupported.is_empty() && req.method != Method::Cancel {
            let mut r = self.reply(req, 420);
            r.headers.push("Unsupported", unsupported.join(", "));
            return Some(r);
        }
        if matches!(req.method, Method::Invite | Method::Update) {
            if let Some(r) = self.check_body(req) {
                return Some(r);
            }
        }
        None
    }

    /// 415 for a body ctid cannot read, 406 when the peer accepts nothing ctid can send.
    pub(super) fn check_body(&self, req: &Request) -> Option<Response> {
        if !req.body.is_empty() {
            let ct = req.headers.get("Content-Type").unwrap_or("");
            let mime = ct.split(';').next().unwrap_or("").trim();
            let enc_ok = req
                .headers
                .list("Content-Encoding")
                .all(|e| e.eq_ignore_ascii_case("identity"));
            if !mime.eq_ignore_ascii_case("application/sdp") || !enc_ok {
                let mut r = self.reply(req, 415);
                r.headers.push("Accept", ACCEPT);
                r.headers.push("Accept-Encoding", "identity");
                return Some(r);
            }
        }
        if req.headers.count("Accept") > 0 {
            let ok = req.headers.list("Accept").any(|a| {
                let m = a.split(';').next().unwrap_or("").trim();
                m.eq_ignore_ascii_case("application/sdp")
                    || m.eq_ignore_ascii_case("application/*")
                    || m == "*/*"
            });
            if !ok {
                return Some(self.reply(req, 406));
            }
        }
        None
    }

    pub(super) fn trusted(&self, flow: Flow) -> bool {
        self.cfg
            .trusted
            .iter()
            .any(|n| n.contains(flow.remote.ip()))
    }

    /// A response to `req` with ctid's Server header (the To tag is set in `respond`).
    pub fn reply(&self, req: &Request, status: u16) -> Response {
        let mut r = response_to(req, status, None);
        self.server_header(&mut r);
        r
    }

    pub(super) fn handle_cancel(
        &mut self,
        now: Instant,
        stx: ServerTxId,
        key: &TxKey,
        cancel: &Request,
    ) {
        let invite_id = self.server_keys.get(&key.with_method("INVITE")).copied();
        let Some(invite_id) = invite_id else {
            let r = self.reply(cancel, 481);
            self.respond(now, stx, r);
            return;
        };
        // §9.2: the 200 (CANCEL) carries the To tag of the INVITE's response, the final one
        // if it was sent (a CANCEL crossing the 200 OK), so both name the same dialog.
        let mut ok = self.reply(cancel, 200);
        if let Some(invite) = self.server.get(&invite_id) {
            build::add_to_tag(&mut ok.headers, &invite.to_tag);
        }
        self.respond(now, stx, ok);
        let pending = self
            .server
            .get(&invite_id)
            .and_then(|tx| match &tx.machine {
                ServerMachine::Invite(m) if m.state() == ServerInviteState::Proceeding => {
                    tx.request.clone()
                }
                _ => None,
            });
        if let Some(invite) = pending {
            let r = self.reply(&invite, 487);
            self.respond(now, ServerTxId(invite_id), r);
            self.events.push_back(Event::Cancelled {
                tx: ServerTxId(invite_id),
            });
        }
    }

    pub(super) fn handle_ack(&mut self, now: Instant, flow: Flow, key: TxKey, req: Request) {
        // ACK to a non-2xx final: part of the INVITE transaction (same branch); absorbed here.
        if let Some(&id) = self.server_keys.get(&key) {
            if let Some(ServerMachine::Invite(m)) = self.server.get_mut(&id).map(|t| &mut t.machine)
            {
                if matches!(
                    m.state(),
                    ServerInviteState::Completed | ServerInviteState::Confirmed
                ) {
                    let (_, actions) = m.handle_ack(now);
                    self.server_actions(id, actions);
                    self.arm_server(id);
                    return;
                }
            }
        }
        // ACK to a 2xx: its own transaction, matched to the INVITE by Call-ID and CSeq number,
        // then handed to the TU with its dialog.
        let call_id = req.headers.get("Call-ID").unwrap_or("").to_string();
        let cseq = cseq_of(&req);
        if let Some(id) = self.acks.remove(&(call_id, cseq)) {
            self.unacked_done(id);
            if let Some(ServerMachine::Invite(m)) = self.server.get_mut(&id).map(|t| &mut t.machine)
            {
                let (_, actions) = m.handle_ack(now);
                self.server_actions(id, actions);
                self.arm_server(id);
            }
        }
        let to_tag = tag_of(&req, "To");
        // The ACK of a stateless refusal (hop-by-hop, for a 403/503 ctid kept no state of).
        if to_tag
            .as_deref()
            .is_some_and(|t| t.starts_with(STATELESS_TAG))
        {
            return;
        }
        if to_tag.is_some() {
            self.events.push_back(Event::Ack { request: req, flow });
        }
    }

    /// Send a response on a server transaction. Adds the transaction's To tag (above 100) and
    /// the Server header.
    pub fn respond(&mut self, now: Instant, tx: ServerTxId, mut resp: Response) {
        let Some(stx) = self.server.get_mut(&tx.0) else {
            tracing::debug!(?tx, "response for a finished transaction dropped");
            return;
        };
        if resp.status > 100 {
            if let Some(to) = resp.headers.first_mut("To") {
                if let Ok(na) = NameAddr::parse(to) {
                    match na.tag() {
                        None => {
                            to.push_str(";tag=");
                            to.push_str(&stx.to_tag);
                        }
                        // The TU chose the tag (its dialog's local tag): a CANCEL of this
                        // INVITE is answered with the same one (§9.2).
                        Some(tag) => stx.to_tag = tag.to_string(),
                    }
                }
            }
        }
        if resp.headers.get("Server").is_none() {
            resp.headers.push("Server", self.cfg.user_agent.clone());
        }
        let status = resp.status;
        if let Some(n) = self.stats.responses_sent.get_mut(usize::from(status / 100)) {
            *n += 1;
        }
        let bytes: Bytes = resp.to_bytes().into();
        let actions = stx.machine.respond(now, status, bytes);
        if (200..300).contains(&status) {
            if let Some(k) = stx.ack_match.clone() {
                self.acks.insert(k, tx.0);
                let ip = stx.flow.remote.ip();
                if self.unacked_tx.insert(tx.0, ip).is_none() {
                    *self.unacked.entry(ip).or_default() += 1;
                }
            }
        }
        self.server_actions(tx.0, actions);
        self.arm_server(tx.0);
    }

    /// The To tag ctid uses on a server transaction (the local tag of a dialog it creates).
    pub fn local_tag(&self, tx: ServerTxId) -> Option<&str> {
        self.server.get(&tx.0).map(|t| t.to_tag.as_str())
    }

    pub(super) fn server_actions(&mut self, id: u64, actions: Vec<TxAction>) {
        for a in actions {
            match a {
                TxAction::Send(bytes) => {
                    if let Some(tx) = self.server.get(&id) {
                        self.transmits.push_back(Transmit {
                            flow: tx.flow,
                            bytes,
                        });
                    }
                }
                TxAction::Timeout => {
                    // A 2xx awaiting its ACK is the TU's business; a non-2xx is not.
                    let tu_owned = self
                        .server
                        .get(&id)
                        .and_then(|tx| tx.ack_match.as_ref())
                        .and_then(|k| self.acks.get(k))
                        == Some(&id);
                    if tu_owned {
                        self.events
                            .push_back(Event::AckTimeout { tx: ServerTxId(id) });
                    }
                }
                TxAction::TransportError | TxAction::DeliverResponse { .. } => {}
                TxAction::Terminated => self.remove_server(id),
            }
        }
    }

    pub(super) fn remove_server(&mut self, id: u64) {
        self.unacked_done(id);
        if let Some(tx) = self.server.remove(&id) {
            if self.server_keys.get(&tx.key) == Some(&id) {
                self.server_keys.remove(&tx.key);
            }
            if let Some(k) = tx.ack_match {
                if self.acks.get(&k) == Some(&id) {
                    self.acks.remove(&k);
                }
            }
            if let Some(k) = tx.merge_key {
                if self.merged.get(&k) == Some(&id) {
                    self.merged.remove(&k);
                }
            }
        }
    }
}
