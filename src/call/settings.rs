//! The call layer's static settings, read from the configuration once at start, and the ACD
//! engine built from the queues.
//!
//! Must not know: calls, the clock (`now` seeds the engine), SIP.

use super::MediaSettings;
use crate::acd::{AgentId, Engine, Member, QueueSettings, Strategy};
use crate::clock::Now;
use crate::config::{self, Config};
use crate::sip::advertise::Advertise;
use crate::sip::endpoint::Transport;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Static settings of the call layer.
pub struct CallSettings {
    pub max_calls: usize,
    pub priority_header: String,
    pub short_abandon: Duration,
    /// Dialed number → queue name.
    pub numbers: HashMap<String, String>,
    pub sl_targets: HashMap<String, Duration>,
    /// Queues that answer callers with 183 (early media) until an agent answers.
    pub early_media: std::collections::HashSet<String>,
    /// ctid's SIP addresses (Contact of its legs), by address family, as advertised.
    pub local_sip: Vec<SocketAddr>,
    /// ctid's SIP-over-TLS listeners (Contact of legs over TLS), the advertised host applied
    /// but their own port kept.
    pub local_tls: Vec<SocketAddr>,
    /// `[sip] advertise`, for the Contact of the caller's leg (received on a bound address).
    pub advertise: Option<Advertise>,
    pub agents: Vec<AgentId>,
    pub agent_names: HashMap<AgentId, String>,
    pub media: MediaSettings,
}

impl CallSettings {
    /// ctid's address for a leg to `remote` over `transport` (its Contact and From host):
    /// a TLS listener for TLS, else the SIP address of `remote`'s address family.
    pub fn local_for(&self, transport: Transport, remote: SocketAddr) -> SocketAddr {
        let family = |a: &&SocketAddr| a.is_ipv4() == remote.is_ipv4();
        let tls = match transport {
            Transport::Tls => self.local_tls.iter().find(family).copied(),
            _ => None,
        };
        tls.or_else(|| self.local_sip.iter().find(family).copied())
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5060)))
    }

    /// The engine and the settings for `cfg`; `advertise` is `[sip] advertise` resolved; `now`
    /// seeds the engine's random choices.
    pub fn from_config(
        cfg: &Config,
        local_sip: Vec<SocketAddr>,
        advertise: Option<Advertise>,
        now: Now,
    ) -> Result<(CallSettings, Engine), String> {
        let mut numbers = HashMap::new();
        let mut sl_targets = HashMap::new();
        let mut early_media = std::collections::HashSet::new();
        let mut queues = Vec::new();
        for q in &cfg.queues {
            for n in &q.numbers {
                numbers.insert(n.clone(), q.name.clone());
            }
            sl_targets.insert(q.name.clone(), Duration::from_secs(q.sl_target_secs));
            if q.early_media {
                early_media.insert(q.name.clone());
            }
            let mut s = QueueSettings::new(q.name.clone());
            s.strategy = match q.strategy.as_str() {
                "round-robin" => Strategy::RoundRobin,
                "ring-all" => Strategy::RingAll,
                "fewest-calls" => Strategy::FewestCalls,
                "random" => Strategy::Random,
                "skills" => Strategy::SkillTiers,
                _ => Strategy::LongestIdle,
            };
            s.members = q
                .members
                .iter()
                .map(|m| Member {
                    agent: AgentId(m.agent.clone()),
                    tier: m.tier,
                })
                .collect();
            s.weight = q.weight;
            s.sl_target = Duration::from_secs(q.sl_target_secs);
            s.ring_timeout = Duration::from_secs(q.ring_timeout_secs);
            s.wrapup = Duration::from_secs(q.wrapup_secs);
            s.max_waiting = q.max_waiting;
            s.max_wait = q.max_wait_secs.map(Duration::from_secs);
            s.join_empty = q.join_empty;
            s.leave_empty = q.leave_empty;
            s.overflow = q.overflow.as_deref().and_then(config::parse_overflow);
            s.widen_after = Duration::from_secs(q.widen_after_secs);
            s.max_missed = q.max_missed;
            queues.push(s);
        }
        let agents: Vec<AgentId> = cfg.agents.iter().map(|a| AgentId(a.id.clone())).collect();
        let seed = now.wall_ms;
        let engine = Engine::new(queues, agents.clone(), seed).map_err(|e| e.to_string())?;
        Ok((
            CallSettings {
                max_calls: cfg.calls.max_calls,
                priority_header: cfg.calls.priority_header.clone(),
                short_abandon: Duration::from_secs(cfg.calls.short_abandon_secs),
                numbers,
                sl_targets,
                early_media,
                local_sip: local_sip
                    .into_iter()
                    .map(|a| Advertise::apply(advertise.as_ref(), a))
                    .collect(),
                local_tls: Vec::new(),
                advertise,
                agent_names: cfg
                    .agents
                    .iter()
                    .map(|a| (AgentId(a.id.clone()), a.name.clone()))
                    .collect(),
                agents,
                media: MediaSettings::from_config(cfg)?,
            },
            engine,
        ))
    }
}
