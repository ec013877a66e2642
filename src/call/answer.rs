//! Where ctid stands with the caller's INVITE (ctid is its UAS): the answer it holds, sent or
//! had acknowledged, and what ending the call means at each stage. A pure state machine: the
//! call manager sends what it returns.
//!
//! - A call is answered only once the engine let it queue: a refusal decided on arrival ends
//!   the INVITE with a final 4xx/5xx, never a 200 then a BYE (a PBX can fail over).
//! - Early media: 183 first, the 200 when a seat answers; that answer counts when the caller
//!   ACKs it. A CANCEL before that (it crossed ctid's 200; the caller got 487) leaves the call
//!   unanswered.
//! - No BYE before the caller's ACK of the 200, or before its wait (64·T1) timed out
//!   (RFC 3261 §15); no media timeout before then either (the caller has no answer yet).
//!
//! Must not know: sockets, timers, the engine.

use crate::sip::message::{reason_phrase, Response};

#[derive(Debug, Clone, PartialEq)]
enum Stage {
    /// Nothing sent; the 200 (with ctid's SDP) is ready.
    Held(Response),
    /// 183 sent (early media); the 200 waits for a seat's answer.
    Early(Response),
    /// 200 sent, no ACK yet. `uncounted`: an early-media answer that counts once ACKed.
    Unacked { uncounted: bool },
    /// ACKed, or the ACK wait timed out (the dialog is confirmed either way, §13.3.1.4).
    Confirmed,
    /// The INVITE ended without a dialog (final error, or 487 after a CANCEL).
    Closed,
}

/// The caller's INVITE, from ctid's side.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CallerAnswer {
    stage: Stage,
}

/// How ctid ends the caller's leg.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Ending {
    /// Never answered: this final error response to the INVITE.
    Refuse(Response),
    /// A BYE, now.
    Bye,
    /// A BYE, but only once the caller ACKs the 200 (or its wait times out).
    ByeAfterAck,
    /// Nothing to send (the INVITE already ended).
    Nothing,
}

impl CallerAnswer {
    /// A new call whose answer `ok` (200 with SDP) is held.
    pub fn held(ok: Response) -> CallerAnswer {
        CallerAnswer {
            stage: Stage::Held(ok),
        }
    }

    /// The engine let the call queue: what to send the caller now (200, or 183 on an
    /// early-media queue).
    pub fn queued(&mut self, early: bool) -> Option<Response> {
        let Stage::Held(ok) = &self.stage else {
            return None;
        };
        let ok = ok.clone();
        if early {
            let mut progress = ok.clone();
            progress.status = 183;
            progress.reason = "Session Progress".into();
            self.stage = Stage::Early(ok);
            Some(progress)
        } else {
            self.stage = Stage::Unacked { uncounted: false };
            Some(ok)
        }
    }

    /// A seat answered: the 200 owed to an early-media caller, if any (it then counts as
    /// answered at the caller's ACK).
    pub fn seat_answered(&mut self) -> Option<Response> {
        let Stage::Early(ok) = &self.stage else {
            return None;
        };
        let ok = ok.clone();
        self.stage = Stage::Unacked { uncounted: true };
        Some(ok)
    }

    /// The caller ACKed the 200: `Some(count)` when this confirms the dialog, `count` saying
    /// whether an early-media answer counts now.
    pub fn acked(&mut self) -> Option<bool> {
        let Stage::Unacked { uncounted } = self.stage else {
            return None;
        };
        self.stage = Stage::Confirmed;
        Some(uncounted)
    }

    /// The 200 was never ACKed (Timer H): the dialog is confirmed, to be ended with a BYE.
    /// Returns whether an early-media answer was still to be counted.
    pub fn ack_timed_out(&mut self) -> bool {
        self.acked().unwrap_or(false)
    }

    /// The caller's CANCEL ended the INVITE (487). Returns whether a seat's answer had been
    /// relayed in a 200 that lost to the CANCEL (the caller never got it).
    pub fn cancelled(&mut self) -> bool {
        let lost = matches!(self.stage, Stage::Unacked { uncounted: true });
        self.stage = Stage::Closed;
        lost
    }

    /// An early-media answer not counted yet: count it now (the call ends before the ACK).
    pub fn take_uncounted(&mut self) -> bool {
        match &mut self.stage {
            Stage::Unacked { uncounted } => std::mem::take(uncounted),
            _ => false,
        }
    }

    /// ctid ends the leg; a refusal carries `status` (the configured cause or 480).
    pub fn end(&mut self, status: u16) -> Ending {
        match std::mem::replace(&mut self.stage, Stage::Closed) {
            Stage::Held(mut r) | Stage::Early(mut r) => {
                r.status = status;
                r.reason = reason_phrase(status).to_string();
                r.body.clear();
                r.headers.remove("Content-Type");
                r.headers.remove("Contact");
                Ending::Refuse(r)
            }
            Stage::Unacked { .. } => Ending::ByeAfterAck,
            Stage::Confirmed => Ending::Bye,
            Stage::Closed => Ending::Nothing,
        }
    }

    /// No 200 sent yet (held, or early media): ending the call is a final error response.
    pub fn unanswered(&self) -> bool {
        matches!(self.stage, Stage::Held(_) | Stage::Early(_))
    }

    /// The caller's dialog is confirmed: its RTP is expected (the media timeout applies).
    pub fn confirmed(&self) -> bool {
        self.stage == Stage::Confirmed
    }

    /// An early-media answer waits for the caller's ACK to count.
    pub fn uncounted(&self) -> bool {
        matches!(self.stage, Stage::Unacked { uncounted: true })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::build::response_to;
    use crate::sip::message::{Method, Request};

    fn ok() -> Response {
        let mut inv = Request::new(Method::Invite, "sip:4000@ctid");
        inv.headers
            .push("Via", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1");
        inv.headers.push("From", "<sip:1@pbx>;tag=a");
        inv.headers.push("To", "<sip:4000@ctid>");
        inv.headers.push("Call-ID", "c1");
        inv.headers.push("CSeq", "1 INVITE");
        let mut r = response_to(&inv, 200, Some("ctid-tag"));
        r.headers.push("Contact", "<sip:ctid@10.0.0.2>");
        r.headers.push("Content-Type", "application/sdp");
        r.body = b"v=0\r\n".to_vec();
        r
    }

    #[test]
    fn a_call_refused_on_arrival_gets_a_final_error_and_no_200() {
        let mut a = CallerAnswer::held(ok());
        assert!(a.unanswered() && !a.confirmed());
        let Ending::Refuse(r) = a.end(480) else {
            panic!("a held answer ends in a refusal");
        };
        assert_eq!(
            (r.status, r.reason.as_str()),
            (480, "Temporarily Unavailable")
        );
        assert!(r.body.is_empty() && r.headers.get("Contact").is_none());
        assert_eq!(r.headers.get("Content-Type"), None);
        // Nothing more to send, and no answer to give after that.
        assert_eq!(a.queued(false), None);
        assert_eq!(a.end(480), Ending::Nothing);
    }

    #[test]
    fn no_bye_before_the_ack_and_none_of_the_media_timeout() {
        let mut a = CallerAnswer::held(ok());
        assert_eq!(a.queued(false).map(|r| r.status), Some(200));
        assert!(!a.confirmed(), "no RTP is expected before the ACK");
        // ctid wants to hang up (queue timeout) before the ACK: the BYE waits.
        let mut b = a.clone();
        assert_eq!(b.end(503), Ending::ByeAfterAck);
        assert_eq!(a.acked(), Some(false));
        assert!(a.confirmed());
        assert_eq!(a.acked(), None, "a retransmitted ACK confirms nothing new");
        assert_eq!(a.end(503), Ending::Bye);
        // No ACK at all: once its wait timed out the dialog is confirmed and ended with a BYE.
        let mut c = CallerAnswer::held(ok());
        c.queued(false);
        assert!(!c.ack_timed_out());
        assert!(c.confirmed());
        assert_eq!(c.end(408), Ending::Bye);
    }

    #[test]
    fn early_media_answer_counts_at_the_callers_ack() {
        let mut a = CallerAnswer::held(ok());
        assert_eq!(a.queued(true).map(|r| r.status), Some(183));
        assert!(a.unanswered() && !a.confirmed());
        assert_eq!(a.seat_answered().map(|r| r.status), Some(200));
        assert!(a.uncounted());
        assert_eq!(a.seat_answered(), None, "one 200 only");
        assert_eq!(a.acked(), Some(true), "the answer counts now");
        assert!(!a.uncounted() && a.confirmed());
    }

    #[test]
    fn a_cancel_crossing_the_relayed_200_leaves_the_call_unanswered() {
        // The seat answered, ctid's 200 lost to the caller's CANCEL (the caller got 487).
        let mut a = CallerAnswer::held(ok());
        a.queued(true);
        a.seat_answered();
        assert!(a.cancelled(), "the seat's answer never reached the caller");
        assert_eq!(
            a.end(480),
            Ending::Nothing,
            "no BYE and no final error after the 487"
        );
        assert_eq!(a.acked(), None);
        // A CANCEL while only ringing: nothing was answered.
        let mut b = CallerAnswer::held(ok());
        b.queued(true);
        assert!(!b.cancelled());
    }

    #[test]
    fn an_early_media_refusal_is_a_final_error_after_the_183() {
        let mut a = CallerAnswer::held(ok());
        a.queued(true);
        let Ending::Refuse(r) = a.end(486) else {
            panic!("an early-media caller is refused with a final error");
        };
        assert_eq!(r.status, 486);
        // A call ended before the caller's ACK still counts its answer.
        let mut b = CallerAnswer::held(ok());
        b.queued(true);
        b.seat_answered();
        assert!(b.take_uncounted());
        assert!(!b.take_uncounted());
    }
}
