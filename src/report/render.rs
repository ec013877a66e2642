//! Renderings of a [`Report`]: JSON, an aligned table, Markdown tables, CSV. The CLI prints
//! them and the API serves them, byte for byte the same.

use anyhow::Result;
use serde::Serialize;

use super::agent::AgentReport;
use super::lists::ListReport;
use super::queue::{Figures, QueueReport};
use super::{Parts, Period, PeriodKind, Report, ReportFormat};
use crate::table::{dur_secs, pct, Align, Table};

mod lists;
use lists::list_tables;
pub use lists::lists_csv;

/// The report in `format`, showing the parts it was built with.
pub fn render(r: &Report, format: ReportFormat) -> Result<String> {
    Ok(match format {
        ReportFormat::Json => json(r)?,
        ReportFormat::Table => table(r, false),
        ReportFormat::Md => table(r, true),
        ReportFormat::Csv if r.parts == Parts::Agents => agents_csv(r),
        ReportFormat::Csv if r.parts == Parts::Lists => lists_csv(r),
        ReportFormat::Csv => csv(r),
    })
}

#[derive(Serialize)]
struct QueuesView<'a> {
    period: &'a Period,
    interval_minutes: u32,
    queues: &'a [QueueReport],
}

#[derive(Serialize)]
struct ListsView<'a> {
    period: &'a Period,
    lists: &'a [ListReport],
}

#[derive(Serialize)]
struct AgentsView<'a> {
    period: &'a Period,
    agents: &'a [AgentReport],
}

/// Pretty JSON and a newline: the whole report, or the period with the queues
/// (`{period, interval_minutes, queues}`), with the agents (`{period, agents}`) or with the
/// callback lists (`{period, lists}`).
pub fn json(r: &Report) -> Result<String> {
    let text = match r.parts {
        Parts::All => serde_json::to_string_pretty(r)?,
        Parts::Queues => serde_json::to_string_pretty(&QueuesView {
            period: &r.period,
            interval_minutes: r.interval_minutes,
            queues: &r.queues,
        })?,
        Parts::Agents => serde_json::to_string_pretty(&AgentsView {
            period: &r.period,
            agents: &r.agents,
        })?,
        Parts::Lists => serde_json::to_string_pretty(&ListsView {
            period: &r.period,
            lists: &r.lists,
        })?,
    };
    Ok(text + "\n")
}

fn mark(v: Option<f64>, met: Option<bool>) -> String {
    let p = pct(v);
    match (p.as_str(), met) {
        ("-", _) | (_, None) => p,
        (_, Some(true)) => format!("{p} met"),
        (_, Some(false)) => format!("{p} MISSED"),
    }
}

const FIG_COLS: &[(&str, Align)] = &[
    ("OFFERED", Align::Right),
    ("ANSWERED", Align::Right),
    ("ABANDONED", Align::Right),
    ("SHORT", Align::Right),
    ("TIMEOUT", Align::Right),
    ("OVERFLOW", Align::Right),
    ("REJECTED", Align::Right),
    ("CALLBACK", Align::Right),
    ("CB REQUESTS", Align::Right),
    ("ANSWER RATE", Align::Right),
    ("SL OFFERED", Align::Right),
    ("SL ANSWERED", Align::Right),
    ("ASA", Align::Right),
    ("MAX WAIT", Align::Right),
    ("AHT", Align::Right),
];

fn fig_cells(f: &Figures) -> Vec<String> {
    vec![
        f.offered.to_string(),
        f.answered.to_string(),
        f.abandoned.to_string(),
        f.short_abandons.to_string(),
        f.timeouts.to_string(),
        f.overflows.to_string(),
        f.rejected.to_string(),
        f.callback_requested.to_string(),
        f.callback_requests.to_string(),
        mark(f.answer_rate, f.answer_rate_met),
        mark(f.sl_offered, f.sl_offered_met),
        mark(f.sl_answered, f.sl_answered_met),
        dur_secs(f.asa_secs),
        dur_secs(f.longest_wait_secs),
        dur_secs(f.aht_secs),
    ]
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

/// Either an aligned text table or a Markdown table.
fn emit(out: &mut String, headers: &[(&str, Align)], rows: Vec<Vec<String>>, md: bool) {
    if md {
        out.push_str("| ");
        out.push_str(&headers.iter().map(|h| h.0).collect::<Vec<_>>().join(" | "));
        out.push_str(" |\n|");
        for (_, a) in headers {
            out.push_str(if matches!(a, Align::Right) {
                " ---: |"
            } else {
                " --- |"
            });
        }
        out.push('\n');
        for r in rows {
            out.push_str("| ");
            out.push_str(
                &r.iter()
                    .map(|c| md_escape(c))
                    .collect::<Vec<_>>()
                    .join(" | "),
            );
            out.push_str(" |\n");
        }
    } else {
        let mut t = Table::new(headers);
        for r in rows {
            t.push(r.into_iter().map(Into::into).collect());
        }
        out.push_str(&t.render(false));
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
}

fn heading(out: &mut String, md: bool, level: usize, s: &str) {
    if md {
        out.push_str(&format!("{} {s}\n\n", "#".repeat(level)));
    } else {
        out.push_str(&format!("{s}\n"));
    }
}

/// The report as text tables (`md` = Markdown): the queues' totals and intervals, then the
/// agents (the parts the report was built with).
pub fn table(r: &Report, md: bool) -> String {
    let mut out = String::new();
    heading(
        &mut out,
        md,
        1,
        &format!(
            "Report: {} {}..{} ({}, {} to {})",
            r.period.kind.as_str(),
            r.period.first_day,
            r.period.last_day,
            r.period.time_zone,
            r.period.start,
            r.period.end
        ),
    );
    if r.parts.queues() {
        queue_tables(&mut out, r, md);
    }
    if r.parts.agents() {
        agent_table(&mut out, r, md);
    }
    if r.parts.lists() {
        if r.parts.agents() {
            out.push('\n');
        }
        list_tables(&mut out, r, md);
    }
    out
}

fn queue_tables(out: &mut String, r: &Report, md: bool) {
    // Queues: the totals.
    heading(out, md, 2, "Queues");
    let mut cols = vec![("QUEUE", Align::Left), ("GOALS", Align::Left)];
    cols.extend_from_slice(FIG_COLS);
    let rows = r
        .queues
        .iter()
        .map(|q| {
            let goals = q.goals.map_or("-".to_string(), |g| {
                format!(
                    "SL {:.0}%/{}s, AR {:.0}%",
                    g.sl_goal * 100.0,
                    g.sl_target_secs,
                    g.answer_rate_goal * 100.0
                )
            });
            let mut row = vec![q.queue.clone(), goals];
            row.extend(fig_cells(&q.totals));
            row
        })
        .collect();
    emit(out, &cols, rows, md);
    out.push('\n');
    // Intervals: every interval with calls for a day; only the missed ones for longer periods.
    let only_missed = r.period.kind != PeriodKind::Day;
    heading(
        out,
        md,
        2,
        &format!(
            "Intervals ({} min{})",
            r.interval_minutes,
            if only_missed {
                ", targets missed only"
            } else {
                ""
            }
        ),
    );
    let mut cols = vec![("QUEUE", Align::Left), ("INTERVAL", Align::Left)];
    cols.extend_from_slice(FIG_COLS);
    cols.push(("TARGETS", Align::Left));
    let mut rows = Vec::new();
    for q in &r.queues {
        for i in &q.intervals {
            if only_missed && !i.figures.missed {
                continue;
            }
            let mut row = vec![q.queue.clone(), i.start.clone()];
            row.extend(fig_cells(&i.figures));
            row.push(if i.figures.missed { "MISSED" } else { "ok" }.to_string());
            rows.push(row);
        }
    }
    emit(out, &cols, rows, md);
    if r.parts.agents() {
        out.push('\n');
    }
}

fn agent_table(out: &mut String, r: &Report, md: bool) {
    heading(out, md, 2, "Agents");
    let cols = [
        ("AGENT", Align::Left),
        ("ANSWERED", Align::Right),
        ("AHT", Align::Right),
        ("TALK", Align::Right),
        ("LOGGED IN", Align::Right),
        ("PAUSED", Align::Right),
        ("PAUSE BY REASON", Align::Left),
        ("OCCUPANCY", Align::Right),
        ("SURVEYS", Align::Right),
        ("SURVEY 1/2/3/4/5", Align::Right),
        ("SURVEY AVG", Align::Right),
        ("OUT ATTEMPTS", Align::Right),
        ("OUT CONNECTS", Align::Right),
        ("OUT QUOTA", Align::Right),
        ("QUOTA USE", Align::Right),
    ];
    let rows = r
        .agents
        .iter()
        .map(|a| {
            let reasons = a
                .pause_by_reason
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        if k.is_empty() { "-" } else { k },
                        dur_secs(Some(*v))
                    )
                })
                .collect::<Vec<_>>()
                .join(" ");
            vec![
                a.agent.clone(),
                a.answered.to_string(),
                dur_secs(a.aht_secs),
                dur_secs(Some(a.talk_secs)),
                dur_secs(Some(a.logged_in_secs)),
                dur_secs(Some(a.paused_secs)),
                if reasons.is_empty() {
                    "-".into()
                } else {
                    reasons
                },
                pct(a.occupancy),
                a.survey_responses.to_string(),
                a.survey_by_level
                    .values()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join("/"),
                a.survey_avg.map_or("-".into(), |v| format!("{v:.2}")),
                a.outbound_attempts.to_string(),
                a.outbound_connects.to_string(),
                a.outbound_quota.map_or("-".into(), |q| q.to_string()),
                pct(a.outbound_quota_use),
            ]
        })
        .collect();
    emit(out, &cols, rows, md);
}

fn opt(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v:.4}"))
}

fn optb(v: Option<bool>) -> String {
    v.map_or(String::new(), |v| v.to_string())
}

/// CSV: one row per queue total (`interval` empty) and per queue interval; agents are in the
/// JSON and table formats.
pub fn csv(r: &Report) -> String {
    let mut out = String::from(
        "queue,interval_start,offered,answered,abandoned,short_abandons,timeouts,overflows,rejected,\
callback_requested,callback_requests,answered_in_target,answer_rate,answer_rate_met,sl_offered,sl_offered_met,sl_answered,\
sl_answered_met,asa_secs,longest_wait_secs,aht_secs\r\n",
    );
    let mut row = |q: &str, start: &str, f: &Figures| {
        let mut line = String::new();
        super::export::csv_field(q, &mut line);
        line.push(',');
        line.push_str(start);
        let cells = [
            f.offered.to_string(),
            f.answered.to_string(),
            f.abandoned.to_string(),
            f.short_abandons.to_string(),
            f.timeouts.to_string(),
            f.overflows.to_string(),
            f.rejected.to_string(),
            f.callback_requested.to_string(),
            f.callback_requests.to_string(),
            f.answered_in_target.to_string(),
            opt(f.answer_rate),
            optb(f.answer_rate_met),
            opt(f.sl_offered),
            optb(f.sl_offered_met),
            opt(f.sl_answered),
            optb(f.sl_answered_met),
            opt(f.asa_secs),
            opt(f.longest_wait_secs),
            opt(f.aht_secs),
        ];
        for c in cells {
            line.push(',');
            line.push_str(&c);
        }
        line.push_str("\r\n");
        out.push_str(&line);
    };
    for q in &r.queues {
        row(&q.queue, "", &q.totals);
        for i in &q.intervals {
            row(&q.queue, &i.start, &i.figures);
        }
    }
    out
}

/// CSV of the agents: one row per agent. `pause_by_reason` is `reason=seconds` pairs joined by
/// `;` (`-` for a pause without a reason).
pub fn agents_csv(r: &Report) -> String {
    let mut out = String::from(
        "agent,answered,aht_secs,talk_secs,logged_in_secs,paused_secs,pause_by_reason,occupancy,\
survey_responses,survey_1,survey_2,survey_3,survey_4,survey_5,survey_avg,outbound_attempts,\
outbound_connects,outbound_quota,outbound_quota_use\r\n",
    );
    for a in &r.agents {
        let reasons = a
            .pause_by_reason
            .iter()
            .map(|(k, v)| format!("{}={v:.3}", if k.is_empty() { "-" } else { k }))
            .collect::<Vec<_>>()
            .join(";");
        super::export::csv_field(&a.agent, &mut out);
        for c in [
            a.answered.to_string(),
            opt(a.aht_secs),
            format!("{:.3}", a.talk_secs),
            format!("{:.3}", a.logged_in_secs),
            format!("{:.3}", a.paused_secs),
        ] {
            out.push(',');
            out.push_str(&c);
        }
        out.push(',');
        super::export::csv_field(&reasons, &mut out);
        out.push(',');
        out.push_str(&opt(a.occupancy));
        let mut cells = vec![a.survey_responses.to_string()];
        cells.extend(a.survey_by_level.values().map(|n| n.to_string()));
        cells.extend([
            opt(a.survey_avg),
            a.outbound_attempts.to_string(),
            a.outbound_connects.to_string(),
            a.outbound_quota.map_or(String::new(), |q| q.to_string()),
            opt(a.outbound_quota_use),
        ]);
        for c in cells {
            out.push(',');
            out.push_str(&c);
        }
        out.push_str("\r\n");
    }
    out
}
