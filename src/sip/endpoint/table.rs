//! The entries of the endpoint's transaction tables: the keys that match a message to its
//! server transaction (RFC 3261 §17.2.3, and the RFC 2543 fallback), the server and client
//! machines with what the endpoint keeps beside them, and the timer heap's references.
//!
//! Must not know: sockets, the clock, what the transaction user does with a message.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum TxKey {
    /// RFC 3261 §17.2.3: branch + sent-by + method (ACK matches INVITE).
    Branch {
        branch: String,
        sent_by: String,
        method: String,
    },
    /// RFC 2543 peers without the magic cookie.
    Legacy {
        call_id: String,
        cseq: u32,
        from_tag: String,
        via: String,
        method: String,
    },
}

impl TxKey {
    pub(super) fn for_request(req: &Request) -> Option<TxKey> {
        let via = Via::parse(req.headers.get("Via")?).ok()?;
        let method = match req.method {
            Method::Ack => "INVITE".to_string(),
            ref m => m.as_str().to_string(),
        };
        if via.has_rfc3261_branch() {
            return Some(TxKey::Branch {
                branch: via.branch().unwrap_or("").to_string(),
                sent_by: via.sent_by(),
                method,
            });
        }
        let cseq = CSeq::parse(req.headers.get("CSeq")?).ok()?;
        let from_tag = NameAddr::parse(req.headers.get("From")?)
            .ok()
            .and_then(|f| f.tag().map(str::to_string))
            .unwrap_or_default();
        Some(TxKey::Legacy {
            call_id: req.headers.get("Call-ID")?.to_string(),
            cseq: cseq.seq,
            from_tag,
            via: via.to_value(),
            method,
        })
    }

    pub(super) fn with_method(&self, m: &str) -> TxKey {
        let mut k = self.clone();
        match &mut k {
            TxKey::Branch { method, .. } | TxKey::Legacy { method, .. } => *method = m.to_string(),
        }
        k
    }
}

pub(super) enum ServerMachine {
    Invite(ServerInvite),
    NonInvite(ServerNonInvite),
}

impl ServerMachine {
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        match self {
            ServerMachine::Invite(m) => m.poll_timeout(),
            ServerMachine::NonInvite(m) => m.poll_timeout(),
        }
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) -> Vec<TxAction> {
        match self {
            ServerMachine::Invite(m) => m.handle_timeout(now),
            ServerMachine::NonInvite(m) => m.handle_timeout(now),
        }
    }

    pub(super) fn handle_request_retransmit(&mut self, now: Instant) -> Vec<TxAction> {
        match self {
            ServerMachine::Invite(m) => m.handle_request_retransmit(now),
            ServerMachine::NonInvite(m) => m.handle_request_retransmit(now),
        }
    }

    pub(super) fn respond(&mut self, now: Instant, status: u16, bytes: Bytes) -> Vec<TxAction> {
        match self {
            ServerMachine::Invite(m) => m.respond(now, status, bytes),
            ServerMachine::NonInvite(m) => m.respond(now, status, bytes),
        }
    }
}

pub(super) struct ServerTx {
    pub(super) key: TxKey,
    pub(super) machine: ServerMachine,
    /// Where responses go (the Via/rport rule applied).
    pub(super) flow: Flow,
    /// The request (kept for INVITE: CANCEL builds its 487 from it).
    pub(super) request: Option<Request>,
    pub(super) to_tag: String,
    /// (Call-ID, CSeq) for matching the ACK of a 2xx.
    pub(super) ack_match: Option<(String, u32)>,
    /// (From tag, Call-ID, CSeq) for merged-request detection (§8.2.2.2).
    pub(super) merge_key: Option<(String, String, u32)>,
}

pub(super) enum ClientMachine {
    Invite(ClientInvite),
    NonInvite(ClientNonInvite),
}

impl ClientMachine {
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        match self {
            ClientMachine::Invite(m) => m.poll_timeout(),
            ClientMachine::NonInvite(m) => m.poll_timeout(),
        }
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) -> Vec<TxAction> {
        match self {
            ClientMachine::Invite(m) => m.handle_timeout(now),
            ClientMachine::NonInvite(m) => m.handle_timeout(now),
        }
    }
}

pub(super) struct ClientTx {
    pub(super) tu: ClientTxId,
    pub(super) machine: ClientMachine,
    pub(super) flow: Flow,
    pub(super) request: Request,
    pub(super) credentials: Option<(String, String)>,
    pub(super) auth_attempts: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum TimerRef {
    Server(u64),
    Client(u64),
    Registrar,
}

/// The tag parameter of a name-addr header (From/To), if the header parses and has one.
pub(super) fn tag_of(req: &Request, header: &str) -> Option<String> {
    req.headers
        .get(header)
        .and_then(|v| NameAddr::parse(v).ok())
        .and_then(|na| na.tag().map(str::to_string))
}

/// The CSeq number of a request (0 if absent: validated requests always have one).
pub(super) fn cseq_of(req: &Request) -> u32 {
    req.headers
        .get("CSeq")
        .and_then(|c| CSeq::parse(c).ok())
        .map_or(0, |c| c.seq)
}
