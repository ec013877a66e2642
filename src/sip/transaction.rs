//! SIP transaction state machines: RFC 3261 §17, with RFC 6026's `Accepted` state.
//!
//! This module owns the four transaction machines — INVITE and non-INVITE, client and
//! server — and nothing else. A machine decides *what* happens (send these bytes, pass
//! this response up, report a timeout, terminate) and *when* (its timer deadlines). The
//! SIP endpoint that owns it does the actual work.
//!
//! Files: what the four machines share (timers, actions, states, retransmission) here; the
//! server machines in `transaction/server.rs`, the client machines in `transaction/client.rs`.
//!
//! The machines are sans-IO, and they must stay that way. They know nothing of:
//!
//! * **Sockets.** Output is a list of [`TxAction`]s. [`TxAction::Send`] means "send to this
//!   transaction's peer", and only the endpoint knows where the peer is.
//! * **The clock.** Every input takes `now: Instant`, and nothing here reads the clock.
//!   The endpoint keeps its transactions in a map and their `poll_timeout()` deadlines in
//!   a timer heap. When a deadline passes, it calls `handle_timeout(now)`. The tests drive
//!   virtual time the same way.
//! * **Parsing.** Messages are opaque [`Bytes`] that the endpoint built. A machine only
//!   looks at the status code passed with a response. Matching a message to its
//!   transaction (branch, method, CSeq), building the ACK for a 300-699 response, and
//!   reading the transport are the endpoint's job.
//!
//! # Timers
//!
//! At any moment a machine has at most two timers armed: one that retransmits and one
//! that ends the state. A one-shot timer of zero length (a reliable transport) takes
//! effect inside the call that would have armed it.
//!
//! | Timer | Machine: state                   | On firing                        | Duration             |
//! |-------|----------------------------------|----------------------------------|----------------------|
//! | A     | client INVITE: Calling           | resend INVITE (unreliable only)  | T1, doubling         |
//! | B     | client INVITE: Calling           | `Timeout` + `Terminated`         | 64·T1                |
//! | D     | client INVITE: Completed         | `Terminated`                     | max(32 s, 64·T1) / 0 |
//! | M     | client INVITE: Accepted          | `Terminated`                     | 64·T1                |
//! | E     | client non-INVITE: Trying        | resend request (unreliable only) | T1, doubling, ≤ T2   |
//! | E     | client non-INVITE: Proceeding    | resend request (unreliable only) | T2                   |
//! | F     | client non-INVITE: Trying, Proc. | `Timeout` + `Terminated`         | 64·T1                |
//! | K     | client non-INVITE: Completed     | `Terminated`                     | T4 / 0               |
//! | G     | server INVITE: Completed         | resend final (unreliable only)   | T1, doubling, ≤ T2   |
//! | H     | server INVITE: Completed         | `Timeout` + `Terminated`         | 64·T1                |
//! | I     | server INVITE: Confirmed         | `Terminated`                     | T4 / 0               |
//! | 2xx   | server INVITE: Accepted          | resend 2xx (every transport)     | T1, doubling, ≤ T2   |
//! | L     | server INVITE: Accepted          | `Timeout` + `Terminated`         | 64·T1                |
//! | J     | server non-INVITE: Completed     | `Terminated`                     | 64·T1 / 0            |
//!
//! "x / 0" means x on unreliable transports and zero on reliable ones. A T2 configured
//! below T1 is treated as T1, so retransmission intervals never shrink.
//!
//! # Contract
//!
//! * [`TxAction::Terminated`] is emitted exactly once, as the last action of the call that
//!   enters `Terminated`. After that, every input returns an empty `Vec` and
//!   `poll_timeout()` returns `None`.
//! * `handle_timeout(now)` runs every timer whose deadline is `<= now`. A one-shot timer
//!   that is due beats a retransmission that is also due: Timer B wins over Timer A. A
//!   retransmission timer fires at most once per call and is re-armed from `now`, so a
//!   late call produces no burst. After `handle_timeout(now)` returns, `poll_timeout()` is
//!   either `None` or later than `now`. A "fire everything due" loop in the caller
//!   therefore always ends.
//! * `now` is expected to never go backwards. If it does, nothing panics: time arithmetic
//!   is checked, and a deadline past `Instant`'s range means the timer never fires.
//!   Status codes outside `100..=699` are ignored.

use std::sync::Arc;
use std::time::{Duration, Instant};

mod client;
mod server;
pub use client::{ClientInvite, ClientNonInvite};
pub use server::{ServerInvite, ServerNonInvite};

/// An opaque SIP message built by the endpoint; cloning it is cheap.
pub type Bytes = Arc<[u8]>;

/// The shortest interval a retransmission timer uses. If `T1` or `T2` is configured as
/// zero, this keeps a retransmission timer from being due again at the same `now`.
const MIN_RETRANSMIT_INTERVAL: Duration = Duration::from_millis(1);

/// Lower bound of Timer D on unreliable transports (RFC 3261 §17.1.1.2).
const TIMER_D_MIN: Duration = Duration::from_secs(32);

/// The RFC 3261 timer base values (§17.1.1.1, Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate. It is the first retransmission interval and the base of the 64·T1
    /// timeouts.
    pub t1: Duration,
    /// Cap on retransmission intervals for non-INVITE requests and INVITE responses.
    pub t2: Duration,
    /// Longest time a message can stay in the network. Timers I and K use it.
    pub t4: Duration,
}

impl Default for Timers {
    /// T1 = 500 ms, T2 = 4 s, T4 = 5 s.
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// 64·T1: Timers B, F, H, L and M, and Timer J on unreliable transports.
    fn t1_x64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// Timer D: waits for retransmitted final responses to die out. RFC 3261 asks for "at
    /// least 32 s", and this value also covers the server's 64·T1 Timer H if T1 is raised.
    fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.t1_x64().max(TIMER_D_MIN)
        }
    }

    /// Timer I (server INVITE) and Timer K (client non-INVITE).
    fn t4_unless_reliable(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.t4
        }
    }

    /// Timer J (server non-INVITE).
    fn timer_j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.t1_x64()
        }
    }

    /// The cap on retransmission intervals: T2. A misconfigured T2 below T1 counts as T1,
    /// so the intervals never shrink below where they started.
    fn cap(&self) -> Duration {
        self.t2.max(self.t1)
    }

    /// The next interval of a retransmission timer capped at T2: Timer E in Trying,
    /// Timer G, and the server's 2xx timer.
    fn backoff(&self, interval: Duration) -> Duration {
        interval.saturating_mul(2).min(self.cap())
    }
}

/// An instruction from a transaction to its endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxAction {
    /// Send these bytes to the transaction's peer (the endpoint knows where).
    Send(Bytes),
    /// Pass this received response up to the transaction user (client tx only).
    /// `status` is its code.
    DeliverResponse { status: u16, bytes: Bytes },
    /// The transaction timed out (Timer B / F), or for an INVITE server tx: no ACK arrived
    /// before Timer H (or before Timer L for a 2xx). The TU must be told.
    Timeout,
    /// The transport reported an error for this transaction.
    TransportError,
    /// The machine reached Terminated; the endpoint removes it.
    Terminated,
}

/// State of a [`ServerInvite`] (RFC 3261 Figure 7, RFC 6026 Figure 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerInviteState {
    /// Created on receipt of the INVITE; provisional responses may be sent.
    Proceeding,
    /// A 300-699 final was sent; waiting for the ACK (Timers G and H).
    Completed,
    /// The ACK arrived; absorbing ACK retransmissions (Timer I).
    Confirmed,
    /// A 2xx was sent; retransmitting it until the ACK arrives (Timer L).
    Accepted,
    /// Finished; the endpoint drops the machine.
    Terminated,
}

/// State of a [`ServerNonInvite`] (RFC 3261 Figure 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerNonInviteState {
    /// Created on receipt of the request; nothing sent yet.
    Trying,
    /// A provisional response was sent.
    Proceeding,
    /// A final response was sent; absorbing request retransmissions (Timer J).
    Completed,
    /// Finished; the endpoint drops the machine.
    Terminated,
}

/// State of a [`ClientInvite`] (RFC 3261 Figure 5, RFC 6026 Figure 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientInviteState {
    /// The INVITE was sent; no response yet (Timers A and B).
    Calling,
    /// A provisional response arrived; the machine waits for the final one without a timer.
    Proceeding,
    /// A 300-699 final arrived and was ACKed; absorbing its retransmissions (Timer D).
    Completed,
    /// A 2xx arrived; 2xx retransmissions go to the TU (Timer M).
    Accepted,
    /// Finished; the endpoint drops the machine.
    Terminated,
}

/// State of a [`ClientNonInvite`] (RFC 3261 Figure 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientNonInviteState {
    /// The request was sent; no response yet (Timers E and F).
    Trying,
    /// A provisional response arrived (Timer E at T2, Timer F).
    Proceeding,
    /// A final response arrived; absorbing its retransmissions (Timer K).
    Completed,
    /// Finished; the endpoint drops the machine.
    Terminated,
}

/// Status code classes that drive the transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusClass {
    /// 100-199.
    Provisional,
    /// 200-299.
    Success,
    /// 300-699.
    Failure,
}

impl StatusClass {
    /// Classifies a status code. Returns `None` for codes outside `100..=699`; the machines
    /// ignore those.
    fn of(status: u16) -> Option<Self> {
        match status {
            100..=199 => Some(Self::Provisional),
            200..=299 => Some(Self::Success),
            300..=699 => Some(Self::Failure),
            _ => None,
        }
    }
}

/// An armed retransmission timer: A, E, G, or the server's 2xx timer in Accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Retransmit {
    /// When it fires.
    at: Instant,
    /// The interval that led to `at`. The next interval is computed from it.
    interval: Duration,
}

impl Retransmit {
    /// Arms a timer that fires `interval` after `now`. Returns `None` (never fires) if the
    /// deadline is past `Instant`'s range.
    fn arm(now: Instant, interval: Duration) -> Option<Self> {
        let interval = interval.max(MIN_RETRANSMIT_INTERVAL);
        now.checked_add(interval).map(|at| Self { at, interval })
    }
}

/// The timers armed in a machine's current state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Slots {
    /// The retransmission timer, if the state retransmits.
    retransmit: Option<Retransmit>,
    /// The one-shot timer that ends the state: B, D, F, H, I, J, K, L or M.
    expiry: Option<Instant>,
}

impl Slots {
    /// The earliest armed deadline.
    fn next(&self) -> Option<Instant> {
        match (self.retransmit.map(|r| r.at), self.expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn expired(&self, now: Instant) -> bool {
        self.expiry.is_some_and(|at| at <= now)
    }

    fn due_retransmit(&self, now: Instant) -> Option<Retransmit> {
        self.retransmit.filter(|r| r.at <= now)
    }
}

/// Implemented by the four state enums, so that [`Fsm`] can share the bookkeeping for
/// termination.
trait TxState: Copy + Eq {
    const TERMINATED: Self;
}

impl TxState for ServerInviteState {
    const TERMINATED: Self = Self::Terminated;
}
impl TxState for ServerNonInviteState {
    const TERMINATED: Self = Self::Terminated;
}
impl TxState for ClientInviteState {
    const TERMINATED: Self = Self::Terminated;
}
impl TxState for ClientNonInviteState {
    const TERMINATED: Self = Self::Terminated;
}

/// The current state and its timers, shared by all four machines.
#[derive(Debug, Clone)]
struct Fsm<S> {
    state: S,
    slots: Slots,
}

impl<S: TxState> Fsm<S> {
    fn new(state: S, slots: Slots) -> Self {
        Self { state, slots }
    }

    fn is_terminated(&self) -> bool {
        self.state == S::TERMINATED
    }

    /// Moves to `state`; `slots` replaces all timers.
    fn enter(&mut self, state: S, slots: Slots) {
        self.state = state;
        self.slots = slots;
    }

    /// Enters `state`, whose only timer terminates quietly after `after` (D, I, J, K, M).
    /// A zero `after` (reliable transport) terminates at once.
    fn linger(&mut self, state: S, now: Instant, after: Duration, out: &mut Vec<TxAction>) {
        if after.is_zero() {
            self.terminate(out);
        } else {
            let expiry = now.checked_add(after);
            self.enter(
                state,
                Slots {
                    retransmit: None,
                    expiry,
                },
            );
        }
    }

    /// Enters Terminated and emits [`TxAction::Terminated`], unless already there.
    fn terminate(&mut self, out: &mut Vec<TxAction>) {
        if !self.is_terminated() {
            self.enter(S::TERMINATED, Slots::default());
            out.push(TxAction::Terminated);
        }
    }

    /// Handles a transport error, which is fatal in every state.
    fn transport_error(&mut self) -> Vec<TxAction> {
        if self.is_terminated() {
            return Vec::new();
        }
        let mut out = vec![TxAction::TransportError];
        self.terminate(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // -- Helpers ----------------------------------------------------------------------

    fn bytes(s: &str) -> Bytes {
        Bytes::from(s.as_bytes())
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn send(s: &str) -> TxAction {
        TxAction::Send(bytes(s))
    }

    fn deliver(status: u16, s: &str) -> TxAction {
        TxAction::DeliverResponse {
            status,
            bytes: bytes(s),
        }
    }

    fn ms_list(list: &[u64]) -> Vec<Duration> {
        list.iter().copied().map(ms).collect()
    }

    /// What an endpoint needs from every machine: timers, transport errors, liveness.
    trait Drive {
        fn deadline(&self) -> Option<Instant>;
        fn fire(&mut self, now: Instant) -> Vec<TxAction>;
        fn transport_error(&mut self) -> Vec<TxAction>;
        fn done(&self) -> bool;
    }

    macro_rules! impl_drive {
        ($($ty:ty),*) => {$(
            impl Drive for $ty {
                fn deadline(&self) -> Option<Instant> {
                    self.poll_timeout()
                }
                fn fire(&mut self, now: Instant) -> Vec<TxAction> {
                    self.handle_timeout(now)
                }
                fn transport_error(&mut self) -> Vec<TxAction> {
                    self.handle_transport_error()
                }
                fn done(&self) -> bool {
                    self.is_terminated()
                }
            }
        )*};
    }
    impl_drive!(ServerInvite, ServerNonInvite, ClientInvite, ClientNonInvite);

    /// Fires every deadline up to `t0 + until`, each exactly on time, as an endpoint's
    /// timer heap would. Returns each action with its offset from `t0`.
    fn run_timers(m: &mut impl Drive, t0: Instant, until: Duration) -> Vec<(Duration, TxAction)> {
        let mut log = Vec::new();
        for _ in 0..10_000 {
            match m.deadline().filter(|&at| at <= t0 + until) {
                Some(at) => log.extend(m.fire(at).into_iter().map(|a| (at - t0, a))),
                None => return log,
            }
        }
        panic!("timers never settled");
    }

    fn send_times(log: &[(Duration, TxAction)]) -> Vec<Duration> {
        log.iter()
            .filter(|(_, a)| matches!(a, TxAction::Send(_)))
            .map(|(at, _)| *at)
            .collect()
    }

    fn non_sends(log: &[(Duration, TxAction)]) -> Vec<(Duration, TxAction)> {
        log.iter()
            .filter(|(_, a)| !matches!(a, TxAction::Send(_)))
            .cloned()
            .collect()
    }

    fn timed_out_at(at: Duration) -> Vec<(Duration, TxAction)> {
        vec![(at, TxAction::Timeout), (at, TxAction::Terminated)]
    }

    /// The (Send-free) action log that ends with a quiet termination at `at`.
    fn terminated_at(at: Duration) -> Vec<(Duration, TxAction)> {
        vec![(at, TxAction::Terminated)]
    }

    /// Schedule of a retransmission timer capped at T2 = 4 s, starting at T1 = 0.5 s after
    /// `start` and staying strictly before `end`: 0.5, 1.5, 3.5, 7.5, 11.5, ...
    fn capped_schedule(start: Duration, end: Duration) -> Vec<Duration> {
        let mut out = Vec::new();
        let (mut at, mut interval) = (start + ms(500), ms(500));
        while at < end {
            out.push(at);
            interval = (interval * 2).min(secs(4));
            at += interval;
        }
        out
    }

    #[test]
    fn default_timers_are_the_rfc_3261_values() {
        let t = Timers::default();
        assert_eq!((t.t1, t.t2, t.t4), (ms(500), secs(4), secs(5)));
        assert_eq!(t.t1_x64(), secs(32));
        assert_eq!(t.timer_d(false), secs(32));
        assert_eq!(t.timer_d(true), Duration::ZERO);
        assert_eq!(
            capped_schedule(Duration::ZERO, secs(16)),
            ms_list(&[500, 1500, 3500, 7500, 11500, 15500])
        );
    }

    // -- Client INVITE ------------------------------------------------------------------

    #[test]
    fn client_invite_timer_a_doubles_until_timer_b_times_out() {
        let t0 = Instant::now();
        let (mut tx, out) = ClientInvite::start(t0, Timers::default(), false, bytes("INVITE"));
        assert_eq!(out, vec![send("INVITE")]);
        assert_eq!(tx.state(), ClientInviteState::Calling);
        assert_eq!(tx.poll_timeout(), Some(t0 + ms(500)));

        let log = run_timers(&mut tx, t0, secs(100));
        assert_eq!(
            send_times(&log),
            ms_list(&[500, 1500, 3500, 7500, 15500, 31500])
        );
        assert!(log
            .iter()
            .all(|(_, a)| !matches!(a, TxAction::Send(b) if **b != *b"INVITE")));
        assert_eq!(non_sends(&log), timed_out_at(secs(32)));
        assert_eq!(tx.state(), ClientInviteState::Terminated);
        assert_eq!(tx.poll_timeout(), None);
    }

    #[test]
    fn client_invite_over_reliable_transport_has_no_timer_a() {
        let t0 = Instant::now();
        let (mut tx, out) = ClientInvite::start(t0, Timers::default(), true, bytes("INVITE"));
        assert_eq!(out, vec![send("INVITE")]);
        assert_eq!(tx.poll_timeout(), Some(t0 + secs(32)));
        assert_eq!(run_timers(&mut tx, t0, secs(100)), timed_out_at(secs(32)));
    }

    #[test]
    fn client_invite_late_timeout_fires_timer_a_once_and_timer_b_wins() {
        let t0 = Instant::now();
        let (mut tx, _) = ClientInvite::start(t0, Timers::default(), false, bytes("INVITE"));
        // 10 s late: Timer A was due at 0.5, 1.5, 3.5 and 7.5 s. It fires once, and the next
        // interval (1 s) counts from the firing time.
        assert_eq!(tx.handle_timeout(t0 + secs(10)), vec![send("INVITE")]);
        assert_eq!(tx.poll_timeout(), Some(t0 + secs(11)));
        assert_eq!(tx.handle_timeout(t0 + secs(10)), vec![]);
        // Timer A (11 s) and Timer B (32 s) are both due: B wins and nothing is sent.
        assert_eq!(
            tx.handle_timeout(t0 + secs(40)),
            vec![TxAction::Timeout, TxAction::Terminated]
        );
        assert_eq!(tx.handle_timeout(t0 + secs(50)), vec![]);
    }

    #[test]
    fn client_invite_provisional_stops_timers_a_and_b() {
        let t0 = Instant::now();
        let (mut tx, _) = ClientInvite::start(t0, Timers::default(), false, bytes("INVITE"));
        assert_eq!(
            run_timers(&mut tx, t0, ms(700)),
            vec![(ms(500), send("INVITE"))]
        );
        let out = tx.handle_response(t0 + ms(700), 180, bytes("180"), None);
        assert_eq!(out, vec![deliver(180, "180")]);
        assert_eq!(tx.state(), ClientInviteState::Proceeding);
        assert_eq!(tx.poll_timeout(), None);
        assert_eq!(tx.handle_timeout(t0 + secs(1000)), vec![]);
        // More provisionals are delivered; the final still works much later.
        assert_eq!(
            tx.handle_response(t0 + secs(60), 183, bytes("183"), None),
            vec![deliver(183, "183")]
        );
        assert_eq!(
            tx.handle_response(t0 + secs(90), 200, bytes("200"), None),
            vec![deliver(200, "200")]
        );
        assert_eq!(tx.state(), ClientInviteState::Accepted);
    }

    #[test]
    fn client_invite_failure_is_acked_and_timer_d_absorbs_retransmissions() {
        let t0 = Instant::now();
        let (mut tx, _) = ClientInvite::start(t0, Timers::default(), false, bytes("INVITE"));
        let out = tx.handle_response(t0 + secs(1), 486, bytes("486"), Some(bytes("ACK")));
        assert_eq!(out, vec![deliver(486, "486"), send("ACK")]);
        assert_eq!(tx.state(), ClientInviteState::Completed);
        assert_eq!(tx.poll_timeout(), Some(t0 + secs(33)));

        // The retransmitted final is ACKed again with the *same* ACK and not delivered.
        let out = tx.handle_response(t0 + secs(2), 486, bytes("486"), Some(bytes("other ACK")));
        assert_eq!(out, vec![send("ACK")]);
        assert_eq!(
            tx.handle_response(t0 + secs(3), 486, bytes("486"), None),
            vec![send("ACK")]
        );
        // Other responses are absorbed.
        assert_eq!(
            tx.handle_response(t0 + secs(3), 180, bytes("180"), None),
            vec![]
        );
        assert_eq!(
            tx.handle_response(t0 + secs(3), 200, bytes("200"), None),
            vec![]
        );

        // Timer A stopped: the only thing left is Timer D, 32 s after the final.
        assert_eq!(run_timers(&mut tx, t0, secs(100)), terminated_at(secs(33)));
    }

    #[test]
    fn client_invite_failure_over_reliable_transport_terminates_at_once() {
        let t0 = Instant::now();
        let (mut tx, _) = ClientInvite::start(t0, Timers::default(), true, bytes("INVITE"));
        let out = tx.handle_response(t0 + secs(1), 503, bytes("503"), Some(bytes("ACK")));
        assert_eq!(
            out,
            vec![deliver(503, "503"), send("ACK"), TxAction::Terminated]
        );
        assert_eq!(tx.state(), ClientInviteState::Terminated);
        assert_eq!(tx.poll_timeout(), None);
    }

    #[test]
    fn client_invite_failure_without_ack_bytes_only_changes_state() {
        let t0 = Instant::now();
        let (mut tx, _) = ClientInvite::start(t0, Timers::default(), false, bytes("INVITE"));
        assert_eq!(
            tx.handle_response(t0, 404, bytes("404"), None),
            vec![deliver(404, "404")]
        );
        assert_eq!(tx.state(), ClientInviteState::Completed);
        assert_eq!(tx.handle_response(t0, 404, bytes("404"), None), vec![]);
    }

    #[test]
    fn client_invite_2xx_enters_accepted_until_timer_m() {
        let t0 = Instant::now();
        let (mut tx, _) = ClientInvite::start(t0, Timers::default(), false, bytes("INVITE"));
        assert_eq!(
            tx.handle_response(t0 + secs(2), 200, bytes("200"), None),
            vec![deliver(200, "200")]
        );
        assert_eq!(tx.state(), ClientInviteState::Accepted);
        assert_eq!(tx.poll_timeout(), Some(t0 + secs(34)));

        // 2xx retransmissions (or 2xx from other forks) go to the TU, which ACKs them again.
        assert_eq!(
            tx.handle_response(t0 + secs(3), 200, bytes("200b"), None),
            vec![deliver(200, "200b")]
        );
        assert_eq!(
            tx.handle_response(t0 + secs(3), 180, bytes("180"), None),
            vec![]
        );
        assert_eq!(
            tx.handle_response(t0 + secs(3), 486, bytes("486"), Some(bytes("ACK"))),
            vec![]
        );

        // No more INVITE retransmissions. Timer M ends quietly, with no Timeout.
        assert_eq!(run_timers(&mut tx, t0, secs(100)), terminated_at(secs(34)));
    }

    #[test]
    fn client_invite_2xx_over_reliable_transport_still_waits_timer_m() {
        let t0 = Instant::now();
        let (mut tx, _) = ClientInvite::start(t0, Timers::default(), true, bytes("INVITE"));
        assert_eq!(
            tx.handle_response(t0, 200, bytes("200"), None),
            vec![deliver(200, "200")]
        );
        assert_eq!(run_timers(&mut tx, t0, secs(100)), terminated_at(secs(32)));
    }

    #[test]
    fn status_codes_outside_100_to_699_are_ignored() {
        let t0 = Instant::now();
        let (mut ci, _) = ClientInvite::start(t0, Timers::default(), false, bytes("INVITE"));
        let (mut cn, _) = ClientNonInvite::start(t0, Timers::default(), false, bytes("OPTIONS"));
        let mut si = ServerInvite::new(t0, Timers::default(), false);
        let mut sn = ServerNonInvite::new(t0, Timers::default(), false);
        for status in [0, 1, 99, 700, 999, u16::MAX] {
            assert_eq!(
                ci.handle_response(t0, status, bytes("x"), Some(bytes("ACK"))),
                vec![]
            );
            assert_eq!(cn.handle_response(t0, status, bytes("x")), vec![]);
            assert_eq!(si.respond(t0, status, bytes("x")), vec![]);
            assert_eq!(sn.respond(t0, status, bytes("x")), vec![]);
        }
        assert_eq!(ci.state(), ClientInviteState::Calling);
        assert_eq!(cn.state(), ClientNonInviteState::Trying);
        assert_eq!(si.state(), ServerInviteState::Proceeding);
        assert_eq!(sn.state(), ServerNonInviteState::Trying);
        assert_eq!(si.last_response_status(), None);
        assert_eq!(sn.last_response_status(), None);
    }

    // -- Server INVITE ------------------------------------------------------------------

    #[test]
    fn server_invite_retransmitted_invite_gets_last_provisional() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(t0, Timers::default(), false);
        assert_eq!(tx.state(), ServerInviteState::Proceeding);
        assert_eq!(tx.handle_request_retransmit(t0), vec![]);
        assert_eq!(tx.respond(t0, 100, bytes("100")), vec![send("100")]);
        assert_eq!(
            tx.handle_request_retransmit(t0 + ms(300)),
            vec![send("100")]
        );
        assert_eq!(
            tx.respond(t0 + secs(1), 180, bytes("180")),
            vec![send("180")]
        );
        assert_eq!(
            tx.handle_request_retransmit(t0 + secs(2)),
            vec![send("180")]
        );
        assert_eq!(tx.last_response_status(), Some(180));
        assert_eq!(tx.state(), ServerInviteState::Proceeding);
        // Proceeding has no timers.
        assert_eq!(tx.poll_timeout(), None);
        assert_eq!(tx.handle_timeout(t0 + secs(1000)), vec![]);
    }

    #[test]
    fn server_invite_timer_g_retransmits_final_until_timer_h() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(t0, Timers::default(), false);
        tx.respond(t0, 100, bytes("100"));
        let start = secs(1);
        assert_eq!(tx.respond(t0 + start, 486, bytes("486")), vec![send("486")]);
        assert_eq!(tx.state(), ServerInviteState::Completed);
        assert_eq!(tx.last_response_status(), Some(486));

        let log = run_timers(&mut tx, t0, secs(100));
        let expected = capped_schedule(start, start + secs(32));
        assert_eq!(
            expected[..6],
            ms_list(&[1500, 2500, 4500, 8500, 12500, 16500])[..],
            "G: T1, 2T1, 4T1, then every T2"
        );
        assert_eq!(send_times(&log), expected);
        assert!(log
            .iter()
            .all(|(_, a)| !matches!(a, TxAction::Send(b) if **b != *b"486")));
        assert_eq!(non_sends(&log), timed_out_at(start + secs(32)));
    }

    #[test]
    fn server_invite_in_completed_resends_final_and_ignores_new_responses() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(t0, Timers::default(), false);
        tx.respond(t0, 180, bytes("180"));
        tx.respond(t0, 603, bytes("603"));
        assert_eq!(
            tx.handle_request_retransmit(t0 + ms(100)),
            vec![send("603")]
        );
        assert_eq!(tx.respond(t0 + ms(100), 200, bytes("200")), vec![]);
        assert_eq!(tx.respond(t0 + ms(100), 180, bytes("180")), vec![]);
        assert_eq!(tx.respond(t0 + ms(100), 486, bytes("486")), vec![]);
        assert_eq!(tx.last_response_status(), Some(603));
    }

    #[test]
    fn server_invite_ack_confirms_and_timer_i_absorbs_acks() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(t0, Timers::default(), false);
        tx.respond(t0, 486, bytes("486"));
        assert_eq!(
            run_timers(&mut tx, t0, ms(600)),
            vec![(ms(500), send("486"))]
        );

        assert_eq!(tx.handle_ack(t0 + secs(1)), (true, vec![]));
        assert_eq!(tx.state(), ServerInviteState::Confirmed);
        assert_eq!(tx.poll_timeout(), Some(t0 + secs(6)));
        // ACK retransmissions are absorbed, and so are INVITE retransmissions.
        assert_eq!(tx.handle_ack(t0 + secs(2)), (true, vec![]));
        assert_eq!(tx.handle_request_retransmit(t0 + secs(2)), vec![]);
        assert_eq!(tx.respond(t0 + secs(2), 500, bytes("500")), vec![]);

        // Timer G stopped. Timer I, T4 after the ACK, ends quietly.
        assert_eq!(run_timers(&mut tx, t0, secs(100)), terminated_at(secs(6)));
        assert_eq!(tx.handle_ack(t0 + secs(7)), (false, vec![]));
    }

    #[test]
    fn server_invite_reliable_final_has_no_timer_g_and_ack_terminates_at_once() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(t0, Timers::default(), true);
        assert_eq!(tx.respond(t0, 486, bytes("486")), vec![send("486")]);
        assert_eq!(tx.poll_timeout(), Some(t0 + secs(32)), "only Timer H");
        assert_eq!(
            tx.handle_ack(t0 + secs(1)),
            (true, vec![TxAction::Terminated])
        );
        assert_eq!(tx.state(), ServerInviteState::Terminated);
        assert_eq!(tx.poll_timeout(), None);
    }

    #[test]
    fn server_invite_reliable_final_without_ack_times_out_with_timer_h() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(t0, Timers::default(), true);
        tx.respond(t0, 486, bytes("486"));
        assert_eq!(run_timers(&mut tx, t0, secs(100)), timed_out_at(secs(32)));
    }

    #[test]
    fn server_invite_2xx_is_retransmitted_until_ack_on_every_transport() {
        for reliable in [false, true] {
            let t0 = Instant::now();
            let mut tx = ServerInvite::new(t0, Timers::default(), reliable);
            tx.respond(t0, 100, bytes("100"));
            assert_eq!(tx.respond(t0, 200, bytes("200")), vec![send("200")]);
            assert_eq!(tx.state(), ServerInviteState::Accepted);

            let log = run_timers(&mut tx, t0, secs(4));
            assert_eq!(
                log,
                ms_list(&[500, 1500, 3500])
                    .into_iter()
                    .map(|at| (at, send("200")))
                    .collect::<Vec<_>>()
            );
            // Retransmitted INVITEs and further responses are absorbed in Accepted.
            assert_eq!(tx.handle_request_retransmit(t0 + secs(4)), vec![]);
            assert_eq!(tx.respond(t0 + secs(4), 200, bytes("200")), vec![]);

            assert_eq!(
                tx.handle_ack(t0 + secs(4)),
                (true, vec![TxAction::Terminated])
            );
            assert_eq!(tx.poll_timeout(), None);
            assert_eq!(tx.handle_ack(t0 + secs(5)), (false, vec![]));
        }
    }

    #[test]
    fn server_invite_2xx_without_ack_times_out_with_timer_l() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(t0, Timers::default(), false);
        tx.respond(t0, 200, bytes("200"));
        let log = run_timers(&mut tx, t0, secs(100));
        assert_eq!(send_times(&log), capped_schedule(Duration::ZERO, secs(32)));
        assert_eq!(non_sends(&log), timed_out_at(secs(32)));
        assert_eq!(tx.last_response_status(), Some(200));
    }

    #[test]
    fn server_invite_ack_before_a_final_does_not_match() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(t0, Timers::default(), false);
        assert_eq!(tx.handle_ack(t0), (false, vec![]));
        tx.respond(t0, 180, bytes("180"));
        assert_eq!(tx.handle_ack(t0), (false, vec![]));
        assert_eq!(tx.state(), ServerInviteState::Proceeding);
    }

    // -- Server non-INVITE ----------------------------------------------------------------

    #[test]
    fn server_non_invite_resends_last_response_and_timer_j_terminates() {
        let t0 = Instant::now();
        let mut tx = ServerNonInvite::new(t0, Timers::default(), false);
        assert_eq!(tx.state(), ServerNonInviteState::Trying);
        assert_eq!(tx.handle_request_retransmit(t0), vec![], "Trying absorbs");
        assert_eq!(tx.respond(t0, 100, bytes("100")), vec![send("100")]);
        assert_eq!(tx.state(), ServerNonInviteState::Proceeding);
        assert_eq!(
            tx.handle_request_retransmit(t0 + ms(500)),
            vec![send("100")]
        );
        assert_eq!(tx.poll_timeout(), None);

        assert_eq!(
            tx.respond(t0 + secs(1), 200, bytes("200")),
            vec![send("200")]
        );
        assert_eq!(tx.state(), ServerNonInviteState::Completed);
        assert_eq!(
            tx.handle_request_retransmit(t0 + secs(2)),
            vec![send("200")]
        );
        assert_eq!(
            tx.respond(t0 + secs(2), 500, bytes("500")),
            vec![],
            "later finals are discarded"
        );
        assert_eq!(tx.last_response_status(), Some(200));

        // No retransmissions of its own: only Timer J, 64*T1 after the final.
        assert_eq!(run_timers(&mut tx, t0, secs(100)), terminated_at(secs(33)));
    }

    #[test]
    fn server_non_invite_final_over_reliable_transport_terminates_at_once() {
        let t0 = Instant::now();
        let mut tx = ServerNonInvite::new(t0, Timers::default(), true);
        assert_eq!(
            tx.respond(t0, 404, bytes("404")),
            vec![send("404"), TxAction::Terminated]
        );
        assert_eq!(tx.state(), ServerNonInviteState::Terminated);
        assert_eq!(tx.handle_request_retransmit(t0), vec![]);
        assert_eq!(tx.last_response_status(), Some(404));
    }

    // -- Client non-INVITE ----------------------------------------------------------------

    #[test]
    fn client_non_invite_timer_e_backs_off_to_t2_until_timer_f() {
        let t0 = Instant::now();
        let (mut tx, out) = ClientNonInvite::start(t0, Timers::default(), false, bytes("OPTIONS"));
        assert_eq!(out, vec![send("OPTIONS")]);
        assert_eq!(tx.state(), ClientNonInviteState::Trying);
        let log = run_timers(&mut tx, t0, secs(100));
        let expected = capped_schedule(Duration::ZERO, secs(32));
        assert_eq!(
            expected[..6],
            ms_list(&[500, 1500, 3500, 7500, 11500, 15500])[..]
        );
        assert_eq!(send_times(&log), expected);
        assert_eq!(non_sends(&log), timed_out_at(secs(32)));
    }

    #[test]
    fn client_non_invite_timer_e_fires_every_t2_in_proceeding() {
        let t0 = Instant::now();
        let (mut tx, _) = ClientNonInvite::start(t0, Timers::default(), false, bytes("OPTIONS"));
        assert_eq!(
            tx.handle_response(t0 + ms(200), 100, bytes("100")),
            vec![deliver(100, "100")]
        );
        assert_eq!(tx.state(), ClientNonInviteState::Proceeding);
        let log = run_timers(&mut tx, t0, secs(100));
        // The pending E (0.5 s) fires, then it is reset to T2 each time. Timer F still applies.
        assert_eq!(
            send_times(&log),
            ms_list(&[500, 4500, 8500, 12500, 16500, 20500, 24500, 28500])
        );
        assert_eq!(non_sends(&log), timed_out_at(secs(32)));
    }

    #[test]
    fn client_non_invite_final_response_and_timer_k() {
        let t0 = Instant::now();
        let (mut tx, _) = ClientNonInvite::start(t0, Timers::default(), false, bytes("REGISTER"));
        assert_eq!(
            run_timers(&mut tx, t0, secs(2)),
            vec![(ms(500), send("REGISTER")), (ms(1500), send("REGISTER"))]
        );
        assert_eq!(
            tx.handle_response(t0 + secs(2), 401, bytes("401")),
            vec![deliver(401, "401")]
        );
        assert_eq!(tx.state(), ClientNonInviteState::Completed);
        // Retransmitted and stray responses are absorbed.
        assert_eq!(tx.handle_response(t0 + secs(3), 401, bytes("401")), vec![]);
        assert_eq!(tx.handle_response(t0 + secs(3), 100, bytes("100")), vec![]);
        // Timers E and F stopped: Timer K ends quietly, T4 after the final.
        assert_eq!(run_timers(&mut tx, t0, secs(100)), terminated_at(secs(7)));
    }

    #[test]
    fn client_non_invite_over_reliable_transport_has_no_timer_e_and_no_timer_k() {
        let t0 = Instant::now();
        let (mut tx, _) = ClientNonInvite::start(t0, Timers::default(), true, bytes("OPTIONS"));
        assert_eq!(tx.poll_timeout(), Some(t0 + secs(32)), "only Timer F");
        let mut timed_out = tx.clone();
        assert_eq!(
            run_timers(&mut timed_out, t0, secs(100)),
            timed_out_at(secs(32))
        );

        assert_eq!(
            tx.handle_response(t0 + secs(1), 100, bytes("100")),
            vec![deliver(100, "100")]
        );
        let out = tx.handle_response(t0 + secs(2), 200, bytes("200"));
        assert_eq!(out, vec![deliver(200, "200"), TxAction::Terminated]);
        assert_eq!(tx.poll_timeout(), None);
    }

    // -- Termination ---------------------------------------------------------------------

    #[test]
    fn transport_errors_terminate_every_machine_once() {
        let t0 = Instant::now();
        let timers = Timers::default();
        let expected = vec![TxAction::TransportError, TxAction::Terminated];
        let mut machines: Vec<Box<dyn Drive>> = vec![
            Box::new(ServerInvite::new(t0, timers, false)),
            Box::new(ServerNonInvite::new(t0, timers, false)),
            Box::new(ClientInvite::start(t0, timers, false, bytes("INVITE")).0),
            Box::new(ClientNonInvite::start(t0, timers, false, bytes("OPTIONS")).0),
        ];
        for m in &mut machines {
            assert_eq!(m.transport_error(), expected);
            assert!(m.done());
            assert_eq!(m.transport_error(), vec![]);
            assert_eq!(m.deadline(), None);
            assert_eq!(m.fire(t0 + secs(1000)), vec![]);
        }
    }

    #[test]
    fn terminated_machines_stay_silent() {
        let t0 = Instant::now();
        let timers = Timers::default();
        let later = t0 + secs(1);

        let mut si = ServerInvite::new(t0, timers, true);
        si.respond(t0, 200, bytes("200"));
        assert_eq!(si.handle_ack(t0).1, vec![TxAction::Terminated]);
        assert_eq!(si.respond(later, 180, bytes("180")), vec![]);
        assert_eq!(si.handle_request_retransmit(later), vec![]);
        assert_eq!(si.handle_ack(later), (false, vec![]));
        assert_eq!(si.handle_transport_error(), vec![]);
        assert_eq!(
            (si.state(), si.poll_timeout()),
            (ServerInviteState::Terminated, None)
        );

        let mut sn = ServerNonInvite::new(t0, timers, true);
        sn.respond(t0, 200, bytes("200"));
        assert_eq!(sn.respond(later, 200, bytes("200")), vec![]);
        assert_eq!(sn.handle_request_retransmit(later), vec![]);
        assert_eq!(sn.handle_transport_error(), vec![]);
        assert_eq!(
            (sn.state(), sn.poll_timeout()),
            (ServerNonInviteState::Terminated, None)
        );

        let (mut ci, _) = ClientInvite::start(t0, timers, true, bytes("INVITE"));
        ci.handle_response(t0, 486, bytes("486"), Some(bytes("ACK")));
        assert_eq!(
            ci.handle_response(later, 486, bytes("486"), Some(bytes("ACK"))),
            vec![]
        );
        assert_eq!(ci.handle_response(later, 200, bytes("200"), None), vec![]);
        assert_eq!(ci.handle_transport_error(), vec![]);
        assert_eq!(
            (ci.state(), ci.poll_timeout()),
            (ClientInviteState::Terminated, None)
        );

        let (mut cn, _) = ClientNonInvite::start(t0, timers, true, bytes("OPTIONS"));
        cn.handle_response(t0, 200, bytes("200"));
        assert_eq!(cn.handle_response(later, 200, bytes("200")), vec![]);
        assert_eq!(cn.handle_transport_error(), vec![]);
        assert_eq!(
            (cn.state(), cn.poll_timeout()),
            (ClientNonInviteState::Terminated, None)
        );
    }

    #[test]
    fn degenerate_timer_values_neither_spin_nor_panic() {
        let t0 = Instant::now();
        let zero = Timers {
            t1: Duration::ZERO,
            t2: Duration::ZERO,
            t4: Duration::ZERO,
        };
        // T1 = 0: Timer B is due at once, and beats the clamped Timer A.
        let (mut ci, _) = ClientInvite::start(t0, zero, false, bytes("INVITE"));
        assert_eq!(ci.poll_timeout(), Some(t0));
        assert_eq!(
            ci.handle_timeout(t0),
            vec![TxAction::Timeout, TxAction::Terminated]
        );
        // T2 = 0 below a sane T1: the cap counts as T1, so Timer E fires every 0.5 s.
        let odd = Timers {
            t2: Duration::ZERO,
            ..Timers::default()
        };
        let (mut cn, _) = ClientNonInvite::start(t0, odd, false, bytes("OPTIONS"));
        let log = run_timers(&mut cn, t0, secs(100));
        assert_eq!(
            send_times(&log),
            (1..64).map(|n| ms(500) * n).collect::<Vec<_>>()
        );
        assert_eq!(non_sends(&log), timed_out_at(secs(32)));
        // Durations that do not fit into an Instant: the timers never fire.
        let huge = Timers {
            t1: Duration::MAX,
            t2: Duration::MAX,
            t4: Duration::MAX,
        };
        let mut si = ServerInvite::new(t0, huge, false);
        si.respond(t0, 500, bytes("500"));
        assert_eq!(si.poll_timeout(), None);
        assert_eq!(si.handle_ack(t0), (true, vec![]));
        assert_eq!(si.state(), ServerInviteState::Confirmed);
    }

    // -- Lossy link: a client and a server machine talking to each other -----------------

    /// Deterministic xorshift64 PRNG.
    struct XorShift(u64);

    impl XorShift {
        fn new(seed: u64) -> Self {
            Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }

        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn percent(&mut self, p: u64) -> bool {
            self.below(100) < p
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum End {
        Client,
        Server,
    }

    /// A datagram link with fixed latency that drops `loss_percent` of the messages.
    struct Link {
        rng: XorShift,
        loss_percent: u64,
        latency: Duration,
        in_flight: Vec<(Instant, End, Bytes)>,
        sent: usize,
        lost: usize,
    }

    impl Link {
        fn send(&mut self, now: Instant, to: End, bytes: Bytes) {
            self.sent += 1;
            if self.rng.percent(self.loss_percent) {
                self.lost += 1;
            } else {
                self.in_flight.push((now + self.latency, to, bytes));
            }
        }

        fn next_arrival(&self) -> Option<Instant> {
            self.in_flight.iter().map(|(at, _, _)| *at).min()
        }

        /// Removes and returns the messages that have arrived by `now`, in sending order.
        fn take_arrived(&mut self, now: Instant) -> Vec<(End, Bytes)> {
            let (arrived, rest) = std::mem::take(&mut self.in_flight)
                .into_iter()
                .partition(|(at, _, _)| *at <= now);
            self.in_flight = rest;
            arrived
                .into_iter()
                .map(|(_, to, bytes)| (to, bytes))
                .collect()
        }
    }

    const ACK: &[u8] = b"ACK";

    fn response(status: u16) -> Bytes {
        bytes(&format!("SIP/2.0 {status}"))
    }

    fn status_of(bytes: &[u8]) -> u16 {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.strip_prefix("SIP/2.0 "))
            .and_then(|s| s.parse().ok())
            .expect("test responses carry a status")
    }

    /// A client machine together with the part of its TU/endpoint the harness needs.
    trait ClientEnd: Drive + Sized {
        /// Whether the TU ACKs each delivered 2xx end to end (an INVITE client does).
        const ACKS_2XX: bool;
        fn start(now: Instant, request: Bytes) -> (Self, Vec<TxAction>);
        fn on_response(&mut self, now: Instant, status: u16, bytes: Bytes) -> Vec<TxAction>;
    }

    impl ClientEnd for ClientNonInvite {
        const ACKS_2XX: bool = false;
        fn start(now: Instant, request: Bytes) -> (Self, Vec<TxAction>) {
            Self::start(now, Timers::default(), false, request)
        }
        fn on_response(&mut self, now: Instant, status: u16, bytes: Bytes) -> Vec<TxAction> {
            self.handle_response(now, status, bytes)
        }
    }

    impl ClientEnd for ClientInvite {
        const ACKS_2XX: bool = true;
        fn start(now: Instant, request: Bytes) -> (Self, Vec<TxAction>) {
            Self::start(now, Timers::default(), false, request)
        }
        fn on_response(&mut self, now: Instant, status: u16, bytes: Bytes) -> Vec<TxAction> {
            // The endpoint builds the hop-by-hop ACK for a 300-699 final.
            let ack = (status >= 300).then(|| Bytes::from(ACK));
            self.handle_response(now, status, bytes, ack)
        }
    }

    /// A server machine together with the part of its endpoint the harness needs.
    trait ServerEnd: Drive + Sized {
        fn create(now: Instant) -> Self;
        fn respond(&mut self, now: Instant, status: u16, bytes: Bytes) -> Vec<TxAction>;
        fn on_request(&mut self, now: Instant) -> Vec<TxAction>;
        fn on_ack(&mut self, now: Instant) -> Vec<TxAction>;
    }

    impl ServerEnd for ServerNonInvite {
        fn create(now: Instant) -> Self {
            Self::new(now, Timers::default(), false)
        }
        fn respond(&mut self, now: Instant, status: u16, bytes: Bytes) -> Vec<TxAction> {
            self.respond(now, status, bytes)
        }
        fn on_request(&mut self, now: Instant) -> Vec<TxAction> {
            self.handle_request_retransmit(now)
        }
        fn on_ack(&mut self, _now: Instant) -> Vec<TxAction> {
            unreachable!("no ACK in a non-INVITE exchange")
        }
    }

    impl ServerEnd for ServerInvite {
        fn create(now: Instant) -> Self {
            Self::new(now, Timers::default(), false)
        }
        fn respond(&mut self, now: Instant, status: u16, bytes: Bytes) -> Vec<TxAction> {
            self.respond(now, status, bytes)
        }
        fn on_request(&mut self, now: Instant) -> Vec<TxAction> {
            self.handle_request_retransmit(now)
        }
        fn on_ack(&mut self, now: Instant) -> Vec<TxAction> {
            self.handle_ack(now).1
        }
    }

    /// A client and a server transaction joined by a lossy [`Link`], advanced event by
    /// event in virtual time (like quinn's `Pair::step`).
    struct Pair<C, S> {
        start: Instant,
        now: Instant,
        link: Link,
        client: C,
        /// Created when the first copy of the request reaches the server.
        server: Option<S>,
        /// The server TU's responses: (delay after the server tx is created, status).
        plan: Vec<(Duration, u16)>,
        /// The planned responses, scheduled in absolute time once the server tx exists.
        tu_queue: Vec<(Instant, u16)>,
        /// Everything except `Send`, as (offset from `start`, action).
        client_log: Vec<(Duration, TxAction)>,
        server_log: Vec<(Duration, TxAction)>,
    }

    impl<C: ClientEnd, S: ServerEnd> Pair<C, S> {
        fn new(seed: u64, loss_percent: u64, request: &str, plan: &[(Duration, u16)]) -> Self {
            let start = Instant::now();
            let (client, out) = C::start(start, bytes(request));
            let link = Link {
                rng: XorShift::new(seed),
                loss_percent,
                latency: ms(20),
                in_flight: Vec::new(),
                sent: 0,
                lost: 0,
            };
            let mut pair = Self {
                start,
                now: start,
                link,
                client,
                server: None,
                plan: plan.to_vec(),
                tu_queue: Vec::new(),
                client_log: Vec::new(),
                server_log: Vec::new(),
            };
            pair.client_actions(out);
            pair
        }

        /// Advances to the next event (a timer, an arrival, or a TU response) and handles
        /// everything due then. Returns `false` once nothing is left to happen.
        fn step(&mut self) -> bool {
            let next = [
                self.client.deadline(),
                self.server.as_ref().and_then(S::deadline),
                self.link.next_arrival(),
                self.tu_queue.iter().map(|(at, _)| *at).min(),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next else { return false };
            self.now = self.now.max(next);
            let now = self.now;

            if self.client.deadline().is_some_and(|at| at <= now) {
                let out = self.client.fire(now);
                self.client_actions(out);
            }
            if let Some(server) = self
                .server
                .as_mut()
                .filter(|s| s.deadline().is_some_and(|at| at <= now))
            {
                let out = server.fire(now);
                self.server_actions(out);
            }
            for (to, msg) in self.link.take_arrived(now) {
                match to {
                    End::Client => {
                        let out = self.client.on_response(now, status_of(&msg), msg);
                        self.client_actions(out);
                    }
                    End::Server => self.deliver_to_server(msg),
                }
            }
            let (due, later) = std::mem::take(&mut self.tu_queue)
                .into_iter()
                .partition::<Vec<_>, _>(|(at, _)| *at <= now);
            self.tu_queue = later;
            for (_, status) in due {
                if let Some(server) = self.server.as_mut() {
                    let out = server.respond(now, status, response(status));
                    self.server_actions(out);
                }
            }
            true
        }

        fn run(&mut self) {
            for _ in 0..100_000 {
                if !self.step() {
                    return;
                }
            }
            panic!("the pair never went quiet");
        }

        fn deliver_to_server(&mut self, msg: Bytes) {
            let now = self.now;
            let out = match self.server.as_mut() {
                Some(server) if *msg == *ACK => server.on_ack(now),
                Some(server) => server.on_request(now),
                // An ACK can only follow a response, so the server exists already.
                None => {
                    self.server = Some(S::create(now));
                    self.tu_queue = self
                        .plan
                        .iter()
                        .map(|&(delay, status)| (now + delay, status))
                        .collect();
                    Vec::new()
                }
            };
            self.server_actions(out);
        }

        fn client_actions(&mut self, actions: Vec<TxAction>) {
            for action in actions {
                match action {
                    TxAction::Send(msg) => self.link.send(self.now, End::Server, msg),
                    other => {
                        if let TxAction::DeliverResponse {
                            status: 200..=299, ..
                        } = other
                        {
                            if C::ACKS_2XX {
                                // The TU's end-to-end ACK for a 2xx, outside the transaction.
                                self.link.send(self.now, End::Server, Bytes::from(ACK));
                            }
                        }
                        self.client_log.push((self.now - self.start, other));
                    }
                }
            }
        }

        fn server_actions(&mut self, actions: Vec<TxAction>) {
            for action in actions {
                match action {
                    TxAction::Send(msg) => self.link.send(self.now, End::Client, msg),
                    other => self.server_log.push((self.now - self.start, other)),
                }
            }
        }

        /// The responses the client TU received: (offset, status).
        fn delivered(&self) -> Vec<(Duration, u16)> {
            self.client_log
                .iter()
                .filter_map(|(at, a)| match a {
                    TxAction::DeliverResponse { status, .. } => Some((*at, *status)),
                    _ => None,
                })
                .collect()
        }

        fn assert_clean_finish(&self) {
            assert!(self.client.done(), "client log: {:?}", self.client_log);
            assert!(
                self.server.as_ref().is_some_and(S::done),
                "server log: {:?}",
                self.server_log
            );
            for log in [&self.client_log, &self.server_log] {
                assert!(!log.iter().any(|(_, a)| *a == TxAction::Timeout), "{log:?}");
                assert_eq!(
                    log.iter()
                        .filter(|(_, a)| *a == TxAction::Terminated)
                        .count(),
                    1
                );
            }
        }
    }

    const LOSS_PERCENT: u64 = 30;
    const SEEDS: std::ops::RangeInclusive<u64> = 1..=40;

    #[test]
    fn lossless_pair_needs_no_retransmissions() {
        let mut pair: Pair<ClientNonInvite, ServerNonInvite> =
            Pair::new(1, 0, "OPTIONS", &[(ms(10), 200)]);
        pair.run();
        pair.assert_clean_finish();
        assert_eq!(pair.delivered(), vec![(ms(50), 200)]);
        assert_eq!(pair.link.sent, 2);
    }

    #[test]
    fn non_invite_completes_despite_loss() {
        let (mut sent, mut lost) = (0, 0);
        for seed in SEEDS {
            // The server TU answers 300 ms after the request first arrives.
            let mut pair: Pair<ClientNonInvite, ServerNonInvite> =
                Pair::new(seed, LOSS_PERCENT, "OPTIONS", &[(ms(300), 200)]);
            pair.run();
            pair.assert_clean_finish();
            let delivered = pair.delivered();
            assert_eq!(delivered.len(), 1, "seed {seed}: {delivered:?}");
            let (at, status) = delivered[0];
            assert_eq!(status, 200);
            assert!(
                at < Timers::default().t1_x64(),
                "seed {seed}: the final must beat Timer F"
            );
            sent += pair.link.sent;
            lost += pair.link.lost;
        }
        assert!(
            lost > 0 && sent > 2 * SEEDS.count(),
            "the link must actually lose messages"
        );
    }

    #[test]
    fn invite_2xx_completes_despite_loss() {
        let plan = [(Duration::ZERO, 100), (secs(1), 180), (secs(3), 200)];
        let mut lost = 0;
        for seed in SEEDS {
            let mut pair: Pair<ClientInvite, ServerInvite> =
                Pair::new(seed, LOSS_PERCENT, "INVITE", &plan);
            pair.run();
            // The server stopped retransmitting the 2xx because an ACK arrived (no Timer L).
            pair.assert_clean_finish();
            let successes: Vec<_> = pair
                .delivered()
                .into_iter()
                .filter(|(_, s)| *s == 200)
                .collect();
            assert!(!successes.is_empty(), "seed {seed}");
            assert!(successes[0].0 < secs(32), "seed {seed}");
            // The client terminated via Timer M, 64*T1 after its first 2xx.
            assert_eq!(
                pair.client_log.last(),
                Some(&(successes[0].0 + secs(32), TxAction::Terminated))
            );
            lost += pair.link.lost;
        }
        assert!(lost > 0);
    }

    #[test]
    fn invite_failure_completes_despite_loss() {
        let plan = [(Duration::ZERO, 100), (secs(2), 486)];
        let mut lost = 0;
        for seed in SEEDS {
            let mut pair: Pair<ClientInvite, ServerInvite> =
                Pair::new(seed, LOSS_PERCENT, "INVITE", &plan);
            pair.run();
            // The server got an ACK before Timer H, so there is no Timeout.
            pair.assert_clean_finish();
            let failures: Vec<_> = pair
                .delivered()
                .into_iter()
                .filter(|(_, s)| *s == 486)
                .collect();
            assert_eq!(
                failures.len(),
                1,
                "seed {seed}: retransmitted finals are not delivered"
            );
            lost += pair.link.lost;
        }
        assert!(lost > 0);
    }

    // -- Fuzz: long random input sequences ------------------------------------------------

    /// State for a randomised run: the PRNG, virtual time, and the invariants seen so far.
    struct Fuzz {
        rng: XorShift,
        t0: Instant,
        now: Instant,
        terminated: bool,
    }

    impl Fuzz {
        fn new(seed: u64) -> Self {
            let t0 = Instant::now();
            Self {
                rng: XorShift::new(seed),
                t0,
                now: t0,
                terminated: false,
            }
        }

        fn timers(&mut self) -> Timers {
            match self.rng.below(5) {
                0 => Timers {
                    t1: Duration::ZERO,
                    t2: Duration::ZERO,
                    t4: Duration::ZERO,
                },
                1 => Timers {
                    t1: Duration::MAX,
                    t2: Duration::MAX,
                    t4: Duration::MAX,
                },
                2 => {
                    let mut random = || ms(self.rng.below(3000));
                    Timers {
                        t1: random(),
                        t2: random(),
                        t4: random(),
                    }
                }
                _ => Timers::default(),
            }
        }

        fn advance(&mut self) {
            let step = match self.rng.below(5) {
                0 => Duration::ZERO,
                1 => ms(self.rng.below(1000)),
                2 => secs(self.rng.below(100)),
                3 => secs(1 << 40),
                _ => Duration::MAX,
            };
            self.now = self.now.checked_add(step).unwrap_or(self.now);
        }

        /// The time handed to an input: usually `now`, sometimes a stale one.
        fn when(&mut self) -> Instant {
            if self.rng.percent(10) {
                self.t0
            } else {
                self.now
            }
        }

        fn status(&mut self) -> u16 {
            const INTERESTING: [u16; 12] =
                [0, 99, 100, 180, 199, 200, 202, 299, 300, 486, 699, 700];
            if self.rng.percent(80) {
                INTERESTING[self.rng.below(INTERESTING.len() as u64) as usize]
            } else {
                self.rng.next() as u16
            }
        }

        fn observe(&mut self, actions: &[TxAction]) {
            for action in actions {
                assert!(!self.terminated, "{action:?} emitted after Terminated");
                self.terminated |= *action == TxAction::Terminated;
            }
        }

        /// Runs 300 random inputs against a machine. `make` builds it, returning its first
        /// actions. `input` applies one machine-specific random input.
        fn run<M: Drive>(
            seed: u64,
            make: impl FnOnce(&mut Self, Timers, bool) -> (M, Vec<TxAction>),
            mut input: impl FnMut(&mut M, &mut Self) -> Vec<TxAction>,
        ) {
            let mut f = Self::new(seed);
            let (timers, reliable) = (f.timers(), f.rng.percent(50));
            let (mut m, out) = make(&mut f, timers, reliable);
            f.observe(&out);
            for _ in 0..300 {
                let out = match f.rng.below(10) {
                    0 | 1 => {
                        f.advance();
                        Vec::new()
                    }
                    2 => {
                        let now = f.when();
                        let out = m.fire(now);
                        assert!(
                            m.deadline().is_none_or(|at| at > now),
                            "a due timer survived"
                        );
                        out
                    }
                    3 => match m.deadline() {
                        Some(at) => {
                            f.now = f.now.max(at);
                            let out = m.fire(at);
                            assert!(
                                m.deadline().is_none_or(|next| next > at),
                                "a due timer survived"
                            );
                            out
                        }
                        None => Vec::new(),
                    },
                    4 if f.rng.percent(5) => m.transport_error(),
                    _ => input(&mut m, &mut f),
                };
                f.observe(&out);
                assert_eq!(m.done(), f.terminated, "Terminated emitted iff terminated");
                if f.terminated {
                    assert_eq!(m.deadline(), None);
                }
            }
        }
    }

    const FUZZ_SEEDS: std::ops::Range<u64> = 0..300;

    #[test]
    fn fuzz_server_invite() {
        for seed in FUZZ_SEEDS {
            Fuzz::run(
                seed,
                |f, timers, reliable| (ServerInvite::new(f.now, timers, reliable), Vec::new()),
                |tx, f| match f.rng.below(3) {
                    0 => {
                        let (now, status) = (f.when(), f.status());
                        tx.respond(now, status, bytes("response"))
                    }
                    1 => tx.handle_request_retransmit(f.when()),
                    _ => {
                        let (matched, out) = tx.handle_ack(f.when());
                        assert!(matched || out.is_empty());
                        out
                    }
                },
            );
        }
    }

    #[test]
    fn fuzz_server_non_invite() {
        for seed in FUZZ_SEEDS {
            Fuzz::run(
                seed,
                |f, timers, reliable| (ServerNonInvite::new(f.now, timers, reliable), Vec::new()),
                |tx, f| {
                    if f.rng.percent(50) {
                        let (now, status) = (f.when(), f.status());
                        tx.respond(now, status, bytes("response"))
                    } else {
                        tx.handle_request_retransmit(f.when())
                    }
                },
            );
        }
    }

    #[test]
    fn fuzz_client_invite() {
        for seed in FUZZ_SEEDS {
            Fuzz::run(
                seed,
                |f, timers, reliable| ClientInvite::start(f.now, timers, reliable, bytes("INVITE")),
                |tx, f| {
                    let (now, status) = (f.when(), f.status());
                    let ack = f.rng.percent(80).then(|| bytes("ACK"));
                    tx.handle_response(now, status, bytes("response"), ack)
                },
            );
        }
    }

    #[test]
    fn fuzz_client_non_invite() {
        for seed in FUZZ_SEEDS {
            Fuzz::run(
                seed,
                |f, timers, reliable| {
                    ClientNonInvite::start(f.now, timers, reliable, bytes("OPTIONS"))
                },
                |tx, f| {
                    let (now, status) = (f.when(), f.status());
                    tx.handle_response(now, status, bytes("response"))
                },
            );
        }
    }
}
