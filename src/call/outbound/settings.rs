//! What the dialer needs from the configuration, gathered once at start.
//!
//! Must not know: calls, the clock, SIP.

use crate::acd::AgentId;
use crate::config::{self, Config};
use crate::media::session::SessionConfig;
use std::collections::HashMap;
use std::time::Duration;

/// What the dialer needs from the configuration.
#[derive(Debug, Clone)]
pub struct OutboundSettings {
    pub cfg: config::Outbound,
    pub trunk: Option<config::Trunk>,
    /// Where the lists, contacts and attempts are read and written.
    pub store: crate::store::Store,
    /// Where the trunk is reached (its name resolved by the qualifier; see `trunk::TrunkTarget`).
    pub trunk_target: crate::trunk::TrunkTarget,
    /// Queue → its members.
    pub queue_members: HashMap<String, Vec<AgentId>>,
    /// Agent → the queues it serves (for blending and wrap-up).
    pub agent_queues: HashMap<AgentId, Vec<String>>,
    pub sl_targets: HashMap<String, u64>,
    pub wrapups: HashMap<String, Duration>,
    pub session: SessionConfig,
    /// How queue callback requests become contacts (`[reports] time_zone`, default country).
    pub callbacks: crate::outbound::QueueCallbackSettings,
}

impl OutboundSettings {
    pub fn from_config(cfg: &Config, store: crate::store::Store) -> OutboundSettings {
        let mut queue_members = HashMap::new();
        let mut agent_queues: HashMap<AgentId, Vec<String>> = HashMap::new();
        let mut sl_targets = HashMap::new();
        let mut wrapups = HashMap::new();
        for q in &cfg.queues {
            let members: Vec<AgentId> =
                q.members.iter().map(|m| AgentId(m.agent.clone())).collect();
            for m in &members {
                agent_queues
                    .entry(m.clone())
                    .or_default()
                    .push(q.name.clone());
            }
            queue_members.insert(q.name.clone(), members);
            sl_targets.insert(q.name.clone(), q.sl_target_secs);
            wrapups.insert(q.name.clone(), Duration::from_secs(q.wrapup_secs));
        }
        OutboundSettings {
            cfg: cfg.outbound.clone(),
            trunk: cfg.trunk.clone(),
            store,
            trunk_target: crate::trunk::TrunkTarget::default(),
            queue_members,
            agent_queues,
            sl_targets,
            wrapups,
            session: SessionConfig {
                media_timeout: None,
                relay_dtmf: cfg.media.dtmf == "relay",
                ..SessionConfig::default()
            },
            callbacks: crate::outbound::QueueCallbackSettings {
                time_zone: cfg.reports.time_zone.clone(),
                country_code: cfg.outbound.country_code(),
            },
        }
    }

    /// The wrap-up after an outbound call: the longest of the agent's queues.
    pub(super) fn wrapup(&self, agent: &AgentId) -> Duration {
        self.agent_queues
            .get(agent)
            .into_iter()
            .flatten()
            .filter_map(|q| self.wrapups.get(q))
            .max()
            .copied()
            .unwrap_or_default()
    }
}
