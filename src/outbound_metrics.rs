//! The gauges of the callback lists and of complaint follow-ups, refreshed from the store, and
//! the complaint deadlines as configured (`[outbound] complaint_reply_hours` /
//! `complaint_resolve_hours`).
//!
//! Owns: nothing but a periodic task. The figures come from [`crate::outbound::list_counters`]
//! and [`crate::outbound::open_complaints`], read on one of the store's pooled readers (off the
//! executor); the metric names are [`crate::metrics`]'.
//!
//! The app spawns [`refresh_outbound_gauges`] once at start (it refreshes at once, so every
//! list's series exist from the first scrape). The dialer records the counters itself
//! ([`crate::metrics::outbound_attempt`], [`crate::metrics::outbound_dial`]).
//!
//! Must not know: HTTP, SIP, the dialer.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Outbound;
use crate::outbound::{
    list_counters, list_lists, open_complaints, ComplaintStatus, ComplaintSummary, ListState,
    OutboundError, COMPLAINT_REPLY_WITHIN_MS,
};
use crate::store::{Reader, Store};

/// How often the app should refresh the gauges.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(15);

/// Open complaints with their deadlines recomputed from `cfg` (the outbound core fixes 12 h and
/// 48 h): the reply is due `complaint_reply_hours` after the complaint — unless the contact was
/// imported with a due time of its own, which stays — and resolution `complaint_resolve_hours`
/// after it.
pub fn open_complaints_as_configured(
    store: &Reader,
    cfg: &Outbound,
    now_ms: u64,
) -> Result<Vec<ComplaintStatus>, OutboundError> {
    let mut all = open_complaints(store.outbound(), now_ms)?;
    for c in &mut all {
        if c.reply_due_at_ms == c.complained_at_ms.saturating_add(COMPLAINT_REPLY_WITHIN_MS) {
            c.reply_due_at_ms = c.complained_at_ms.saturating_add(cfg.complaint_reply_ms());
        }
        c.resolve_due_at_ms = c
            .complained_at_ms
            .saturating_add(cfg.complaint_resolve_ms());
        c.past_reply = c.replied_at_ms.is_none() && now_ms >= c.reply_due_at_ms;
        c.past_resolve = now_ms >= c.resolve_due_at_ms;
    }
    all.sort_by_key(|c| (c.reply_due_at_ms, c.contact));
    Ok(all)
}

/// The counts of [`open_complaints_as_configured`].
pub fn summarize(complaints: &[ComplaintStatus]) -> ComplaintSummary {
    let mut s = ComplaintSummary::default();
    for c in complaints {
        s.open += 1;
        s.past_reply += u64::from(c.past_reply);
        s.past_resolve += u64::from(c.past_resolve);
    }
    s
}

/// Set every list's gauges and the complaint gauges from the store at `now_ms`; returns the
/// number of lists. Blocking.
pub fn refresh_once(store: &Reader, cfg: &Outbound, now_ms: u64) -> Result<usize, OutboundError> {
    let conn = store.outbound();
    let lists = list_lists(conn)?;
    for l in &lists {
        crate::metrics::register_callback_list(&l.spec.name);
        let c = list_counters(conn, l.id, now_ms)?;
        crate::metrics::set_callback_list(
            &l.spec.name,
            c.quota_per_day,
            c.quota_used_today,
            c.contacts.pending,
            c.state == ListState::Active,
        );
    }
    let s = summarize(&open_complaints_as_configured(store, cfg, now_ms)?);
    crate::metrics::set_complaints(s.open, s.past_reply, s.past_resolve);
    Ok(lists.len())
}

/// Refresh the callback-list and complaint gauges every `interval` (first at once) until
/// `shutdown` is cancelled. Each refresh runs on a pooled reader of `store`, off the executor;
/// a failed one is logged and the next tick tries again.
///
/// The app spawns it: `tasks.spawn(refresh_outbound_gauges(store.clone(),
/// cfg.outbound.clone(), REFRESH_INTERVAL, shutdown.clone()))`.
pub async fn refresh_outbound_gauges(
    store: Store,
    cfg: Outbound,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let c = cfg.clone();
        let done = store.read(move |r| refresh_once(r, &c, unix_ms())).await;
        if let Err(e) = done {
            tracing::warn!(error = %e, "callback list gauges not refreshed");
        }
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::{complaint_follow_up, create_list, import_contacts_csv, ImportOptions};

    const HOUR: u64 = 3_600_000;

    fn render(f: impl FnOnce()) -> String {
        let (recorder, m) = crate::metrics::build_recorder(&[]).unwrap();
        metrics::with_local_recorder(&recorder, || {
            crate::metrics::register_all(&[]);
            f();
        });
        m.render()
    }

    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| {
                let (s, v) = l.rsplit_once(' ')?;
                (s == series).then(|| v.parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }

    #[test]
    fn gauges_come_from_the_store_and_deadlines_from_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open(dir.path()).unwrap();
        let mut cfg = Outbound::default();
        let t = 1_700_000_000_000u64;
        let spec: crate::outbound::ListSpec = serde_json::from_value(serde_json::json!({
            "name": "follow-up", "purpose": "follow_up", "agents": ["1001"], "mode": "preview",
            "time_zone": "UTC", "quota_per_day": 30,
            "windows": [{"days": ["mon-sun"], "start": "00:00", "end": "24:00"}]
        }))
        .unwrap();
        let list = create_list(&conn, &spec, t).unwrap();
        let csv = "customer_id,phone\nc1,+442079460001\nc2,+442079460002\n";
        let opts = ImportOptions::new(cfg.country_code());
        import_contacts_csv(&conn, list.id, csv.as_bytes(), &opts, t).unwrap();
        let settings = cfg.complaint_settings("UTC", Some("support"));
        complaint_follow_up(&conn, &settings, 7, "020 7946 0958", None, t).unwrap();

        // 5 h later with a 4 h reply time: past reply, not past resolve.
        cfg.complaint_reply_hours = 4;
        cfg.complaint_resolve_hours = 24;
        let store = crate::store::test_support::reader(conn);
        let all = open_complaints_as_configured(&store, &cfg, t + 5 * HOUR).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].reply_due_at_ms, t + 4 * HOUR);
        assert_eq!(all[0].resolve_due_at_ms, t + 24 * HOUR);
        assert!(all[0].past_reply && !all[0].past_resolve);

        let text = render(|| {
            assert_eq!(refresh_once(&store, &cfg, t + 25 * HOUR).unwrap(), 2);
        });
        let v = |s: &str| value(&text, s);
        assert_eq!(
            v(r#"ctid_callback_contacts_pending{list="follow-up"}"#),
            2.0
        );
        assert_eq!(v(r#"ctid_callback_quota{list="follow-up"}"#), 30.0);
        assert_eq!(v(r#"ctid_callback_quota_used{list="follow-up"}"#), 0.0);
        assert_eq!(v(r#"ctid_callback_list_active{list="follow-up"}"#), 1.0);
        assert_eq!(
            v(r#"ctid_callback_contacts_pending{list="complaints"}"#),
            1.0
        );
        assert_eq!(
            v(r#"ctid_callback_attempts_total{list="complaints",result="answered"}"#),
            0.0
        );
        assert_eq!(v("ctid_complaints_open"), 1.0);
        assert_eq!(v("ctid_complaints_past_reply"), 1.0);
        assert_eq!(v("ctid_complaints_past_resolve"), 1.0);
    }
}
