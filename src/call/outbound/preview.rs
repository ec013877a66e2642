//! Preview dialing: a contact claimed for an agent is shown, not dialed, until the agent says.
//!
//! The dialer reserves a free agent and the store claims a contact exactly as for progressive
//! lists (same contact policy, same atomic claim). For a preview list the contact is then kept
//! here and announced ([`CallEvent::PreviewOffered`]); the agent's desktop reads it
//! (`GET /api/v1/agents/{id}/preview`) and accepts — ctid rings the agent, then dials the
//! customer ([`CallManager::ob_dial`]) — or skips it: the attempt is stored `skipped` (reason
//! `agent`, not a dial attempt), the contact returns after the list's no-answer delay and the
//! agent is free for the next one. An agent who does neither within
//! `[outbound] preview_timeout_secs` is paused `no_answer` (the pause every missed offer leads to)
//! and the contact goes back the same way. A preview whose agent is no longer reserved (paused
//! for a break, logged out by a supervisor) is withdrawn at the next tick.

use super::{AttemptId, AttemptResult, CallManager, ListId, Msg, PAUSE_REASON};
use crate::acd::{AgentId, AgentState, Input};
use crate::call::control::{CallEvent, ControlError, PreviewView};
use crate::outbound::Contact;
use std::time::Duration;

/// The pause an agent gets for letting a preview time out.
const TIMEOUT_PAUSE: &str = "no_answer";

/// A contact shown to one agent.
pub(super) struct Preview {
    attempt: AttemptId,
    list: ListId,
    list_name: String,
    contact: Contact,
    number: String,
    shown_at_ms: u64,
    expires_at_ms: u64,
}

impl Preview {
    fn view(&self, agent: &AgentId) -> PreviewView {
        PreviewView {
            agent: agent.0.clone(),
            attempt: self.attempt.0,
            list: self.list.0,
            list_name: self.list_name.clone(),
            number: self.number.clone(),
            contact: self.contact.clone(),
            shown_at_ms: self.shown_at_ms,
            expires_at_ms: self.expires_at_ms,
        }
    }
}

impl CallManager {
    /// The store claimed `contact` for the reserved `agent` on a preview list: show it.
    pub(super) fn preview_show(
        &mut self,
        agent: AgentId,
        attempt: AttemptId,
        list: ListId,
        list_name: String,
        contact: Contact,
        number: String,
    ) {
        let Some(d) = self.outbound.as_mut() else {
            return;
        };
        let timeout = Duration::from_secs(d.settings.cfg.preview_timeout_secs);
        let shown_at_ms = self.now.wall_ms;
        let expires_at_ms = shown_at_ms + timeout.as_millis() as u64;
        tracing::info!(agent = %agent, %attempt, list = %list_name, "outbound: contact shown to the agent (preview)");
        d.after(
            self.now,
            timeout,
            Msg::PreviewTimeout(agent.clone(), attempt),
        );
        self.publish(CallEvent::PreviewOffered {
            agent: agent.0.clone(),
            attempt: attempt.0,
            list: list_name.clone(),
            expires_at_ms,
        });
        if let Some(d) = self.outbound.as_mut() {
            d.previews.insert(
                agent,
                Preview {
                    attempt,
                    list,
                    list_name,
                    contact,
                    number,
                    shown_at_ms,
                    expires_at_ms,
                },
            );
        }
    }

    /// What `agent` is being shown, if anything (an error for an unknown agent).
    pub(in crate::call) fn preview_view(
        &self,
        agent: &str,
    ) -> Result<Option<PreviewView>, ControlError> {
        let a = self.known_agent(agent)?;
        Ok(self
            .outbound
            .as_ref()
            .and_then(|d| d.previews.get(&a))
            .map(|p| p.view(&a)))
    }

    /// Take `agent`'s preview, or say why there is none.
    fn preview_take(&mut self, agent: &str) -> Result<(AgentId, Preview), ControlError> {
        let a = self.known_agent(agent)?;
        let p = self
            .outbound
            .as_mut()
            .and_then(|d| d.previews.remove(&a))
            .ok_or_else(|| {
                ControlError::Conflict(format!("agent {agent} has no contact in preview"))
            })?;
        Ok((a, p))
    }

    /// The agent accepts: ring it, then dial the customer. The outbound call's id.
    pub(in crate::call) async fn preview_accept(
        &mut self,
        agent: &str,
    ) -> Result<u64, ControlError> {
        let (a, p) = self.preview_take(agent)?;
        self.publish(CallEvent::PreviewEnded {
            agent: a.0.clone(),
            attempt: p.attempt.0,
            how: "accepted".into(),
        });
        let attempt = p.attempt;
        match self
            .ob_dial(a, attempt, p.contact.name, p.number, p.list_name)
            .await
        {
            Some(id) => Ok(id.0),
            None => Err(ControlError::Conflict(format!(
                "agent {agent} cannot be rung (not reserved any more, no registered phone or no \
                 media port): the contact was given back"
            ))),
        }
    }

    /// The agent skips: the contact returns later, the agent is free for the next one.
    pub(in crate::call) fn preview_skip(&mut self, agent: &str) -> Result<(), ControlError> {
        let (a, p) = self.preview_take(agent)?;
        self.preview_give_back(&a, &p, "skipped");
        self.ob_free(&a);
        Ok(())
    }

    /// Store the skip of `p` (not a dial attempt; the contact returns after the list's no-answer
    /// delay) and announce how the preview ended.
    fn preview_give_back(&mut self, agent: &AgentId, p: &Preview, how: &str) {
        tracing::info!(agent = %agent, attempt = %p.attempt, how, "outbound: preview given back");
        if let Some(d) = &self.outbound {
            d.result(p.attempt, AttemptResult::Skipped, None, self.now.wall_ms);
        }
        crate::metrics::outbound_attempt(&p.list_name, "skipped");
        self.publish(CallEvent::PreviewEnded {
            agent: agent.0.clone(),
            attempt: p.attempt.0,
            how: how.into(),
        });
    }

    /// Nobody answered the preview in time: give it back and pause the agent `no_answer`.
    pub(super) async fn preview_timeout(&mut self, agent: AgentId, attempt: AttemptId) {
        let Some(d) = self.outbound.as_mut() else {
            return;
        };
        if d.previews.get(&agent).is_none_or(|p| p.attempt != attempt) {
            return;
        }
        let Some(p) = d.previews.remove(&agent) else {
            return;
        };
        d.pacing.release(&agent);
        self.preview_give_back(&agent, &p, "timeout");
        if self.engine.agent_state(&agent) == Some(&AgentState::Paused(PAUSE_REASON.into())) {
            self.engine.handle(
                self.now.mono,
                Input::AgentPause {
                    agent,
                    reason: TIMEOUT_PAUSE.into(),
                },
            );
        }
    }

    /// Withdraw previews whose agents are no longer held by the dialer (a pause, a logout).
    pub(super) fn previews_check(&mut self) {
        let Some(d) = self.outbound.as_ref() else {
            return;
        };
        if d.previews.is_empty() {
            return;
        }
        let held = AgentState::Paused(PAUSE_REASON.into());
        let stale: Vec<AgentId> = d
            .previews
            .keys()
            .filter(|a| self.engine.agent_state(a) != Some(&held))
            .cloned()
            .collect();
        for a in stale {
            if let Some(p) = self.outbound.as_mut().and_then(|d| d.previews.remove(&a)) {
                self.preview_give_back(&a, &p, "withdrawn");
                if let Some(d) = self.outbound.as_mut() {
                    d.pacing.release(&a);
                }
            }
        }
    }

    /// Give every preview back (shutdown).
    pub(super) fn previews_withdraw_all(&mut self) {
        let all: Vec<(AgentId, Preview)> = self
            .outbound
            .as_mut()
            .map(|d| d.previews.drain().collect())
            .unwrap_or_default();
        for (a, p) in all {
            self.preview_give_back(&a, &p, "withdrawn");
        }
    }
}
