//! Renderings of the callback-list part of a [`Report`]: the aligned or Markdown tables (totals,
//! days, complaint follow-ups) and the lists' CSV.

use super::{emit, heading, opt};
use crate::report::lists::ListFigures;
use crate::report::Report;
use crate::table::{pct, Align};

const LIST_FIG_COLS: &[(&str, Align)] = &[
    ("ADDED", Align::Right),
    ("ATTEMPTS", Align::Right),
    ("CONNECTS", Align::Right),
    ("COMPLETED", Align::Right),
    ("SKIP DUP", Align::Right),
    ("SKIP DNC", Align::Right),
    ("SKIP AGENT", Align::Right),
    ("RETRIES", Align::Right),
    ("UNREACHABLE", Align::Right),
];

fn list_fig_cells(f: &ListFigures) -> Vec<String> {
    [
        f.contacts_added,
        f.attempts,
        f.connects,
        f.completed,
        f.skipped_duplicate,
        f.skipped_do_not_call,
        f.skipped_agent,
        f.retries_scheduled,
        f.unreachable,
    ]
    .iter()
    .map(u64::to_string)
    .collect()
}

fn opt_u<T: ToString>(v: Option<T>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

/// The callback lists: totals, the days, the complaint follow-ups.
pub(super) fn list_tables(out: &mut String, r: &Report, md: bool) {
    heading(out, md, 2, "Callback lists");
    let mut cols = vec![
        ("LIST", Align::Left),
        ("PURPOSE", Align::Left),
        ("CONTACTS", Align::Right),
        ("PENDING", Align::Right),
        ("IN PROGRESS", Align::Right),
        ("DONE", Align::Right),
        ("UNREACH", Align::Right),
        ("SKIPPED", Align::Right),
    ];
    cols.extend_from_slice(LIST_FIG_COLS);
    cols.extend([
        ("QUOTA/DAY", Align::Right),
        ("QUOTA USE", Align::Right),
        ("DAYS AT QUOTA", Align::Right),
    ]);
    let rows = r
        .lists
        .iter()
        .map(|l| {
            let c = &l.contacts;
            let mut row = vec![l.list.clone(), l.purpose.clone()];
            row.extend(
                [
                    c.total,
                    c.pending,
                    c.in_progress,
                    c.done,
                    c.unreachable,
                    c.skipped,
                ]
                .iter()
                .map(u64::to_string),
            );
            row.extend(list_fig_cells(&l.totals));
            row.push(opt_u(l.quota_per_day));
            row.push(match l.quota_capacity {
                Some(cap) => format!("{}/{cap} {}", l.totals.connects, pct(l.quota_use)),
                None => "-".into(),
            });
            row.push(match l.days_quota_reached {
                Some(n) => format!("{n}/{}", l.trading_days),
                None => "-".into(),
            });
            row
        })
        .collect();
    emit(out, &cols, rows, md);
    out.push('\n');

    heading(out, md, 2, "Callback list days");
    let mut cols = vec![
        ("LIST", Align::Left),
        ("DAY", Align::Left),
        ("TRADING", Align::Left),
    ];
    cols.extend_from_slice(LIST_FIG_COLS);
    cols.push(("QUOTA", Align::Left));
    let mut rows = Vec::new();
    for l in &r.lists {
        for d in &l.days {
            let mut row = vec![
                l.list.clone(),
                d.date.clone(),
                if d.trading_day { "yes" } else { "no" }.to_string(),
            ];
            row.extend(list_fig_cells(&d.figures));
            row.push(match (d.quota, d.quota_reached) {
                (Some(q), Some(true)) => format!("{}/{q} reached", d.figures.connects),
                (Some(q), Some(false)) => format!("{}/{q}", d.figures.connects),
                _ => "-".into(),
            });
            rows.push(row);
        }
    }
    emit(out, &cols, rows, md);

    if r.lists.iter().any(|l| l.complaints.is_some()) {
        out.push('\n');
        heading(out, md, 2, "Complaint follow-ups");
        let cols = [
            ("LIST", Align::Left),
            ("COMPLAINTS", Align::Right),
            ("REPLIED <=12H", Align::Right),
            ("REPLIED %", Align::Right),
            ("RESOLVED <=48H", Align::Right),
            ("RESOLVED %", Align::Right),
            ("AWAITING REPLY", Align::Right),
            ("AWAITING RESOLUTION", Align::Right),
        ];
        let rows = r
            .lists
            .iter()
            .filter_map(|l| {
                let c = l.complaints.as_ref()?;
                Some(vec![
                    l.list.clone(),
                    c.complaints.to_string(),
                    c.replied_in_12h.to_string(),
                    pct(c.replied_in_12h_rate),
                    c.resolved_in_48h.to_string(),
                    pct(c.resolved_in_48h_rate),
                    c.awaiting_reply.to_string(),
                    c.awaiting_resolution.to_string(),
                ])
            })
            .collect();
        emit(out, &cols, rows, md);
    }

    if r.lists.iter().any(|l| l.queue_callbacks.is_some()) {
        out.push('\n');
        heading(out, md, 2, "Queue callbacks");
        let cols = [
            ("LIST", Align::Left),
            ("REQUESTS", Align::Right),
            ("CALLED BACK", Align::Right),
            ("CALLED BACK %", Align::Right),
            ("FAILED", Align::Right),
            ("OPEN", Align::Right),
            ("AVG TO CALLBACK", Align::Right),
            ("MAX TO CALLBACK", Align::Right),
        ];
        let secs = |v: Option<f64>| v.map_or("-".to_string(), |s| format!("{s:.0}s"));
        let rows = r
            .lists
            .iter()
            .filter_map(|l| {
                let q = l.queue_callbacks.as_ref()?;
                Some(vec![
                    l.list.clone(),
                    q.requests.to_string(),
                    q.called_back.to_string(),
                    pct(q.called_back_rate),
                    q.failed.to_string(),
                    q.open.to_string(),
                    secs(q.avg_callback_secs),
                    secs(q.max_callback_secs),
                ])
            })
            .collect();
        emit(out, &cols, rows, md);
    }
}

/// CSV of the callback lists: one row per list total (`day` empty), then one per local day of
/// the period. Contact states, quota capacity and complaint figures are on the total rows only.
pub fn lists_csv(r: &Report) -> String {
    let mut out = String::from(
        "list,day,purpose,contacts,contacts_pending,contacts_in_progress,contacts_done,\
contacts_unreachable,contacts_skipped,contacts_added,attempts,connects,completed,\
skipped_duplicate,skipped_do_not_call,skipped_agent,retries_scheduled,unreachable,\
quota_per_day,trading_days,quota_capacity,quota_use,quota_reached,complaints,replied_in_12h,\
replied_in_12h_rate,resolved_in_48h,resolved_in_48h_rate,awaiting_reply,awaiting_resolution\r\n",
    );
    let num = |v: Option<u64>| v.map_or(String::new(), |v| v.to_string());
    let figs = |f: &ListFigures| {
        [
            f.contacts_added,
            f.attempts,
            f.connects,
            f.completed,
            f.skipped_duplicate,
            f.skipped_do_not_call,
            f.skipped_agent,
            f.retries_scheduled,
            f.unreachable,
        ]
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
    };
    for l in &r.lists {
        let mut line = String::new();
        crate::report::export::csv_field(&l.list, &mut line);
        line.push(',');
        let c = &l.contacts;
        let mut cells = vec![l.purpose.clone()];
        cells.extend(
            [
                c.total,
                c.pending,
                c.in_progress,
                c.done,
                c.unreachable,
                c.skipped,
            ]
            .iter()
            .map(u64::to_string),
        );
        cells.extend(figs(&l.totals));
        cells.extend([
            num(l.quota_per_day.map(u64::from)),
            l.trading_days.to_string(),
            num(l.quota_capacity),
            opt(l.quota_use),
            num(l.days_quota_reached),
        ]);
        match &l.complaints {
            Some(k) => cells.extend([
                k.complaints.to_string(),
                k.replied_in_12h.to_string(),
                opt(k.replied_in_12h_rate),
                k.resolved_in_48h.to_string(),
                opt(k.resolved_in_48h_rate),
                k.awaiting_reply.to_string(),
                k.awaiting_resolution.to_string(),
            ]),
            None => cells.extend(std::iter::repeat_n(String::new(), 7)),
        }
        for c in cells {
            line.push(',');
            crate::report::export::csv_field(&c, &mut line);
        }
        line.push_str("\r\n");
        for d in &l.days {
            crate::report::export::csv_field(&l.list, &mut line);
            line.push(',');
            line.push_str(&d.date);
            line.push(',');
            crate::report::export::csv_field(&l.purpose, &mut line);
            line.push_str(&",".repeat(6));
            for c in figs(&d.figures) {
                line.push(',');
                line.push_str(&c);
            }
            line.push(',');
            line.push_str(&num(d.quota.map(u64::from)));
            line.push(',');
            line.push_str(if d.trading_day { "1" } else { "0" });
            line.push_str(",,,");
            line.push_str(d.quota_reached.map_or("", |r| if r { "1" } else { "0" }));
            line.push_str(&",".repeat(7));
            line.push_str("\r\n");
        }
        out.push_str(&line);
    }
    out
}
