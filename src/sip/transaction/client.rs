//! The client transaction machines: INVITE (RFC 3261 §17.1.1 with RFC 6026's `Accepted`) and
//! non-INVITE (§17.1.2). They share the timers, actions and the retransmission helper of
//! `sip/transaction.rs`.
//!
//! Must not know: sockets, the clock (every input takes `now`), parsing.

use super::*;

// ---------------------------------------------------------------------------------------
// Client INVITE (RFC 3261 §17.1.1, RFC 6026 §7.2)
// ---------------------------------------------------------------------------------------

/// The client side of an INVITE transaction.
#[derive(Debug, Clone)]
pub struct ClientInvite {
    fsm: Fsm<ClientInviteState>,
    timers: Timers,
    reliable: bool,
    /// The INVITE, for Timer A retransmissions.
    request: Bytes,
    /// The ACK for the 300-699 final response. It is resent for every retransmission of
    /// that response.
    ack: Option<Bytes>,
}

impl ClientInvite {
    /// Sends the INVITE: returns the machine and the initial actions (`[Send(request)]`).
    /// Timer A (unreliable only) starts at T1 and doubles with no cap. Timer B (64·T1)
    /// gives `Timeout` + `Terminated`.
    pub fn start(
        now: Instant,
        timers: Timers,
        reliable: bool,
        request: Bytes,
    ) -> (Self, Vec<TxAction>) {
        let slots = Slots {
            retransmit: Retransmit::arm(now, timers.t1).filter(|_| !reliable),
            expiry: now.checked_add(timers.t1_x64()),
        };
        let tx = Self {
            fsm: Fsm::new(ClientInviteState::Calling, slots),
            timers,
            reliable,
            request: request.clone(),
            ack: None,
        };
        (tx, vec![TxAction::Send(request)])
    }

    /// The current state.
    pub fn state(&self) -> ClientInviteState {
        self.fsm.state
    }

    /// Whether the machine has reached Terminated; the endpoint can drop it.
    pub fn is_terminated(&self) -> bool {
        self.fsm.is_terminated()
    }

    /// A response to this transaction arrived.
    ///
    /// * 1xx (Calling/Proceeding): deliver, go to Proceeding, stop Timers A and B. In
    ///   Proceeding the machine never times out; giving up is the TU's decision (CANCEL).
    /// * 2xx (Calling/Proceeding): deliver, go to Accepted (RFC 6026). Timer M (64·T1) then
    ///   terminates. Every 2xx retransmission in Accepted is delivered as well, so the TU
    ///   can ACK it again.
    /// * 300-699, first one: deliver, `Send(ack)` if `ack` is `Some`, go to Completed.
    ///   Timer D is 32 s on unreliable transports (more if 64·T1 is longer); on reliable
    ///   ones it is zero, and the machine terminates at once.
    /// * 300-699 in Completed: a retransmission. Send the same ACK again; nothing is
    ///   delivered.
    ///
    /// Any other response, in any state, is absorbed.
    pub fn handle_response(
        &mut self,
        now: Instant,
        status: u16,
        bytes: Bytes,
        ack: Option<Bytes>,
    ) -> Vec<TxAction> {
        use ClientInviteState as S;
        let Some(class) = StatusClass::of(status) else {
            return Vec::new();
        };
        let deliver = TxAction::DeliverResponse { status, bytes };
        match (self.fsm.state, class) {
            (S::Calling | S::Proceeding, StatusClass::Provisional) => {
                self.fsm.enter(S::Proceeding, Slots::default());
                vec![deliver]
            }
            (S::Calling | S::Proceeding, StatusClass::Success) => {
                let mut out = vec![deliver];
                self.fsm
                    .linger(S::Accepted, now, self.timers.t1_x64(), &mut out);
                out
            }
            (S::Calling | S::Proceeding, StatusClass::Failure) => {
                self.ack = ack;
                let mut out = vec![deliver];
                out.extend(self.ack.clone().map(TxAction::Send));
                let timer_d = self.timers.timer_d(self.reliable);
                self.fsm.linger(S::Completed, now, timer_d, &mut out);
                out
            }
            (S::Completed, StatusClass::Failure) => {
                self.ack = self.ack.take().or(ack);
                self.ack.clone().map(TxAction::Send).into_iter().collect()
            }
            (S::Accepted, StatusClass::Success) => vec![deliver],
            _ => Vec::new(),
        }
    }

    /// The transport failed, or the TU abandons the transaction locally. CANCEL is a
    /// separate non-INVITE transaction. Emits `TransportError` + `Terminated`.
    pub fn handle_transport_error(&mut self) -> Vec<TxAction> {
        self.fsm.transport_error()
    }

    /// The earliest pending timer deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.fsm.slots.next()
    }

    /// Runs every timer that is due at `now` (see the module docs for late calls).
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<TxAction> {
        let mut out = Vec::new();
        if self.fsm.slots.expired(now) {
            // Timer B gives up. Timers D and M only absorbed retransmissions.
            if self.fsm.state == ClientInviteState::Calling {
                out.push(TxAction::Timeout);
            }
            self.fsm.terminate(&mut out);
        } else if let Some(timer_a) = self.fsm.slots.due_retransmit(now) {
            self.fsm.slots.retransmit = Retransmit::arm(now, timer_a.interval.saturating_mul(2));
            out.push(TxAction::Send(self.request.clone()));
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// Client non-INVITE (RFC 3261 §17.1.2)
// ---------------------------------------------------------------------------------------

/// The client side of a non-INVITE transaction.
#[derive(Debug, Clone)]
pub struct ClientNonInvite {
    fsm: Fsm<ClientNonInviteState>,
    timers: Timers,
    reliable: bool,
    /// The request, for Timer E retransmissions.
    request: Bytes,
}

impl ClientNonInvite {
    /// Sends the request: returns the machine and the initial actions (`[Send(request)]`).
    ///
    /// Timer E (unreliable only) starts at T1, doubles, and is capped at T2. In Proceeding
    /// it fires every T2. Timer F (64·T1) gives `Timeout` + `Terminated`.
    pub fn start(
        now: Instant,
        timers: Timers,
        reliable: bool,
        request: Bytes,
    ) -> (Self, Vec<TxAction>) {
        let slots = Slots {
            retransmit: Retransmit::arm(now, timers.t1).filter(|_| !reliable),
            expiry: now.checked_add(timers.t1_x64()),
        };
        let tx = Self {
            fsm: Fsm::new(ClientNonInviteState::Trying, slots),
            timers,
            reliable,
            request: request.clone(),
        };
        (tx, vec![TxAction::Send(request)])
    }

    /// The current state.
    pub fn state(&self) -> ClientNonInviteState {
        self.fsm.state
    }

    /// Whether the machine has reached Terminated; the endpoint can drop it.
    pub fn is_terminated(&self) -> bool {
        self.fsm.is_terminated()
    }

    /// A response to this transaction arrived.
    ///
    /// * 1xx (Trying/Proceeding): deliver, go to Proceeding. Timers E and F keep running.
    /// * 200-699 (Trying/Proceeding): deliver, go to Completed. Timer K is T4 on unreliable
    ///   transports; on reliable ones it is zero, and the machine terminates at once.
    ///
    /// Responses in Completed are absorbed.
    pub fn handle_response(&mut self, now: Instant, status: u16, bytes: Bytes) -> Vec<TxAction> {
        use ClientNonInviteState as S;
        let Some(class) = StatusClass::of(status) else {
            return Vec::new();
        };
        if !matches!(self.fsm.state, S::Trying | S::Proceeding) {
            return Vec::new();
        }
        let mut out = vec![TxAction::DeliverResponse { status, bytes }];
        if class == StatusClass::Provisional {
            self.fsm.state = S::Proceeding;
        } else {
            let timer_k = self.timers.t4_unless_reliable(self.reliable);
            self.fsm.linger(S::Completed, now, timer_k, &mut out);
        }
        out
    }

    /// The transport failed: emits `TransportError` + `Terminated`.
    pub fn handle_transport_error(&mut self) -> Vec<TxAction> {
        self.fsm.transport_error()
    }

    /// The earliest pending timer deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.fsm.slots.next()
    }

    /// Runs every timer that is due at `now` (see the module docs for late calls).
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<TxAction> {
        use ClientNonInviteState as S;
        let mut out = Vec::new();
        if self.fsm.slots.expired(now) {
            // Timer F gives up. Timer K only absorbed retransmissions.
            if matches!(self.fsm.state, S::Trying | S::Proceeding) {
                out.push(TxAction::Timeout);
            }
            self.fsm.terminate(&mut out);
        } else if let Some(timer_e) = self.fsm.slots.due_retransmit(now) {
            let next = if self.fsm.state == S::Proceeding {
                self.timers.cap()
            } else {
                self.timers.backoff(timer_e.interval)
            };
            self.fsm.slots.retransmit = Retransmit::arm(now, next);
            out.push(TxAction::Send(self.request.clone()));
        }
        out
    }
}
