//! The metric catalogue and the Prometheus exporter.
//!
//! Every metric the daemon emits is named and described here (HELP text), histograms get explicit
//! buckets (without them the exporter would render summaries, from which Grafana cannot compute a
//! service level), and every labelled series is created at 0 on start-up so dashboards and
//! `rate()` see it before the first event.
//!
//! Rules (see DESIGN): counters end in `_total`, times are in seconds (`_seconds`), label values
//! come only from small configured sets (queue names, callback list names, [`AGENT_STATES`],
//! [`OUTCOMES`], fixed reasons) — never caller numbers or call ids.
//!
//! Call [`install`] once at start-up, before anything records; the recording helpers below
//! (and the `metrics::counter!`/`gauge!`/`histogram!` calls elsewhere in the crate) then go to the
//! installed recorder. [`Metrics::render`] produces the text for `GET /metrics` (see
//! [`crate::admin`]).

use std::sync::atomic::{AtomicU64, Ordering};

mod describe;
pub mod edge;

use describe::describe_all;

use metrics_exporter_prometheus::{
    BuildError, Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

/// A configured queue, as far as the metrics need to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    /// The queue's name: used as the `queue` label value.
    pub name: String,
    /// The service-level target in seconds; added as a bucket boundary of the wait histogram so
    /// SL = `bucket{le=target} / count` is exact.
    pub sl_target_secs: u64,
}

/// Why the recorder could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Building the recorder failed, or a global recorder is already installed (a second
    /// [`install`] in the same process).
    #[error("cannot install the metrics recorder: {0}")]
    Build(#[from] BuildError),
}

/// How a call left its queue (`outcome` label).
pub const OUTCOMES: [&str; 6] = [
    "answered",
    "abandoned",
    "timeout",
    "overflow",
    "rejected",
    "callback_requested",
];

/// Agent states (`state` label).
pub const AGENT_STATES: [&str; 6] = [
    "logged_out",
    "available",
    "ringing",
    "on_call",
    "wrapup",
    "paused",
];

/// Actions taken on an unparsable SIP message (`action` label).
pub const PARSE_ERROR_ACTIONS: [&str; 2] = ["answered", "dropped"];

/// Why the media relay dropped a packet (`reason` label).
pub const MEDIA_DROP_REASONS: [&str; 4] = ["invalid", "stray", "no_destination", "send_failed"];

/// Wait-time buckets in seconds; each queue's SL target is added.
pub const WAIT_BUCKETS: [f64; 12] = [
    5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0,
];

/// Handle-time (talk + wrap-up as the caller defines it) buckets in seconds.
pub const HANDLE_BUCKETS: [f64; 9] = [
    30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
];

/// Store write latency buckets in seconds.
pub const STORE_WRITE_BUCKETS: [f64; 11] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Fallback buckets for any histogram not listed here, so nothing ever renders as a summary.
const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

// Names of the metrics this module records.
const QUEUE_CALLS_ENTERED: &str = "ctid_queue_calls_entered_total";
const QUEUE_CALLS_LEFT: &str = "ctid_queue_calls_left_total";
const QUEUE_SHORT_ABANDONS: &str = "ctid_queue_short_abandons_total";
const QUEUE_WAIT: &str = "ctid_queue_wait_seconds";
const CALL_HANDLE: &str = "ctid_call_handle_seconds";
const QUEUE_WAITING: &str = "ctid_queue_calls_waiting";
const QUEUE_LONGEST_WAIT: &str = "ctid_queue_longest_wait_seconds";
const AGENTS: &str = "ctid_agents";
const QUEUE_AGENTS: &str = "ctid_queue_agents";
const AGENT_STATE_SECONDS: &str = "ctid_agent_state_seconds_total";
const BUILD_INFO: &str = "ctid_build_info";
const QUEUE_IN_TARGET: &str = "ctid_queue_answered_in_target_total";
const QUEUE_SL_TARGET: &str = "ctid_queue_sl_target_seconds";
const QUEUE_SL_GOAL: &str = "ctid_queue_sl_goal_ratio";
const QUEUE_ANSWER_RATE_GOAL: &str = "ctid_queue_answer_rate_goal_ratio";

// Names of the metrics other modules record (kept here so they are described and pre-created).
const SIP_REQUESTS: &str = "ctid_sip_requests_received_total";
const SIP_RESPONSES: &str = "ctid_sip_responses_received_total";
const SIP_PARSE_ERRORS: &str = "ctid_sip_parse_errors_total";
const SIP_RETRANSMISSIONS: &str = "ctid_sip_retransmissions_absorbed_total";
const SIP_STRAY_RESPONSES: &str = "ctid_sip_stray_responses_total";
const SIP_RESPONSES_SENT: &str = "ctid_sip_responses_sent_total";
const SIP_TRANSACTIONS: &str = "ctid_sip_transactions_total";
const SIP_TCP_REJECTED: &str = "ctid_sip_tcp_rejected_total";
const SIP_TCP_TIMEOUTS: &str = "ctid_sip_tcp_timeouts_total";
const SIP_TLS_HANDSHAKE_FAILURES: &str = "ctid_sip_tls_handshake_failures_total";
const STORE_WRITE_ERRORS: &str = "ctid_store_write_errors_total";
const STORE_QUEUE_DEPTH: &str = "ctid_store_queue_depth";
const STORE_WRITE: &str = "ctid_store_write_seconds";
const MEDIA_RELAYS_ACTIVE: &str = "ctid_media_relays_active";
const MEDIA_PACKETS_RELAYED: &str = "ctid_media_packets_relayed_total";
const MEDIA_SESSIONS_ACTIVE: &str = "ctid_media_sessions_active";
const MEDIA_PACE_LATENESS: &str = "ctid_media_pace_lateness_seconds";
const MEDIA_OWN_FRAMES: &str = "ctid_media_own_frames_total";
const MEDIA_FRAMES_SKIPPED: &str = "ctid_media_frames_skipped_total";
const MEDIA_TIMEOUTS: &str = "ctid_media_timeouts_total";
const RECORDING_FAILURES: &str = "ctid_recording_failures_total";
const SURVEY_ANSWERS: &str = "ctid_survey_answers_total";
const MEDIA_PACKETS_DROPPED: &str = "ctid_media_packets_dropped_total";
const TRUNK_UP: &str = "ctid_trunk_up";
// Callback lists (outbound): counters the dialer records, gauges refreshed from the store
// (`crate::outbound_metrics`).
const CALLBACK_ATTEMPTS: &str = "ctid_callback_attempts_total";
const CALLBACK_DIALS: &str = "ctid_callback_dials_total";
const CALLBACK_QUOTA: &str = "ctid_callback_quota";
const CALLBACK_QUOTA_USED: &str = "ctid_callback_quota_used";
const CALLBACK_PENDING: &str = "ctid_callback_contacts_pending";
const CALLBACK_LIST_ACTIVE: &str = "ctid_callback_list_active";
const COMPLAINTS_OPEN: &str = "ctid_complaints_open";
const COMPLAINTS_PAST_REPLY: &str = "ctid_complaints_past_reply";
const COMPLAINTS_PAST_RESOLVE: &str = "ctid_complaints_past_resolve";

/// A handle on the installed recorder: renders the exposition text.
#[derive(Clone, Debug)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    /// The current metrics in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Drains buffered histogram samples into their buckets; call every few seconds
    /// ([`crate::admin::serve`] does) so histogram memory stays bounded between scrapes.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// Installs the global recorder, sets the histogram buckets, describes every metric and creates
/// every labelled series at 0.
///
/// Errors if a global recorder is already installed (e.g. a second call in one test process).
pub fn install(queues: &[QueueInfo]) -> Result<Metrics, MetricsError> {
    let handle = builder(queues)?.install_recorder()?;
    register_all(queues);
    Ok(Metrics { handle })
}

/// Builds a recorder with the catalogue's buckets without installing it, for tests: use it with
/// `metrics::with_local_recorder`, and call [`register_all`] inside that scope.
pub fn build_recorder(queues: &[QueueInfo]) -> Result<(PrometheusRecorder, Metrics), MetricsError> {
    let recorder = builder(queues)?.build_recorder();
    let metrics = Metrics {
        handle: recorder.handle(),
    };
    Ok((recorder, metrics))
}

/// The wait-histogram buckets: [`WAIT_BUCKETS`] plus every queue's SL target, sorted, deduped.
pub fn wait_buckets(queues: &[QueueInfo]) -> Vec<f64> {
    let mut buckets: Vec<f64> = WAIT_BUCKETS.to_vec();
    buckets.extend(
        queues
            .iter()
            .filter(|q| q.sl_target_secs > 0)
            .map(|q| q.sl_target_secs as f64),
    );
    buckets.sort_by(f64::total_cmp);
    buckets.dedup();
    buckets
}

fn builder(queues: &[QueueInfo]) -> Result<PrometheusBuilder, BuildError> {
    PrometheusBuilder::new()
        .set_buckets(&DEFAULT_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(QUEUE_WAIT.into()), &wait_buckets(queues))?
        .set_buckets_for_metric(Matcher::Full(CALL_HANDLE.into()), &HANDLE_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(STORE_WRITE.into()), &STORE_WRITE_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(MEDIA_PACE_LATENESS.into()), &PACE_BUCKETS)
}

/// Buckets of [`MEDIA_PACE_LATENESS`]: the 5 ms limit of the media target is one of them.
const PACE_BUCKETS: [f64; 8] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1];

/// How late ctid woke up to send a frame of its own audio (hold music, prompts).
pub fn pace_lateness(secs: f64) {
    metrics::histogram!(MEDIA_PACE_LATENESS).record(secs);
}

/// Describes every metric and creates every series at 0 in the current recorder (global, or the
/// local one in scope). [`install`] calls it; tests call it under `with_local_recorder`.
pub fn register_all(queues: &[QueueInfo]) {
    describe_all();
    edge::register();

    // Per-queue series.
    for q in queues {
        let queue = q.name.clone();
        let _ = metrics::counter!(QUEUE_CALLS_ENTERED, "queue" => queue.clone());
        let _ = metrics::counter!(QUEUE_SHORT_ABANDONS, "queue" => queue.clone());
        let _ = metrics::counter!(QUEUE_IN_TARGET, "queue" => queue.clone());
        metrics::gauge!(QUEUE_SL_TARGET, "queue" => queue.clone()).set(q.sl_target_secs as f64);
        for outcome in OUTCOMES {
            let _ =
                metrics::counter!(QUEUE_CALLS_LEFT, "queue" => queue.clone(), "outcome" => outcome);
            let _ = metrics::histogram!(QUEUE_WAIT, "queue" => queue.clone(), "outcome" => outcome);
        }
        let _ = metrics::histogram!(CALL_HANDLE, "queue" => queue.clone());
        let _ = metrics::gauge!(QUEUE_WAITING, "queue" => queue.clone());
        let _ = metrics::gauge!(QUEUE_LONGEST_WAIT, "queue" => queue.clone());
        for state in AGENT_STATES {
            let _ = metrics::gauge!(QUEUE_AGENTS, "queue" => queue.clone(), "state" => state);
        }
        for score in SURVEY_SCORES {
            let _ = metrics::counter!(SURVEY_ANSWERS, "queue" => queue.clone(), "score" => score);
        }
    }

    for state in AGENT_STATES {
        let _ = metrics::gauge!(AGENTS, "state" => state);
        let _ = metrics::counter!(AGENT_STATE_SECONDS, "state" => state);
    }
    build_info();

    // Series of other modules: registering creates them at 0 without touching any value.
    for name in [
        SIP_REQUESTS,
        SIP_RESPONSES,
        SIP_RETRANSMISSIONS,
        SIP_STRAY_RESPONSES,
        SIP_TCP_REJECTED,
        SIP_TCP_TIMEOUTS,
        SIP_TLS_HANDSHAKE_FAILURES,
        STORE_WRITE_ERRORS,
        MEDIA_PACKETS_RELAYED,
        MEDIA_OWN_FRAMES,
        MEDIA_FRAMES_SKIPPED,
        MEDIA_TIMEOUTS,
        RECORDING_FAILURES,
    ] {
        let _ = metrics::counter!(name);
    }
    for action in PARSE_ERROR_ACTIONS {
        let _ = metrics::counter!(SIP_PARSE_ERRORS, "action" => action);
    }
    for class in ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"] {
        let _ = metrics::counter!(SIP_RESPONSES_SENT, "class" => class);
    }
    for role in ["server", "client"] {
        let _ = metrics::counter!(SIP_TRANSACTIONS, "role" => role);
    }
    for reason in MEDIA_DROP_REASONS {
        let _ = metrics::counter!(MEDIA_PACKETS_DROPPED, "reason" => reason);
    }
    for name in [
        STORE_QUEUE_DEPTH,
        MEDIA_RELAYS_ACTIVE,
        MEDIA_SESSIONS_ACTIVE,
        TRUNK_UP,
        COMPLAINTS_OPEN,
        COMPLAINTS_PAST_REPLY,
        COMPLAINTS_PAST_RESOLVE,
    ] {
        let _ = metrics::gauge!(name);
    }
    let _ = metrics::histogram!(STORE_WRITE);
    let _ = metrics::histogram!(MEDIA_PACE_LATENESS);
}

fn known(set: &[&str], value: &str, what: &str) -> bool {
    let ok = set.contains(&value);
    if !ok {
        tracing::warn!(value, "metrics: unknown {what}; not recorded");
    }
    ok
}

/// Survey scores (`score` label).
pub const SURVEY_SCORES: [&str; 5] = ["1", "2", "3", "4", "5"];

/// A caller rated a call of `queue` with `score` (1–5).
pub fn survey_answered(queue: &str, score: u8) {
    let s = score.to_string();
    if known(&SURVEY_SCORES, &s, "survey score") {
        metrics::counter!(SURVEY_ANSWERS, "queue" => queue.to_string(), "score" => s).increment(1);
    }
}

/// A call entered `queue`.
pub fn call_entered(queue: &str) {
    metrics::counter!(QUEUE_CALLS_ENTERED, "queue" => queue.to_owned()).increment(1);
}

/// A call left `queue` with `outcome` (one of [`OUTCOMES`]) after waiting `wait_secs`;
/// `short_abandon` marks an abandon within the queue's short-abandon threshold (it is still
/// counted as `abandoned` too).
pub fn call_left(queue: &str, outcome: &str, wait_secs: f64, short_abandon: bool) {
    if !known(&OUTCOMES, outcome, "outcome") {
        return;
    }
    let q = queue.to_owned();
    metrics::histogram!(QUEUE_WAIT, "queue" => q.clone(), "outcome" => outcome.to_owned())
        .record(wait_secs.max(0.0));
    metrics::counter!(QUEUE_CALLS_LEFT, "queue" => q.clone(), "outcome" => outcome.to_owned())
        .increment(1);
    if short_abandon {
        metrics::counter!(QUEUE_SHORT_ABANDONS, "queue" => q).increment(1);
    }
}

/// An answered call from `queue` ended after `handle_secs` of handling.
pub fn call_handled(queue: &str, handle_secs: f64) {
    metrics::histogram!(CALL_HANDLE, "queue" => queue.to_owned()).record(handle_secs.max(0.0));
}

/// `waiting` calls wait in `queue` now, the longest for `longest_wait_secs` (0 when none).
pub fn set_waiting(queue: &str, waiting: usize, longest_wait_secs: f64) {
    let q = queue.to_owned();
    metrics::gauge!(QUEUE_WAITING, "queue" => q.clone()).set(waiting as f64);
    metrics::gauge!(QUEUE_LONGEST_WAIT, "queue" => q).set(longest_wait_secs.max(0.0));
}

/// Agents per state: all agents when `queue` is `None` (`ctid_agents{state}`), else the agents of
/// that queue (`ctid_queue_agents{queue,state}`). States of [`AGENT_STATES`] missing from
/// `counts` are set to 0, so a full snapshot is always written.
pub fn set_agents(queue: Option<&str>, counts: &[(&str, usize)]) {
    for (state, _) in counts {
        known(&AGENT_STATES, state, "agent state");
    }
    for state in AGENT_STATES {
        let n: usize = counts
            .iter()
            .filter(|(s, _)| *s == state)
            .map(|(_, n)| n)
            .sum();
        match queue {
            None => metrics::gauge!(AGENTS, "state" => state).set(n as f64),
            Some(q) => metrics::gauge!(QUEUE_AGENTS, "queue" => q.to_owned(), "state" => state)
                .set(n as f64),
        }
    }
}

/// Accumulated time per state in microseconds; the counter gets the whole seconds.
static STATE_MICROS: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];

/// An agent spent `secs` in `state` (one of [`AGENT_STATES`]); call it when the agent leaves the
/// state (and for the time so far on shutdown, if wanted).
///
/// `metrics` counters are integers, so the time is accumulated per state in microseconds here and
/// the counter `ctid_agent_state_seconds_total{state}` advances by whole seconds: nothing is lost,
/// the exported total lags the true one by under a second.
pub fn agent_state_seconds(state: &str, secs: f64) {
    let Some(i) = AGENT_STATES.iter().position(|s| *s == state) else {
        known(&AGENT_STATES, state, "agent state");
        return;
    };
    if !secs.is_finite() || secs <= 0.0 {
        return;
    }
    let micros = (secs * 1e6).round() as u64;
    let before = STATE_MICROS[i].fetch_add(micros, Ordering::Relaxed);
    let whole = (before.saturating_add(micros)) / 1_000_000 - before / 1_000_000;
    if whole > 0 {
        metrics::counter!(AGENT_STATE_SECONDS, "state" => AGENT_STATES[i]).increment(whole);
    }
}

/// Final results of a callback attempt (`result` label of `ctid_callback_attempts_total`).
pub const CALLBACK_RESULTS: [&str; 6] = [
    "answered",
    "busy",
    "no_answer",
    "rejected",
    "failed",
    "skipped",
];

/// Create every series of callback list `list` at 0 (those that exist keep their values).
/// The gauge refresher calls it for every stored list; the API when a list is created.
pub fn register_callback_list(list: &str) {
    for result in CALLBACK_RESULTS {
        let _ = metrics::counter!(CALLBACK_ATTEMPTS, "list" => list.to_owned(), "result" => result);
    }
    let _ = metrics::counter!(CALLBACK_DIALS, "list" => list.to_owned());
    for name in [
        CALLBACK_QUOTA,
        CALLBACK_QUOTA_USED,
        CALLBACK_PENDING,
        CALLBACK_LIST_ACTIVE,
    ] {
        let _ = metrics::gauge!(name, "list" => list.to_owned());
    }
}

/// The dialer: an attempt of `list` ended with `result` (one of [`CALLBACK_RESULTS`]: call it
/// once per attempt with its final result, `answered` when the customer answered; a skip by
/// the contact policy or by the agent in preview is `skipped`).
pub fn outbound_attempt(list: &str, result: &str) {
    if known(&CALLBACK_RESULTS, result, "callback result") {
        metrics::counter!(CALLBACK_ATTEMPTS, "list" => list.to_owned(), "result" => result.to_owned())
            .increment(1);
    }
}

/// The dialer: a customer call of `list` was started (the connect-rate denominator).
pub fn outbound_dial(list: &str) {
    metrics::counter!(CALLBACK_DIALS, "list" => list.to_owned()).increment(1);
}

/// A list's gauges: its daily quota (`None` = no quota, exported as 0), the successful
/// callbacks of its local day, its pending contacts, and whether it is active.
pub fn set_callback_list(list: &str, quota: Option<u32>, used: u64, pending: u64, active: bool) {
    let l = list.to_owned();
    metrics::gauge!(CALLBACK_QUOTA, "list" => l.clone()).set(f64::from(quota.unwrap_or(0)));
    metrics::gauge!(CALLBACK_QUOTA_USED, "list" => l.clone()).set(used as f64);
    metrics::gauge!(CALLBACK_PENDING, "list" => l.clone()).set(pending as f64);
    metrics::gauge!(CALLBACK_LIST_ACTIVE, "list" => l).set(if active { 1.0 } else { 0.0 });
}

/// Open complaints, those past the reply time and those past the resolution time.
pub fn set_complaints(open: u64, past_reply: u64, past_resolve: u64) {
    metrics::gauge!(COMPLAINTS_OPEN).set(open as f64);
    metrics::gauge!(COMPLAINTS_PAST_REPLY).set(past_reply as f64);
    metrics::gauge!(COMPLAINTS_PAST_RESOLVE).set(past_resolve as f64);
}

/// `ctid_build_info{version}` = 1.
/// A call answered within its queue's SL target.
pub fn answered_in_target(queue: &str) {
    metrics::counter!(QUEUE_IN_TARGET, "queue" => queue.to_owned()).increment(1);
}

/// The queue's goals as configured (ratios 0–1), exported so alert rules compare against them.
pub fn set_queue_goals(queue: &str, sl_goal: f64, answer_rate_goal: f64) {
    metrics::gauge!(QUEUE_SL_GOAL, "queue" => queue.to_owned()).set(sl_goal);
    metrics::gauge!(QUEUE_ANSWER_RATE_GOAL, "queue" => queue.to_owned()).set(answer_rate_goal);
}

pub fn build_info() {
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues() -> Vec<QueueInfo> {
        vec![
            QueueInfo {
                name: "hotline".into(),
                sl_target_secs: 25,
            },
            QueueInfo {
                name: "sales".into(),
                sl_target_secs: 20,
            },
        ]
    }

    /// Runs `f` under a fresh local recorder with every series registered; returns the text.
    fn render_with(f: impl FnOnce()) -> String {
        let qs = queues();
        let (recorder, m) = build_recorder(&qs).unwrap();
        metrics::with_local_recorder(&recorder, || {
            register_all(&qs);
            f();
        });
        m.upkeep();
        m.render()
    }

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    fn value(text: &str, series: &str) -> f64 {
        let l = text
            .lines()
            .find(|l| l.rsplit_once(' ').map(|(s, _)| s) == Some(series))
            .unwrap_or_else(|| panic!("no series {series} in:\n{text}"));
        l.rsplit_once(' ').unwrap().1.parse().unwrap()
    }

    #[test]
    fn wait_buckets_add_sl_targets_sorted_and_deduped() {
        let b = wait_buckets(&[
            QueueInfo {
                name: "a".into(),
                sl_target_secs: 25,
            },
            QueueInfo {
                name: "b".into(),
                sl_target_secs: 20,
            },
            QueueInfo {
                name: "c".into(),
                sl_target_secs: 25,
            },
        ]);
        assert_eq!(
            b,
            vec![5., 10., 15., 20., 25., 30., 45., 60., 90., 120., 180., 300., 600.]
        );
    }

    #[test]
    fn every_series_exists_at_zero_with_help() {
        let text = render_with(|| {});
        // Every TYPE line has a HELP line and counters end in _total.
        let mut families = 0;
        for l in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let mut parts = l.split_whitespace().skip(2);
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            families += 1;
            assert!(
                line(&text, &format!("# HELP {name} ")).is_some(),
                "no HELP for {name}"
            );
            assert_ne!(kind, "summary", "{name} renders as a summary");
            assert_eq!(
                kind == "counter",
                name.ends_with("_total"),
                "{name} is a {kind}"
            );
        }
        // 35 before the callback lists; +3 complaint gauges (no list is registered here: the
        // six per-list families appear with the first list, see callback_list_series); +5 of
        // the SIP edge (metrics/edge.rs); +1 TLS handshake failures.
        assert_eq!(families, 45, "{text}");
        for reason in [
            "auth_throttled",
            "untrusted",
            "overload",
            "unacked",
            "tcp_per_source",
        ] {
            let series = format!("ctid_sip_refused_total{{reason=\"{reason}\"}}");
            assert_eq!(value(&text, &series), 0.0, "{series}");
        }
        assert_eq!(
            value(
                &text,
                r#"ctid_sip_auth_failures_total{reason="wrong_password"}"#
            ),
            0.0
        );
        assert_eq!(value(&text, "ctid_complaints_past_reply"), 0.0);
        assert_eq!(
            value(
                &text,
                r#"ctid_survey_answers_total{queue="hotline",score="5"}"#
            ),
            0.0
        );
        assert_eq!(
            value(
                &text,
                r#"ctid_queue_calls_left_total{queue="hotline",outcome="callback_requested"}"#
            ),
            0.0
        );
        assert_eq!(value(&text, "ctid_media_timeouts_total"), 0.0);

        assert_eq!(
            value(&text, r#"ctid_queue_calls_entered_total{queue="hotline"}"#),
            0.0
        );
        assert_eq!(
            value(
                &text,
                r#"ctid_queue_calls_left_total{queue="sales",outcome="rejected"}"#
            ),
            0.0
        );
        assert_eq!(
            value(
                &text,
                r#"ctid_queue_wait_seconds_bucket{queue="hotline",outcome="abandoned",le="15"}"#
            ),
            0.0
        );
        assert_eq!(
            value(
                &text,
                r#"ctid_queue_wait_seconds_count{queue="hotline",outcome="answered"}"#
            ),
            0.0
        );
        assert_eq!(
            value(
                &text,
                r#"ctid_call_handle_seconds_bucket{queue="sales",le="3600"}"#
            ),
            0.0
        );
        assert_eq!(
            value(&text, r#"ctid_queue_agents{queue="sales",state="paused"}"#),
            0.0
        );
        assert_eq!(value(&text, r#"ctid_agents{state="wrapup"}"#), 0.0);
        assert_eq!(
            value(&text, r#"ctid_agent_state_seconds_total{state="on_call"}"#),
            0.0
        );
        assert_eq!(
            value(&text, r#"ctid_sip_parse_errors_total{action="dropped"}"#),
            0.0
        );
        assert_eq!(
            value(
                &text,
                r#"ctid_media_packets_dropped_total{reason="send_failed"}"#
            ),
            0.0
        );
        assert_eq!(
            value(&text, r#"ctid_store_write_seconds_bucket{le="0.0005"}"#),
            0.0
        );
        assert_eq!(value(&text, "ctid_trunk_up"), 0.0);
        assert_eq!(value(&text, "ctid_sip_tcp_timeouts_total"), 0.0);
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            value(&text, &format!(r#"ctid_build_info{{version="{version}"}}"#)),
            1.0
        );
    }

    #[test]
    fn sl_target_is_a_bucket_and_helpers_record() {
        let text = render_with(|| {
            call_entered("hotline");
            call_entered("hotline");
            call_left("hotline", "answered", 24.0, false);
            call_left("hotline", "abandoned", 2.0, true);
            call_left("hotline", "bogus-outcome-not-in-set", 2.0, false);
            call_handled("sales", 100.0);
            set_waiting("sales", 3, 42.5);
            set_agents(None, &[("available", 2), ("on_call", 5)]);
            set_agents(Some("sales"), &[("paused", 1)]);
        });
        let b = |le: &str| {
            value(
                &text,
                &format!(
                    r#"ctid_queue_wait_seconds_bucket{{queue="hotline",outcome="answered",le="{le}"}}"#
                ),
            )
        };
        assert_eq!(b("20"), 0.0);
        assert_eq!(b("25"), 1.0);
        assert_eq!(b("+Inf"), 1.0);
        assert_eq!(
            value(&text, r#"ctid_queue_calls_entered_total{queue="hotline"}"#),
            2.0
        );
        assert_eq!(
            value(
                &text,
                r#"ctid_queue_calls_left_total{queue="hotline",outcome="abandoned"}"#
            ),
            1.0
        );
        assert_eq!(
            value(&text, r#"ctid_queue_short_abandons_total{queue="hotline"}"#),
            1.0
        );
        assert!(!text.contains("bogus"));
        assert_eq!(
            value(
                &text,
                r#"ctid_call_handle_seconds_bucket{queue="sales",le="60"}"#
            ),
            0.0
        );
        assert_eq!(
            value(
                &text,
                r#"ctid_call_handle_seconds_bucket{queue="sales",le="120"}"#
            ),
            1.0
        );
        assert_eq!(
            value(&text, r#"ctid_call_handle_seconds_sum{queue="sales"}"#),
            100.0
        );
        assert_eq!(
            value(&text, r#"ctid_queue_calls_waiting{queue="sales"}"#),
            3.0
        );
        assert_eq!(
            value(&text, r#"ctid_queue_longest_wait_seconds{queue="sales"}"#),
            42.5
        );
        assert_eq!(value(&text, r#"ctid_agents{state="on_call"}"#), 5.0);
        assert_eq!(value(&text, r#"ctid_agents{state="paused"}"#), 0.0);
        assert_eq!(
            value(&text, r#"ctid_queue_agents{queue="sales",state="paused"}"#),
            1.0
        );
        // The sl target of the other queue (20) was already a bucket; 25 was added once.
        assert_eq!(
            text.matches(r#"queue="hotline",outcome="answered",le="25""#)
                .count(),
            1
        );
    }

    #[test]
    fn callback_list_series() {
        let text = render_with(|| {
            register_callback_list("follow-up");
            register_callback_list("survey");
            outbound_attempt("follow-up", "answered");
            outbound_attempt("follow-up", "busy");
            outbound_attempt("follow-up", "busy");
            outbound_attempt("follow-up", "ringing");
            outbound_dial("follow-up");
            outbound_dial("follow-up");
            outbound_dial("follow-up");
            set_callback_list("follow-up", Some(30), 1, 97, true);
            set_callback_list("survey", None, 0, 5, false);
            set_complaints(4, 2, 1);
            // Registering again keeps what was recorded.
            register_callback_list("follow-up");
        });
        let mut families = 0;
        for l in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = l.split_whitespace().nth(2).unwrap();
            assert!(line(&text, &format!("# HELP {name} ")).is_some(), "{name}");
            families += 1;
        }
        assert_eq!(families, 45 + 6, "{text}");
        let v = |s: &str| value(&text, s);
        assert_eq!(
            v(r#"ctid_callback_attempts_total{list="follow-up",result="busy"}"#),
            2.0
        );
        assert_eq!(
            v(r#"ctid_callback_attempts_total{list="follow-up",result="answered"}"#),
            1.0
        );
        assert_eq!(
            v(r#"ctid_callback_attempts_total{list="survey",result="no_answer"}"#),
            0.0
        );
        assert!(!text.contains(r#"result="ringing""#), "not a final result");
        assert_eq!(v(r#"ctid_callback_dials_total{list="follow-up"}"#), 3.0);
        assert_eq!(v(r#"ctid_callback_dials_total{list="survey"}"#), 0.0);
        assert_eq!(v(r#"ctid_callback_quota{list="follow-up"}"#), 30.0);
        assert_eq!(v(r#"ctid_callback_quota_used{list="follow-up"}"#), 1.0);
        assert_eq!(
            v(r#"ctid_callback_contacts_pending{list="follow-up"}"#),
            97.0
        );
        assert_eq!(v(r#"ctid_callback_list_active{list="follow-up"}"#), 1.0);
        assert_eq!(v(r#"ctid_callback_quota{list="survey"}"#), 0.0);
        assert_eq!(v(r#"ctid_callback_list_active{list="survey"}"#), 0.0);
        assert_eq!(v("ctid_complaints_open"), 4.0);
        assert_eq!(v("ctid_complaints_past_reply"), 2.0);
        assert_eq!(v("ctid_complaints_past_resolve"), 1.0);
    }

    #[test]
    fn agent_state_seconds_carries_fractions() {
        // The only test that touches the ("ringing") accumulator, which is process-global.
        let text = render_with(|| {
            agent_state_seconds("ringing", 0.6);
            agent_state_seconds("ringing", 0.6);
            agent_state_seconds("ringing", 2.0);
            agent_state_seconds("ringing", -1.0);
        });
        assert_eq!(
            value(&text, r#"ctid_agent_state_seconds_total{state="ringing"}"#),
            3.0
        );
    }
}
