//! The endpoint's client side: requests ctid originates ([`Endpoint::send_request`], stateless
//! sends, CANCEL), their client transactions, digest answers to 401/407, and responses matched
//! back to their transaction and delivered to the transaction user.
//!
//! Must not know: sockets, the clock (`now` is an input), calls or queues.

use super::*;

impl Endpoint {
    /// Send a request ctid originates. The endpoint adds the top Via (with a fresh branch and
    /// `rport`) and Max-Forwards, runs the client transaction, and answers one 401/407 with
    /// `credentials` (username, password) if given. `flow.local` is the address to send from.
    pub fn send_request(
        &mut self,
        now: Instant,
        flow: Flow,
        request: Request,
        credentials: Option<(String, String)>,
    ) -> ClientTxId {
        let tu = ClientTxId(self.alloc_id());
        self.start_client(now, flow, request, credentials, 0, tu);
        tu
    }

    /// Like [`Endpoint::send_request`] with an id the TU chose (it must not collide with ids
    /// the endpoint hands out: use ids with the top bit set).
    pub fn send_request_as(
        &mut self,
        now: Instant,
        tu: ClientTxId,
        flow: Flow,
        request: Request,
        credentials: Option<(String, String)>,
    ) {
        self.start_client(now, flow, request, credentials, 0, tu);
    }

    /// Send a request outside any transaction (the ACK for a 2xx, §13.2.2.4): a top Via is
    /// added, nothing is retransmitted. An ACK's branch is derived from its dialog and CSeq, so
    /// the ACK sent again for a retransmitted 2xx is the same ACK (a phone that got a new
    /// branch would see a second, unexpected ACK); any other request gets a fresh branch.
    pub fn send_stateless(&mut self, flow: Flow, mut request: Request) {
        let branch = if request.method == Method::Ack {
            ack_branch(&request)
        } else {
            build::new_branch()
        };
        let via = self.own_via_with(flow, &branch);
        request.headers.push_front("Via", via);
        if request.headers.get("Max-Forwards").is_none() {
            request.headers.push("Max-Forwards", "70");
        }
        self.transmits.push_back(Transmit {
            flow,
            bytes: request.to_bytes().into(),
        });
    }

    /// A Via for a request ctid sends on `flow`.
    pub(super) fn own_via(&self, flow: Flow) -> String {
        self.own_via_with(flow, &build::new_branch())
    }

    /// A Via for a request ctid sends on `flow`, with `branch`.
    pub(super) fn own_via_with(&self, flow: Flow, branch: &str) -> String {
        let local =
            crate::sip::advertise::Advertise::apply(self.cfg.advertise.as_ref(), flow.local);
        let host = if local.ip().is_unspecified() {
            self.cfg.domain.clone()
        } else {
            match local {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            }
        };
        format!(
            "SIP/2.0/{} {}:{};branch={branch};rport",
            flow.transport.as_str(),
            host,
            local.port(),
        )
    }

    /// CANCEL a pending INVITE sent with [`Endpoint::send_request`].
    ///
    /// Only while the INVITE has no final response (RFC 3261 §9.1: a CANCEL of a request that
    /// got its final response is a no-op and SHOULD NOT be sent). A late CANCEL would otherwise
    /// reach the peer after ctid's ACK of its 487, and a strict UAS aborts the call on it. And
    /// only once: asking again while its CANCEL transaction lives sends nothing more (a second
    /// transaction on the same branch would take the 200 from the first, left to retransmit
    /// until Timer F).
    ///
    /// Before any provisional response (state Calling) nothing is sent yet: the CANCEL goes out
    /// when the first 1xx arrives (RFC 3261 §9.1: a CANCEL MUST NOT be sent before one); a final
    /// response first makes it moot.
    pub fn cancel(&mut self, now: Instant, tx: ClientTxId) {
        let Some(c) = self
            .client_by_tu
            .get(&tx)
            .and_then(|id| self.client.get(id))
        else {
            return;
        };
        let ClientMachine::Invite(m) = &c.machine else {
            return;
        };
        let found = match m.state() {
            ClientInviteState::Calling => {
                self.cancel_on_provisional.insert(tx);
                None
            }
            ClientInviteState::Proceeding => Some((c.flow, build::cancel_for(&c.request))),
            _ => None,
        };
        if let Some((flow, cancel)) = found {
            let branch = top_branch(&cancel.headers).unwrap_or_default();
            if self
                .client_keys
                .contains_key(&(branch, Method::Cancel.as_str().to_string()))
            {
                return;
            }
            // CANCEL reuses the INVITE's Via (branch) — start its transaction as is.
            self.start_client_raw(now, flow, cancel, None, 0, ClientTxId(self.next_id));
            self.next_id += 1;
        }
    }

    pub(super) fn start_client(
        &mut self,
        now: Instant,
        flow: Flow,
        mut req: Request,
        credentials: Option<(String, String)>,
        auth_attempts: u8,
        tu: ClientTxId,
    ) {
        let via = self.own_via(flow);
        req.headers.push_front("Via", via);
        if req.headers.get("Max-Forwards").is_none() {
            req.headers.push("Max-Forwards", "70");
        }
        if req.headers.get("User-Agent").is_none() {
            req.headers.push("User-Agent", self.cfg.user_agent.clone());
        }
        self.start_client_raw(now, flow, req, credentials, auth_attempts, tu);
    }

    pub(super) fn start_client_raw(
        &mut self,
        now: Instant,
        flow: Flow,
        req: Request,
        credentials: Option<(String, String)>,
        auth_attempts: u8,
        tu: ClientTxId,
    ) {
        let id = self.alloc_id();
        let branch = top_branch(&req.headers).unwrap_or_default();
        let bytes: Bytes = req.to_bytes().into();
        let reliable = flow.transport.reliable();
        let (machine, actions) = if req.method == Method::Invite {
            let (m, a) = ClientInvite::start(now, self.cfg.timers, reliable, bytes);
            (ClientMachine::Invite(m), a)
        } else {
            let (m, a) = ClientNonInvite::start(now, self.cfg.timers, reliable, bytes);
            (ClientMachine::NonInvite(m), a)
        };
        self.client_keys
            .insert((branch, req.method.as_str().to_string()), id);
        if req.method != Method::Cancel {
            self.client_by_tu.insert(tu, id);
        }
        self.stats.client_transactions += 1;
        self.client.insert(
            id,
            ClientTx {
                tu,
                machine,
                flow,
                request: req,
                credentials,
                auth_attempts,
            },
        );
        self.client_actions(now, id, actions, None);
        self.arm_client(id);
    }

    pub(super) fn handle_response(&mut self, now: Instant, resp: Response) {
        let branch = top_branch(&resp.headers);
        let method = resp
            .headers
            .get("CSeq")
            .and_then(|c| CSeq::parse(c).ok())
            .map(|c| c.method);
        let id = match (branch, method) {
            (Some(b), Some(m)) => self.client_keys.get(&(b, m)).copied(),
            _ => None,
        };
        let Some(id) = id else {
            self.stats.stray_responses += 1;
            tracing::debug!(
                status = resp.status,
                "response matches no transaction; dropped"
            );
            return;
        };
        let Some(tx) = self.client.get_mut(&id) else {
            return;
        };
        let tu = tx.tu;
        let provisional = (100..200).contains(&resp.status);
        let bytes: Bytes = resp.to_bytes().into();
        let actions = match &mut tx.machine {
            ClientMachine::Invite(m) => {
                let ack = (resp.status >= 300).then(|| -> Bytes {
                    build::ack_for_error(&tx.request, &resp).to_bytes().into()
                });
                m.handle_response(now, resp.status, bytes, ack)
            }
            ClientMachine::NonInvite(m) => m.handle_response(now, resp.status, bytes),
        };
        self.client_actions(now, id, actions, Some(resp));
        self.arm_client(id);
        if provisional && self.cancel_on_provisional.remove(&tu) {
            self.cancel(now, tu);
        }
    }

    pub(super) fn client_actions(
        &mut self,
        now: Instant,
        id: u64,
        actions: Vec<TxAction>,
        resp: Option<Response>,
    ) {
        let mut resp = resp;
        for a in actions {
            match a {
                TxAction::Send(bytes) => {
                    if let Some(tx) = self.client.get(&id) {
                        self.transmits.push_back(Transmit {
                            flow: tx.flow,
                            bytes,
                        });
                    }
                }
                TxAction::DeliverResponse { .. } => {
                    if let Some(r) = resp.take() {
                        self.deliver(now, id, r);
                    }
                }
                TxAction::Timeout => {
                    if let Some(tx) = self.client.get(&id) {
                        self.events.push_back(Event::RequestFailed {
                            tx: tx.tu,
                            reason: "timeout",
                        });
                    }
                }
                TxAction::TransportError => {
                    if let Some(tx) = self.client.get(&id) {
                        self.events.push_back(Event::RequestFailed {
                            tx: tx.tu,
                            reason: "transport error",
                        });
                    }
                }
                TxAction::Terminated => {
                    if let Some(tx) = self.client.remove(&id) {
                        if self.client_by_tu.get(&tx.tu) == Some(&id) {
                            self.client_by_tu.remove(&tx.tu);
                            self.cancel_on_provisional.remove(&tx.tu);
                        }
                        let branch = top_branch(&tx.request.headers).unwrap_or_default();
                        self.client_keys
                            .remove(&(branch, tx.request.method.as_str().to_string()));
                    }
                }
            }
        }
    }

    /// Hand a response to the TU, answering a digest challenge first when credentials allow.
    pub(super) fn deliver(&mut self, now: Instant, id: u64, resp: Response) {
        let Some(tx) = self.client.get(&id) else {
            return;
        };
        // A request the TU already cancelled is not retried with credentials: its challenge is
        // its final answer.
        let cancelled = resp.status >= 200 && self.cancel_on_provisional.remove(&tx.tu);
        if matches!(resp.status, 401 | 407) && tx.auth_attempts < 2 && !cancelled {
            if let Some((user, pass)) = tx.credentials.clone() {
                let header = if resp.status == 401 {
                    "WWW-Authenticate"
                } else {
                    "Proxy-Authenticate"
                };
                if let Some(ch) = auth::pick_challenge(resp.headers.get_all(header)) {
                    // Retry unless this is a second rejection of the same (non-stale) nonce.
                    let mut req = tx.request.clone();
                    let (flow, tu, attempts) = (tx.flow, tx.tu, tx.auth_attempts);
                    if attempts == 0 || ch.stale {
                        req.headers.remove("Via");
                        let answer_name = if resp.status == 401 {
                            "Authorization"
                        } else {
                            "Proxy-Authorization"
                        };
                        req.headers.remove(answer_name);
                        let cnonce = build::new_tag();
                        let value = auth::authorization(
                            &ch,
                            req.method.as_str(),
                            &req.uri,
                            &user,
                            &pass,
                            1,
                            &cnonce,
                        );
                        req.headers.push(answer_name, value);
                        if let Some(c) = req.headers.get("CSeq").and_then(|c| CSeq::parse(c).ok()) {
                            req.headers
                                .set("CSeq", format!("{} {}", c.seq.saturating_add(1), c.method));
                        }
                        self.start_client(now, flow, req, Some((user, pass)), attempts + 1, tu);
                        return;
                    }
                }
            }
        }
        self.events.push_back(Event::Response {
            tx: tx.tu,
            response: resp,
        });
    }
}
