//! The seats being rung for one call, each known by the client transaction of its INVITE.
//!
//! The ACD engine names an offer by (call, agent), and may offer the same agent again at once
//! (the only free seat missed its ring timeout). The seat's answers, though, belong to one
//! INVITE: the `487` to the cancelled one arrives after the new one is ringing. So responses
//! are matched by transaction here, and a transaction whose offer was withdrawn matches
//! nothing, whatever the agent is doing now.
//!
//! Must not know: SIP messages, sockets, the engine.

use crate::acd::AgentId;
use crate::sip::endpoint::ClientTxId;

/// The live offers of a call (a handful at most: one per ringing seat).
#[derive(Debug)]
pub(super) struct Offers<L> {
    legs: Vec<(ClientTxId, AgentId, L)>,
}

impl<L> Default for Offers<L> {
    fn default() -> Self {
        Offers { legs: Vec::new() }
    }
}

impl<L> Offers<L> {
    /// A new offer to `agent` by the INVITE `tx`. The engine never has two live offers of one
    /// call to one agent: an older one still here is replaced (and returned).
    pub fn insert(&mut self, tx: ClientTxId, agent: AgentId, leg: L) -> Option<(ClientTxId, L)> {
        let old = self.remove_agent(&agent);
        self.legs.push((tx, agent, leg));
        old
    }

    /// The live offer of `agent` (what an engine action names).
    pub fn of_agent_mut(&mut self, agent: &AgentId) -> Option<&mut L> {
        self.legs
            .iter_mut()
            .find(|(_, a, _)| a == agent)
            .map(|(_, _, l)| l)
    }

    /// Withdraw `agent`'s live offer (cancelled, answered, failed).
    pub fn remove_agent(&mut self, agent: &AgentId) -> Option<(ClientTxId, L)> {
        let i = self.legs.iter().position(|(_, a, _)| a == agent)?;
        let (tx, _, l) = self.legs.swap_remove(i);
        Some((tx, l))
    }

    /// The agent whose live offer is the INVITE `tx`; `None` for a withdrawn offer.
    pub fn agent_of(&self, tx: ClientTxId) -> Option<&AgentId> {
        self.legs.iter().find(|(t, ..)| *t == tx).map(|(_, a, _)| a)
    }

    pub fn leg_of(&self, tx: ClientTxId) -> Option<&L> {
        self.legs.iter().find(|(t, ..)| *t == tx).map(|(_, _, l)| l)
    }

    pub fn leg_of_mut(&mut self, tx: ClientTxId) -> Option<&mut L> {
        self.legs
            .iter_mut()
            .find(|(t, ..)| *t == tx)
            .map(|(_, _, l)| l)
    }

    /// Withdraw the offer made by the INVITE `tx`, if it is still live.
    pub fn remove_tx(&mut self, tx: ClientTxId) -> Option<(AgentId, L)> {
        let i = self.legs.iter().position(|(t, ..)| *t == tx)?;
        let (_, a, l) = self.legs.swap_remove(i);
        Some((a, l))
    }

    pub fn agents(&self) -> Vec<AgentId> {
        self.legs.iter().map(|(_, a, _)| a.clone()).collect()
    }

    pub fn legs(&self) -> impl Iterator<Item = &L> {
        self.legs.iter().map(|(_, _, l)| l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> AgentId {
        AgentId(s.into())
    }

    /// The issue-20 race: ring timeout, CANCEL, the same agent offered again, then the 487 of
    /// the first INVITE. It must not end the second offer.
    #[test]
    fn a_response_to_a_withdrawn_invite_does_not_match_the_new_offer() {
        let mut offers = Offers::default();
        offers.insert(ClientTxId(1), a("1001"), "first");
        assert_eq!(
            offers.remove_agent(&a("1001")),
            Some((ClientTxId(1), "first"))
        );
        offers.insert(ClientTxId(2), a("1001"), "second");
        // The 487 (or a late 200) of INVITE 1 arrives now.
        assert_eq!(offers.agent_of(ClientTxId(1)), None);
        assert_eq!(offers.remove_tx(ClientTxId(1)), None);
        assert_eq!(offers.leg_of(ClientTxId(2)), Some(&"second"));
        // The seat's answer to INVITE 2 is the offer's.
        assert_eq!(offers.agent_of(ClientTxId(2)), Some(&a("1001")));
        assert_eq!(offers.remove_tx(ClientTxId(2)), Some((a("1001"), "second")));
        assert!(offers.agents().is_empty());
    }

    #[test]
    fn ring_all_offers_are_kept_apart() {
        let mut offers = Offers::default();
        offers.insert(ClientTxId(1), a("1001"), 1);
        offers.insert(ClientTxId(2), a("1002"), 2);
        *offers.leg_of_mut(ClientTxId(2)).unwrap() = 20;
        assert_eq!(offers.of_agent_mut(&a("1002")), Some(&mut 20));
        assert_eq!(offers.remove_tx(ClientTxId(1)), Some((a("1001"), 1)));
        assert_eq!(offers.agents(), vec![a("1002")]);
        // A second offer to the same agent replaces the first.
        let old = offers.insert(ClientTxId(3), a("1002"), 3);
        assert_eq!(old, Some((ClientTxId(2), 20)));
        assert_eq!(offers.legs().count(), 1);
    }
}
