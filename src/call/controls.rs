//! The call manager's control surface: agent login/logout/pause from the API, the agent board,
//! queue snapshots, moving waiting callers; and handing the board's output (events, agent
//! sessions) to the API's stream and the store.

use super::control::{AgentView, CallEvent, Control, ControlError, QueueView, WaitingCaller};
use super::CallManager;
use crate::acd::{AgentId, AgentState, CallId, Input, QueueId};

impl CallManager {
    /// Publish an event to the API's stream (in order, at the end of the input; see
    /// [`CallManager::flush_board`]).
    pub(super) fn publish(&mut self, ev: CallEvent) {
        self.board.publish(ev);
    }

    /// Hand what the board produced to its consumers: events to the API's stream (dropped, with
    /// a warning, if the API lags), agent-session rows to the store (never dropped).
    pub(super) async fn flush_board(&mut self) {
        while let Some(ev) = self.board.poll_event() {
            if let Some(out) = &self.events_out {
                if out.try_send(ev).is_err() {
                    tracing::warn!("event stream queue full; an event was dropped");
                }
            }
        }
        while let Some(op) = self.board.poll_session_op() {
            if self.store.send(op.into()).await.is_err() {
                tracing::error!("store writer gone; agent session row lost");
            }
        }
    }

    fn agent_view(&self, agent: &AgentId) -> Option<AgentView> {
        let state = self.engine.agent_state(agent)?;
        let board = self.board.entry(agent);
        let reason = match state {
            AgentState::Paused(r) => Some(r.clone()),
            _ => None,
        };
        Some(AgentView {
            id: agent.0.clone(),
            name: self
                .settings
                .agent_names
                .get(agent)
                .cloned()
                .unwrap_or_default(),
            state: state.kind().to_string(),
            reason,
            pending_pause: self.engine.pending_pause(agent).map(str::to_string),
            since_ms: board.since_ms,
            call: board.call,
            calls_answered: board.calls_answered,
            registered: self.board.registered(&agent.0),
        })
    }

    pub(super) fn known_agent(&self, id: &str) -> Result<AgentId, ControlError> {
        let agent = AgentId(id.to_string());
        if self.engine.agent_state(&agent).is_none() {
            return Err(ControlError::NotFound(format!("agent {id}")));
        }
        Ok(agent)
    }

    /// Answer one control command.
    pub(super) async fn control(&mut self, cmd: Control) {
        let now = self.now.mono;
        match cmd {
            Control::Login {
                agent,
                queues,
                reply,
            } => {
                let r = self.known_agent(&agent).and_then(|a| {
                    if !self.board.registered(&a.0) {
                        return Err(ControlError::Conflict(format!(
                            "agent {agent}'s phone is not registered"
                        )));
                    }
                    self.board.handle_manual(&a, false);
                    let queues = queues.map(|qs| qs.into_iter().map(QueueId).collect());
                    self.engine.handle(
                        now,
                        Input::AgentLogin {
                            agent: a.clone(),
                            queues,
                        },
                    );
                    Ok(a)
                });
                self.apply_actions().await;
                let _ = reply.send(r.and_then(|a| self.view_or_missing(&a)));
            }
            Control::Logout { agent, reply } => {
                let r = self.known_agent(&agent).inspect(|a| {
                    self.board.handle_manual(a, true);
                    self.engine
                        .handle(now, Input::AgentLogout { agent: a.clone() });
                });
                self.apply_actions().await;
                let _ = reply.send(r.and_then(|a| self.view_or_missing(&a)));
            }
            Control::Pause {
                agent,
                reason,
                reply,
            } => {
                let r = self.known_agent(&agent).and_then(|a| {
                    if matches!(self.engine.agent_state(&a), Some(AgentState::LoggedOut)) {
                        return Err(ControlError::Conflict(format!(
                            "agent {agent} is logged out"
                        )));
                    }
                    self.engine.handle(
                        now,
                        Input::AgentPause {
                            agent: a.clone(),
                            reason,
                        },
                    );
                    Ok(a)
                });
                self.apply_actions().await;
                let _ = reply.send(r.and_then(|a| self.view_or_missing(&a)));
            }
            Control::Unpause { agent, reply } => {
                let r = self.known_agent(&agent).and_then(|a| {
                    let paused = matches!(self.engine.agent_state(&a), Some(AgentState::Paused(_)));
                    if !paused && self.engine.pending_pause(&a).is_none() {
                        return Err(ControlError::Conflict(format!(
                            "agent {agent} is not paused"
                        )));
                    }
                    self.engine
                        .handle(now, Input::AgentUnpause { agent: a.clone() });
                    Ok(a)
                });
                self.apply_actions().await;
                let _ = reply.send(r.and_then(|a| self.view_or_missing(&a)));
            }
            Control::EndWrapup { agent, reply } => {
                let r = self.known_agent(&agent).and_then(|a| {
                    if !matches!(self.engine.agent_state(&a), Some(AgentState::Wrapup)) {
                        return Err(ControlError::Conflict(format!(
                            "agent {agent} is not in wrap-up"
                        )));
                    }
                    self.engine
                        .handle(now, Input::EndWrapup { agent: a.clone() });
                    Ok(a)
                });
                self.apply_actions().await;
                let _ = reply.send(r.and_then(|a| self.view_or_missing(&a)));
            }
            Control::MoveCall {
                call,
                to_queue,
                reply,
            } => {
                let id = CallId(call);
                let r = match self.calls.get(&id) {
                    None => Err(ControlError::NotFound(format!("call {call}"))),
                    Some(c) if c.connected.is_some() || c.caller_ended => Err(
                        ControlError::Conflict(format!("call {call} is not waiting")),
                    ),
                    Some(_) => match to_queue {
                        None => {
                            self.engine.handle(now, Input::MoveToFront { call: id });
                            Ok(())
                        }
                        Some(q) if self.settings.sl_targets.contains_key(&q) => {
                            self.engine.handle(
                                now,
                                Input::MoveToQueue {
                                    call: id,
                                    queue: QueueId(q),
                                },
                            );
                            Ok(())
                        }
                        Some(q) => Err(ControlError::Invalid(format!("unknown queue {q}"))),
                    },
                };
                self.apply_actions().await;
                let _ = reply.send(r);
            }
            Control::Preview { agent, reply } => {
                let _ = reply.send(self.preview_view(&agent));
            }
            Control::PreviewAccept { agent, reply } => {
                let r = self.preview_accept(&agent).await;
                self.apply_actions().await;
                let _ = reply.send(r);
            }
            Control::PreviewSkip { agent, reply } => {
                let r = self.preview_skip(&agent);
                self.apply_actions().await;
                let _ = reply.send(r);
            }
            Control::Agents { reply } => {
                let mut ids: Vec<&AgentId> = self.settings.agents.iter().collect();
                ids.sort();
                let views = ids.into_iter().filter_map(|a| self.agent_view(a)).collect();
                let _ = reply.send(Ok(views));
            }
            Control::Queue { queue, reply } => {
                let r = if !self.settings.sl_targets.contains_key(&queue) {
                    Err(ControlError::NotFound(format!("queue {queue}")))
                } else {
                    let mut waiting: Vec<WaitingCaller> = self
                        .calls
                        .iter()
                        .filter(|(_, c)| {
                            c.queue == queue && c.connected.is_none() && !c.caller_ended
                        })
                        .filter_map(|(id, c)| {
                            let (_, position) = self.engine.queue_position(*id)?;
                            Some(WaitingCaller {
                                call: id.0,
                                position,
                                caller_number: c.caller_number.clone(),
                                caller_name: c.caller_name.clone(),
                                priority: c.priority,
                                wait_secs: now.saturating_duration_since(c.entered).as_secs_f64(),
                            })
                        })
                        .collect();
                    waiting.sort_by_key(|w| w.position);
                    Ok(QueueView { queue, waiting })
                };
                let _ = reply.send(r);
            }
        }
    }

    fn view_or_missing(&self, a: &AgentId) -> Result<AgentView, ControlError> {
        self.agent_view(a)
            .ok_or_else(|| ControlError::NotFound(format!("agent {}", a.0)))
    }

    /// Keep the board in step with the engine's agent states.
    pub(super) fn board_state(&mut self, agent: &AgentId, state: &AgentState) {
        self.board.handle_state(agent, state, self.now);
    }
}
