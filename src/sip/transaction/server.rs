//! The server transaction machines: INVITE (RFC 3261 §17.2.1 with RFC 6026's `Accepted`) and
//! non-INVITE (§17.2.2). They share the timers, actions and the retransmission helper of
//! `sip/transaction.rs`.
//!
//! Must not know: sockets, the clock (every input takes `now`), parsing.

use super::*;

// ---------------------------------------------------------------------------------------
// Server INVITE (RFC 3261 §17.2.1, RFC 6026 §7.1)
// ---------------------------------------------------------------------------------------

/// The server side of an INVITE transaction.
#[derive(Debug, Clone)]
pub struct ServerInvite {
    fsm: Fsm<ServerInviteState>,
    timers: Timers,
    reliable: bool,
    /// The last response sent: a provisional one in Proceeding, the final one afterwards.
    last_response: Option<(u16, Bytes)>,
}

impl ServerInvite {
    /// Created on receipt of an INVITE. `reliable` = TCP. It is in Proceeding. The endpoint sends
    /// `100 Trying` itself right away by calling `respond` with the 100's bytes.
    pub fn new(_now: Instant, timers: Timers, reliable: bool) -> Self {
        Self {
            fsm: Fsm::new(ServerInviteState::Proceeding, Slots::default()),
            timers,
            reliable,
            last_response: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> ServerInviteState {
        self.fsm.state
    }

    /// Whether the machine has reached Terminated; the endpoint can drop it.
    pub fn is_terminated(&self) -> bool {
        self.fsm.is_terminated()
    }

    /// The TU sends a response; it is only accepted in Proceeding.
    ///
    /// * 1xx: `Send`, stay in Proceeding; kept as the last provisional.
    /// * 2xx: `Send`, go to Accepted (RFC 6026). The 2xx is retransmitted after T1, doubling,
    ///   capped at T2, until [`handle_ack`](Self::handle_ack). This happens on UDP *and*
    ///   TCP, because 2xx retransmission is end-to-end (§13.3.1.4). Timer L (64·T1) ends
    ///   the wait with `Timeout` if no ACK comes.
    /// * 300-699: `Send`, go to Completed. Timer G (unreliable only: T1, doubling, cap T2)
    ///   retransmits it; Timer H (64·T1) gives `Timeout` + `Terminated`.
    ///
    /// In any other state, or for a status outside `100..=699`, this returns an empty `Vec`.
    /// That includes a second 2xx in Accepted, because the machine retransmits the first
    /// one itself.
    pub fn respond(&mut self, now: Instant, status: u16, bytes: Bytes) -> Vec<TxAction> {
        use ServerInviteState as S;
        let Some(class) = StatusClass::of(status) else {
            return Vec::new();
        };
        if self.fsm.state != S::Proceeding {
            return Vec::new();
        }
        self.last_response = Some((status, bytes.clone()));
        let t1 = self.timers.t1;
        let expiry = now.checked_add(self.timers.t1_x64());
        match class {
            StatusClass::Provisional => {}
            StatusClass::Success => {
                let retransmit = Retransmit::arm(now, t1);
                self.fsm.enter(S::Accepted, Slots { retransmit, expiry });
            }
            StatusClass::Failure => {
                let retransmit = Retransmit::arm(now, t1).filter(|_| !self.reliable);
                self.fsm.enter(S::Completed, Slots { retransmit, expiry });
            }
        }
        vec![TxAction::Send(bytes)]
    }

    /// A retransmission of the INVITE arrived: resend the last response (provisional in Proceeding,
    /// final in Completed); nothing in Accepted/Confirmed.
    pub fn handle_request_retransmit(&mut self, _now: Instant) -> Vec<TxAction> {
        match self.fsm.state {
            ServerInviteState::Proceeding | ServerInviteState::Completed => self.resend_last(),
            _ => Vec::new(),
        }
    }

    /// An ACK arrived.
    ///
    /// * Completed: go to Confirmed. Timer I is T4 on unreliable transports; on reliable
    ///   ones it is zero, and the machine terminates at once.
    /// * Accepted: stop retransmitting the 2xx and terminate. The ACK for a 2xx is a
    ///   transaction of its own, but the endpoint routes it here anyway.
    /// * Confirmed: an ACK retransmission; absorbed.
    ///
    /// The `bool` tells whether the ACK matched a state that expects one. It is `false` in
    /// Proceeding and Terminated.
    pub fn handle_ack(&mut self, now: Instant) -> (bool, Vec<TxAction>) {
        use ServerInviteState as S;
        let mut out = Vec::new();
        let matched = match self.fsm.state {
            S::Completed => {
                let timer_i = self.timers.t4_unless_reliable(self.reliable);
                self.fsm.linger(S::Confirmed, now, timer_i, &mut out);
                true
            }
            S::Accepted => {
                self.fsm.terminate(&mut out);
                true
            }
            S::Confirmed => true,
            S::Proceeding | S::Terminated => false,
        };
        (matched, out)
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
        use ServerInviteState as S;
        let mut out = Vec::new();
        if self.fsm.slots.expired(now) {
            // Timers H and L: the ACK never came. Timer I just absorbed ACK retransmissions.
            if matches!(self.fsm.state, S::Completed | S::Accepted) {
                out.push(TxAction::Timeout);
            }
            self.fsm.terminate(&mut out);
        } else if let Some(timer) = self.fsm.slots.due_retransmit(now) {
            // Timer G (Completed) and the 2xx timer (Accepted) use the same schedule.
            self.fsm.slots.retransmit = Retransmit::arm(now, self.timers.backoff(timer.interval));
            out.extend(self.resend_last());
        }
        out
    }

    /// The status code of the last response sent, if any.
    pub fn last_response_status(&self) -> Option<u16> {
        self.last_response.as_ref().map(|(status, _)| *status)
    }

    fn resend_last(&self) -> Vec<TxAction> {
        self.last_response
            .iter()
            .map(|(_, bytes)| TxAction::Send(bytes.clone()))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// Server non-INVITE (RFC 3261 §17.2.2)
// ---------------------------------------------------------------------------------------

/// The server side of a non-INVITE transaction.
#[derive(Debug, Clone)]
pub struct ServerNonInvite {
    fsm: Fsm<ServerNonInviteState>,
    timers: Timers,
    reliable: bool,
    /// The last response sent.
    last_response: Option<(u16, Bytes)>,
}

impl ServerNonInvite {
    /// Created on receipt of a non-INVITE request. `reliable` = TCP. It is in Trying.
    pub fn new(_now: Instant, timers: Timers, reliable: bool) -> Self {
        Self {
            fsm: Fsm::new(ServerNonInviteState::Trying, Slots::default()),
            timers,
            reliable,
            last_response: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> ServerNonInviteState {
        self.fsm.state
    }

    /// Whether the machine has reached Terminated; the endpoint can drop it.
    pub fn is_terminated(&self) -> bool {
        self.fsm.is_terminated()
    }

    /// The TU sends a response.
    ///
    /// * 1xx: `Send`, go to Proceeding.
    /// * 200-699: `Send`, go to Completed. Timer J is 64·T1 on unreliable transports; on
    ///   reliable ones it is zero, and the machine terminates at once.
    ///
    /// In Completed (any later final is discarded, §17.2.2) or Terminated, or for a status
    /// outside `100..=699`, this returns an empty `Vec`.
    pub fn respond(&mut self, now: Instant, status: u16, bytes: Bytes) -> Vec<TxAction> {
        use ServerNonInviteState as S;
        let Some(class) = StatusClass::of(status) else {
            return Vec::new();
        };
        if !matches!(self.fsm.state, S::Trying | S::Proceeding) {
            return Vec::new();
        }
        self.last_response = Some((status, bytes.clone()));
        let mut out = vec![TxAction::Send(bytes)];
        if class == StatusClass::Provisional {
            self.fsm.state = S::Proceeding;
        } else {
            let timer_j = self.timers.timer_j(self.reliable);
            self.fsm.linger(S::Completed, now, timer_j, &mut out);
        }
        out
    }

    /// A retransmission of the request arrived. In Trying nothing happens. In Proceeding
    /// and Completed the last response is sent again.
    pub fn handle_request_retransmit(&mut self, _now: Instant) -> Vec<TxAction> {
        match self.fsm.state {
            ServerNonInviteState::Proceeding | ServerNonInviteState::Completed => self
                .last_response
                .iter()
                .map(|(_, bytes)| TxAction::Send(bytes.clone()))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The transport failed: emits `TransportError` + `Terminated`.
    pub fn handle_transport_error(&mut self) -> Vec<TxAction> {
        self.fsm.transport_error()
    }

    /// The earliest pending timer deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.fsm.slots.next()
    }

    /// Runs every timer that is due at `now`. The only one is Timer J, in Completed.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<TxAction> {
        let mut out = Vec::new();
        if self.fsm.slots.expired(now) {
            self.fsm.terminate(&mut out);
        }
        out
    }

    /// The status code of the last response sent, if any.
    pub fn last_response_status(&self) -> Option<u16> {
        self.last_response.as_ref().map(|(status, _)| *status)
    }
}
