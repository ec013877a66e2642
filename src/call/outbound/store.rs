//! The dialer's store thread: reconcile the attempts once at start, then serve the dialer's
//! requests in order on the store writer's connection, and report back through its channel.
//!
//! Must not know: SIP, calls, the clock (each request carries its time).

use super::*;

/// The store side: reconcile once, then serve requests in order until the dialer is dropped.
/// Each request runs on the store writer's connection (see the module header). Before each
/// reading of the lists, new queue callback requests become contacts (`callbacks`: how; none
/// when nothing is dialed).
pub(super) fn store_thread(
    started_ms: u64,
    db: crate::store::Store,
    callbacks: Option<crate::outbound::QueueCallbackSettings>,
    jobs: std::sync::mpsc::Receiver<StoreReq>,
    out: mpsc::Sender<Msg>,
) {
    let reconciled = db
        .sql_write_blocking(move |conn| crate::outbound::reconcile_after_restart(conn, started_ms));
    match reconciled {
        Ok(r) => tracing::info!(report = ?r, "outbound attempts reconciled"),
        Err(e) => {
            tracing::error!(error = %e, "reconciling outbound attempts failed; nothing is dialed");
            return;
        }
    }
    if out.blocking_send(Msg::Reconciled).is_err() {
        return;
    }
    let mut names: HashMap<ListId, String> = HashMap::new();
    while let Ok(job) = jobs.recv() {
        let reply = match job {
            StoreReq::Lists { now_ms } => {
                let callbacks = callbacks.clone();
                let all = db.sql_write_blocking(move |conn| {
                    if let Some(settings) = &callbacks {
                        absorbed(crate::outbound::absorb_requests(conn, settings, now_ms));
                    }
                    crate::outbound::list_lists(conn)
                });
                lists_reply(all, &mut names)
            }
            StoreReq::Next {
                agent,
                lists,
                now_ms,
            } => {
                let known = names.clone();
                let who = agent.0.clone();
                let asked = db.sql_write_blocking(move |conn| {
                    let decision = crate::outbound::next_contact_among(conn, &lists, &who, now_ms)
                        .map_err(|e| e.to_string());
                    let list_name = match &decision {
                        Ok(Decision::Dial { list, .. }) => known
                            .get(list)
                            .cloned()
                            .or_else(|| {
                                crate::outbound::get_list(conn, *list)
                                    .ok()
                                    .map(|l| l.spec.name)
                            })
                            .unwrap_or_default(),
                        _ => String::new(),
                    };
                    Ok::<_, crate::store::StoreError>((decision, list_name))
                });
                let (decision, list_name) = match asked {
                    Ok(x) => x,
                    Err(e) => (Err(e.to_string()), String::new()),
                };
                Some(Msg::Next {
                    agent,
                    decision: Box::new(decision),
                    list_name,
                })
            }
            StoreReq::Link { attempt, call } => {
                let linked = db.sql_write_blocking(move |conn| {
                    crate::outbound::link_call(conn, attempt, call)
                });
                if let Err(e) = linked {
                    tracing::warn!(%attempt, error = %e, "cannot link the attempt to its call");
                }
                None
            }
            StoreReq::Result {
                attempt,
                result,
                code,
                at_ms,
            } => {
                let stored = db.sql_write_blocking(move |conn| {
                    crate::outbound::record_result(conn, attempt, result, code, at_ms)
                });
                match stored {
                    Ok(next) => {
                        tracing::info!(%attempt, %result, ?code, ?next, "outbound attempt result stored")
                    }
                    Err(e) => {
                        tracing::warn!(%attempt, %result, error = %e, "cannot store the attempt result")
                    }
                }
                None
            }
            StoreReq::Hangup { attempt, at_ms } => {
                let stored = db.sql_write_blocking(move |conn| {
                    crate::outbound::record_hangup(conn, attempt, at_ms)
                });
                if let Err(e) = stored {
                    tracing::warn!(%attempt, error = %e, "cannot store the attempt's hang-up");
                }
                None
            }
        };
        if let Some(m) = reply {
            if out.blocking_send(m).is_err() {
                return;
            }
        }
    }
}

/// The dialer's view of the lists read: the active ones (their names remembered in `names`).
pub(super) fn lists_reply(
    all: crate::outbound::Result<Vec<crate::outbound::List>>,
    names: &mut HashMap<ListId, String>,
) -> Option<Msg> {
    match all {
        Ok(all) => {
            let infos = all
                .into_iter()
                .filter(|l| l.state == ListState::Active)
                .map(|l| {
                    names.insert(l.id, l.spec.name.clone());
                    ListInfo {
                        id: l.id,
                        agents: l.spec.agents,
                        queue: l.spec.queue,
                    }
                })
                .collect();
            Some(Msg::Lists(infos))
        }
        Err(e) => {
            tracing::warn!(error = %e, "dialer cannot read the lists");
            None
        }
    }
}

/// Log what came of turning new queue callback requests into contacts (see
/// [`crate::outbound::queue_callbacks`]). A failure is tried again at the next reading of the
/// lists; the lists still dial.
pub(super) fn absorbed(r: crate::outbound::Result<crate::outbound::AbsorbReport>) {
    match r {
        Ok(r) if r == crate::outbound::AbsorbReport::default() => {}
        Ok(r) => tracing::info!(report = ?r, "queue callback requests taken up by the dialer"),
        Err(e) => tracing::warn!(error = %e, "cannot take up queue callback requests"),
    }
}
