//! The HELP text of every metric ctid exports (the catalogue's descriptions), given to the
//! recorder once at start by [`super::register_all`]. The names are the constants of
//! `metrics.rs` (and `metrics/edge.rs` for the SIP edge).

use super::*;
use metrics::{describe_counter, describe_gauge, describe_histogram};

pub(super) fn describe_all() {
    // Queues and calls.
    describe_counter!(
        QUEUE_IN_TARGET,
        "Calls answered within their queue's service-level target (ctid_queue_sl_target_seconds)."
    );
    describe_gauge!(
        QUEUE_SL_TARGET,
        "The queue's service-level target: answered within this many seconds."
    );
    describe_gauge!(
        QUEUE_SL_GOAL,
        "Share of calls the queue aims to answer within its target (e.g. 0.9)."
    );
    describe_gauge!(
        QUEUE_ANSWER_RATE_GOAL,
        "Share of offered calls the queue aims to answer (e.g. 0.9)."
    );
    describe_counter!(QUEUE_CALLS_ENTERED, "Calls that entered a queue.");
    describe_counter!(
        QUEUE_CALLS_LEFT,
        "Calls that left a queue, by outcome (answered, abandoned, timeout, overflow, rejected)."
    );
    describe_counter!(
        QUEUE_SHORT_ABANDONS,
        "Abandoned calls that hung up within the queue's short-abandon threshold (also counted in ctid_queue_calls_left_total{outcome=\"abandoned\"})."
    );
    describe_histogram!(
        QUEUE_WAIT,
        "Time calls waited in a queue before leaving it, by outcome; the queue's SL target is a bucket boundary."
    );
    describe_histogram!(
        CALL_HANDLE,
        "Handle time of answered queue calls, in seconds."
    );
    describe_gauge!(QUEUE_WAITING, "Calls currently waiting in a queue.");
    describe_gauge!(
        QUEUE_LONGEST_WAIT,
        "Wait so far of the longest-waiting call in a queue, in seconds (0 when none waits)."
    );
    // Agents.
    describe_gauge!(AGENTS, "Agents currently in each state.");
    describe_gauge!(
        QUEUE_AGENTS,
        "Agents serving a queue, by their current state."
    );
    describe_counter!(
        AGENT_STATE_SECONDS,
        "Total time agents have spent in each state, in whole seconds (sub-second remainders are carried over)."
    );
    describe_gauge!(BUILD_INFO, "Build information; always 1.");
    // SIP.
    describe_counter!(SIP_REQUESTS, "SIP requests received.");
    describe_counter!(SIP_RESPONSES, "SIP responses received.");
    describe_counter!(
        SIP_PARSE_ERRORS,
        "Unparsable SIP messages, by action (answered with 400, or dropped)."
    );
    describe_counter!(
        SIP_RETRANSMISSIONS,
        "SIP retransmissions absorbed by the transaction layer."
    );
    describe_counter!(
        SIP_STRAY_RESPONSES,
        "SIP responses that matched no client transaction."
    );
    describe_counter!(
        SIP_TCP_REJECTED,
        "SIP TCP connections rejected (connection limit or address not allowed)."
    );
    describe_counter!(SIP_TCP_TIMEOUTS, "SIP TCP connections closed for idleness.");
    describe_counter!(
        SIP_TLS_HANDSHAKE_FAILURES,
        "SIP over TLS connections whose handshake failed or timed out (accepted or dialled)."
    );
    describe_counter!(
        SIP_RESPONSES_SENT,
        "SIP responses ctid sent, by class (1xx…6xx)."
    );
    describe_counter!(
        SIP_TRANSACTIONS,
        "SIP transactions started, by role (server: requests received; client: requests ctid sent)."
    );
    // Store.
    describe_counter!(STORE_WRITE_ERRORS, "Call-record store writes that failed.");
    describe_gauge!(
        STORE_QUEUE_DEPTH,
        "Call-record writes queued for the store writer."
    );
    describe_histogram!(
        STORE_WRITE,
        "Duration of call-record store write batches, in seconds."
    );
    // Media.
    describe_gauge!(MEDIA_RELAYS_ACTIVE, "RTP relays currently running.");
    describe_counter!(MEDIA_PACKETS_RELAYED, "RTP/RTCP packets relayed.");
    describe_counter!(
        MEDIA_PACKETS_DROPPED,
        "RTP/RTCP packets dropped by the relay, by reason."
    );
    describe_gauge!(
        MEDIA_SESSIONS_ACTIVE,
        "Calls with a media session (ctid's audio, bridge, recording)."
    );
    describe_histogram!(
        MEDIA_PACE_LATENESS,
        "How late ctid woke to send a frame of its own audio, in seconds (timing error at the source)."
    );
    describe_counter!(
        MEDIA_OWN_FRAMES,
        "RTP frames of ctid's own audio (prompts, hold music) sent."
    );
    describe_counter!(
        MEDIA_FRAMES_SKIPPED,
        "Own-audio frames skipped because ctid fell more than 100 ms behind (timing errors)."
    );
    describe_counter!(
        MEDIA_TIMEOUTS,
        "Call legs that sent no RTP within the media timeout."
    );
    describe_counter!(
        RECORDING_FAILURES,
        "Recordings that could not be started or were cut short (disk full, unwritable directory)."
    );
    describe_counter!(
        SURVEY_ANSWERS,
        "Satisfaction survey answers by queue and score (1 very satisfied … 5 very dissatisfied)."
    );
    // Trunk.
    describe_gauge!(TRUNK_UP, "1 while the SIP trunk is reachable, 0 otherwise.");
    // Callback lists and complaints.
    describe_counter!(
        CALLBACK_ATTEMPTS,
        "Callback attempts of a list by final result (answered, busy, no_answer, rejected, failed, skipped by the contact policy or the agent)."
    );
    describe_counter!(
        CALLBACK_DIALS,
        "Customer calls the dialer started for a list (connect rate = attempts answered / dials)."
    );
    describe_gauge!(
        CALLBACK_QUOTA,
        "A list's daily quota of successful callbacks (0 = no quota)."
    );
    describe_gauge!(
        CALLBACK_QUOTA_USED,
        "Successful callbacks of a list in its local day so far."
    );
    describe_gauge!(
        CALLBACK_PENDING,
        "Contacts of a list waiting to be dialed (due now or scheduled for a retry)."
    );
    describe_gauge!(
        CALLBACK_LIST_ACTIVE,
        "1 while a list is active, 0 when paused or stopped."
    );
    describe_gauge!(
        COMPLAINTS_OPEN,
        "Open complaints: complaint follow-ups not yet dispositioned done."
    );
    describe_gauge!(
        COMPLAINTS_PAST_REPLY,
        "Open complaints with no answered follow-up call within the reply time ([outbound] complaint_reply_hours)."
    );
    describe_gauge!(
        COMPLAINTS_PAST_RESOLVE,
        "Open complaints past the resolution time ([outbound] complaint_resolve_hours)."
    );
}
