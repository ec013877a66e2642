//! Ids and the small closed vocabularies of outbound lists, stored as their snake_case names
//! (how: `crate::store`).

use super::OutboundError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A callback list (`outbound_lists.id`).
    ListId
);
id_type!(
    /// A contact of a list (`outbound_contacts.id`); ids grow in import order.
    ContactId
);
id_type!(
    /// One attempt, or one recorded skip (`outbound_attempts.id`).
    AttemptId
);

macro_rules! str_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = OutboundError;
            fn from_str(s: &str) -> Result<Self, OutboundError> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(OutboundError::Invalid(format!(
                        "{:?} is not a {}; expected one of: {}",
                        s,
                        stringify!($name),
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }
    };
}

str_enum!(
    /// What a list is for. `complaint` lists hold complaint follow-ups (reply within 12 h).
    Purpose {
        FollowUp = "follow_up",
        Complaint = "complaint",
        Survey = "survey",
        QueueCallback = "queue_callback",
        Custom = "custom",
    }
);

str_enum!(
    /// How the dialer works a list.
    Mode {
        /// The agent sees the contact first and accepts (ctid dials) or skips.
        Preview = "preview",
        /// When an agent is free ctid calls the agent, then the customer, and bridges.
        Progressive = "progressive",
    }
);

str_enum!(
    /// Whether a list is dialed. `stopped` is final.
    ListState {
        Active = "active",
        Paused = "paused",
        Stopped = "stopped",
    }
);

str_enum!(
    /// Where a contact stands.
    ContactState {
        /// Waiting to be dialed (from `next_attempt_at_ms`, if set).
        Pending = "pending",
        /// Claimed by an attempt that is live or awaits the agent's disposition.
        InProgress = "in_progress",
        /// Dispositioned done (see `done_reason`).
        Done = "done",
        /// Attempts ran out.
        Unreachable = "unreachable",
        /// Never to be dialed: on the do-not-call list or a duplicate (see `done_reason`).
        Skipped = "skipped",
    }
);

str_enum!(
    /// Call progress and the final result of an attempt.
    AttemptResult {
        Ringing = "ringing",
        Answered = "answered",
        Busy = "busy",
        NoAnswer = "no_answer",
        Rejected = "rejected",
        Failed = "failed",
        /// Not dialed: skipped by the policy (reason `duplicate`, `do_not_call`) or by the agent
        /// in preview (reason `agent`).
        Skipped = "skipped",
    }
);

impl AttemptResult {
    /// Results that end an attempt that was never answered.
    pub fn is_final(self) -> bool {
        !matches!(self, AttemptResult::Ringing | AttemptResult::Answered)
    }
}
