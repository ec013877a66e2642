//! Contact import (CSV with a header row, or JSON objects) and the do-not-call list.
//!
//! CSV columns (header names are matched ignoring case, spaces and `-`):
//! - `phone` (required), and `phone2`, `phone_3`, … in column order; a cell may hold several
//!   numbers separated by `;`. Numbers are normalised to E.164 ([`super::e164`]).
//! - `customer_id` (optional; the duplicate rule and the in-list duplicate check use it, or the
//!   first number when it is blank), `name` (optional).
//! - `due_at` (optional): when the customer should have been called by — contacts are dialed
//!   earliest-due first. `not_before` (optional): not dialed before this time. Both accept
//!   RFC 3339 (`2024-05-03T14:00:00+01:00`), a local time in the list's zone
//!   (`2024-05-03 14:00`) or a date (`2024-05-03`: due by the end of that day / not before its
//!   start).
//! - every other column is a free field shown to the agent (blank cells left out).
//!
//! Bad rows are reported as `row N: reason`, N being the row a spreadsheet shows (the header is
//! row 1; a cell with line breaks is still one row; blank lines count). Good rows are imported,
//! unless `all_or_nothing` is set and any row is bad. A row whose customer is already pending in
//! the list, or appears earlier in the same file, is bad (`already in this list`).

use super::e164::{normalise, CountryCode};
use super::lists;
use super::{sql_ms, ListId, ListState, OutboundError, Result};
use crate::store::outbound::{Db, NewContactRow};
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::Read;

/// How to read an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// National numbers are taken as numbers of this country.
    pub country_code: CountryCode,
    /// Import nothing when any row is bad.
    pub all_or_nothing: bool,
    /// CSV field separator: `b','` (default), or `b';'` as spreadsheets write in many locales
    /// (then several numbers in one cell cannot be `;`-separated: use phone2, phone3, …).
    pub delimiter: u8,
}

impl ImportOptions {
    pub fn new(country_code: CountryCode) -> Self {
        ImportOptions {
            country_code,
            all_or_nothing: false,
            delimiter: b',',
        }
    }
}

/// One refused row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// CSV: the spreadsheet row (header = 1). JSON and number lists: the 1-based position.
    pub row: usize,
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {}: {}", self.row, self.reason)
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Data rows read (blank rows not counted).
    pub rows: usize,
    /// Rows stored (0 when `all_or_nothing` and any row is bad).
    pub imported: usize,
    /// Bad rows, in row order.
    pub errors: Vec<RowError>,
}

/// A row as read, before checks.
#[derive(Debug, Default)]
struct RawContact {
    row: usize,
    customer_id: Option<String>,
    /// (column name, cell) in column order.
    phones: Vec<(String, String)>,
    name: Option<String>,
    due_at: Option<String>,
    not_before: Option<String>,
    fields: Map<String, Value>,
}

/// A row that passed every check.
struct NewContact {
    customer_id: Option<String>,
    phones: Vec<String>,
    name: Option<String>,
    fields: Map<String, Value>,
    due_at_ms: Option<u64>,
    not_before_ms: Option<u64>,
}

enum Column {
    CustomerId,
    Phone,
    Name,
    DueAt,
    NotBefore,
    Field(String),
    Ignored,
}

fn column(header: &str) -> Column {
    let original = header.trim().trim_start_matches('\u{feff}').trim();
    let key: String = original
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect();
    match key.as_str() {
        "" => Column::Ignored,
        "customer_id" | "customerid" | "customer" => Column::CustomerId,
        "name" => Column::Name,
        "due_at" | "due" => Column::DueAt,
        "not_before" => Column::NotBefore,
        k if k.starts_with("phone")
            && k["phone".len()..]
                .trim_start_matches('_')
                .bytes()
                .all(|b| b.is_ascii_digit())
            || k == "phones" =>
        {
            Column::Phone
        }
        _ => Column::Field(original.to_string()),
    }
}

/// Import contacts from CSV into `list`. See the module docs for the columns.
pub fn import_contacts_csv<R: Read>(
    conn: &Db,
    list: ListId,
    input: R,
    opts: &ImportOptions,
    now_ms: u64,
) -> Result<ImportReport> {
    let mut header: Option<Vec<(Column, String)>> = None;
    let mut raws = Vec::new();
    let mut errors = Vec::new();
    for (row, rec) in csv_rows(input, opts.delimiter)? {
        let cells: Vec<&str> = match rec.iter().map(std::str::from_utf8).collect() {
            Ok(c) => c,
            Err(_) => {
                let reason = "is not UTF-8 text (save the file as \"CSV UTF-8\")".to_string();
                if header.is_none() {
                    return Ok(header_error(reason));
                }
                errors.push(RowError { row, reason });
                continue;
            }
        };
        let Some(cols) = &header else {
            let cols: Vec<(Column, String)> = cells
                .iter()
                .map(|c| (column(c), c.trim().to_string()))
                .collect();
            if let Some(reason) = header_problem(&cols) {
                return Ok(header_error(reason));
            }
            header = Some(cols);
            continue;
        };
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        if cells.len() > cols.len() {
            errors.push(RowError {
                row,
                reason: format!("has {} cells, the header has {}", cells.len(), cols.len()),
            });
            continue;
        }
        let mut raw = RawContact {
            row,
            ..RawContact::default()
        };
        for ((col, name), cell) in cols.iter().zip(&cells) {
            let cell = cell.trim();
            if cell.is_empty() {
                continue;
            }
            let owned = Some(cell.to_string());
            match col {
                Column::CustomerId => raw.customer_id = owned,
                Column::Name => raw.name = owned,
                Column::DueAt => raw.due_at = owned,
                Column::NotBefore => raw.not_before = owned,
                Column::Phone => raw.phones.push((name.clone(), cell.to_string())),
                Column::Field(key) => {
                    raw.fields
                        .insert(key.clone(), Value::String(cell.to_string()));
                }
                Column::Ignored => {}
            }
        }
        raws.push(raw);
    }
    if header.is_none() {
        return Ok(header_error(
            "the file is empty: expected a header row".into(),
        ));
    }
    store_contacts(conn, list, raws, errors, opts, now_ms)
}

/// Every CSV record with the spreadsheet row it is on: its first line, less the extra lines
/// taken by line breaks inside quoted cells of the records before it. Blank lines count (a
/// spreadsheet shows them as empty rows); the CSV reader skips them, and reports a record after
/// blank lines as starting on the first of them, hence the look at the bytes.
pub(super) fn csv_rows<R: Read>(
    mut input: R,
    delimiter: u8,
) -> Result<Vec<(usize, csv::ByteRecord)>> {
    let mut data = Vec::new();
    input
        .read_to_end(&mut data)
        .map_err(|e| OutboundError::Read(e.to_string()))?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(data.as_slice());
    let mut out = Vec::new();
    let mut extra_lines = 0usize;
    loop {
        let mut rec = csv::ByteRecord::new();
        if !rdr
            .read_byte_record(&mut rec)
            .map_err(|e| OutboundError::Read(e.to_string()))?
        {
            return Ok(out);
        }
        let (mut line, byte) = rec
            .position()
            .map_or((1, 0), |p| (p.line() as usize, p.byte() as usize));
        let skipped = data
            .get(byte..)
            .unwrap_or_default()
            .iter()
            .take_while(|b| **b == b'\n' || **b == b'\r')
            .filter(|b| **b == b'\n')
            .count();
        line += skipped;
        let row = line.saturating_sub(extra_lines).max(1);
        extra_lines += rec.iter().flatten().filter(|b| **b == b'\n').count();
        out.push((row, rec));
    }
}

fn header_problem(cols: &[(Column, String)]) -> Option<String> {
    if !cols.iter().any(|(c, _)| matches!(c, Column::Phone)) {
        return Some("no phone column in the header (expected phone, phone2, …)".into());
    }
    let mut names = HashSet::new();
    let mut kinds: HashMap<&str, &str> = HashMap::new();
    for (c, name) in cols {
        if !name.is_empty() && !names.insert(name.to_lowercase()) {
            return Some(format!("column {name:?} appears twice in the header"));
        }
        let kind = match c {
            Column::CustomerId => "customer_id",
            Column::Name => "name",
            Column::DueAt => "due_at",
            Column::NotBefore => "not_before",
            _ => continue,
        };
        if let Some(first) = kinds.insert(kind, name) {
            return Some(format!("columns {first:?} and {name:?} both give {kind}"));
        }
    }
    None
}

pub(super) fn header_error(reason: String) -> ImportReport {
    ImportReport {
        rows: 0,
        imported: 0,
        errors: vec![RowError { row: 1, reason }],
    }
}

/// Import contacts from a JSON array of objects with the CSV column names as keys; `phone` may
/// also be an array, and a `fields` object is merged into the free fields. Rows are numbered
/// from 1 in array order.
pub fn import_contacts_json(
    conn: &Db,
    list: ListId,
    input: &Value,
    opts: &ImportOptions,
    now_ms: u64,
) -> Result<ImportReport> {
    let items = input
        .as_array()
        .ok_or_else(|| OutboundError::Read("expected a JSON array of contact objects".into()))?;
    let mut raws = Vec::new();
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let row = i + 1;
        match json_raw(row, item) {
            Ok(raw) => raws.push(raw),
            Err(reason) => errors.push(RowError { row, reason }),
        }
    }
    store_contacts(conn, list, raws, errors, opts, now_ms)
}

fn json_raw(row: usize, item: &Value) -> Result<RawContact, String> {
    let obj = item.as_object().ok_or("is not an object")?;
    let mut raw = RawContact {
        row,
        ..RawContact::default()
    };
    let text = |k: &str, v: &Value| -> Result<Option<String>, String> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            Value::String(s) => Ok(Some(s.trim().to_string())),
            Value::Number(n) => Ok(Some(n.to_string())),
            _ => Err(format!("{k} must be a string")),
        }
    };
    for (k, v) in obj {
        if k == "fields" {
            let f = v.as_object().ok_or("fields must be an object")?;
            raw.fields.extend(f.clone());
            continue;
        }
        match column(k) {
            Column::CustomerId => raw.customer_id = text(k, v)?,
            Column::Name => raw.name = text(k, v)?,
            Column::DueAt => raw.due_at = text(k, v)?,
            Column::NotBefore => raw.not_before = text(k, v)?,
            Column::Phone => match v {
                Value::Array(items) => {
                    for p in items {
                        if let Some(p) = text(k, p)? {
                            raw.phones.push((k.clone(), p));
                        }
                    }
                }
                v => {
                    if let Some(p) = text(k, v)? {
                        raw.phones.push((k.clone(), p));
                    }
                }
            },
            Column::Field(_) | Column::Ignored => {
                raw.fields.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(raw)
}

/// Check the rows, then store the good ones (or none) in one transaction.
fn store_contacts(
    conn: &Db,
    list: ListId,
    raws: Vec<RawContact>,
    mut errors: Vec<RowError>,
    opts: &ImportOptions,
    now_ms: u64,
) -> Result<ImportReport> {
    let now = sql_ms(now_ms)?;
    let tx = super::write_tx(conn)?;
    let l = lists::load(&*tx, list)?;
    if l.state == ListState::Stopped {
        return Err(OutboundError::Conflict(format!(
            "list {:?} is stopped: nothing can be imported into it",
            l.spec.name
        )));
    }
    let tz = TimeZone::get(&l.spec.time_zone)
        .map_err(|e| OutboundError::Corrupt(format!("list {list} time zone: {e}")))?;
    let rows = raws.len() + errors.len();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut good = Vec::new();
    for raw in raws {
        let row = raw.row;
        match check(raw, &opts.country_code, &tz) {
            Ok(c) => {
                let key = dup_key(&c);
                if let Some(first) = seen.get(&key) {
                    errors.push(RowError {
                        row,
                        reason: format!("{} is already in this list (row {first})", key_label(&c)),
                    });
                } else if pending_in_list(&*tx, list, &c)? {
                    errors.push(RowError {
                        row,
                        reason: format!("{} is already pending in this list", key_label(&c)),
                    });
                } else {
                    seen.insert(key, row);
                    good.push(c);
                }
            }
            Err(reason) => errors.push(RowError { row, reason }),
        }
    }
    errors.sort_by_key(|e| e.row);
    if opts.all_or_nothing && !errors.is_empty() {
        return Ok(ImportReport {
            rows,
            imported: 0,
            errors,
        });
    }
    for c in &good {
        insert_contact(&*tx, list, c, None, now)?;
    }
    tx.commit()?;
    Ok(ImportReport {
        rows,
        imported: good.len(),
        errors,
    })
}

fn check(raw: RawContact, cc: &CountryCode, tz: &TimeZone) -> Result<NewContact, String> {
    let mut phones: Vec<String> = Vec::new();
    for (col, cell) in &raw.phones {
        for part in cell.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let n = normalise(part, cc).map_err(|e| format!("{col} {part:?}: {e}"))?;
            if !phones.contains(&n) {
                phones.push(n);
            }
        }
    }
    if phones.is_empty() {
        return Err("no phone number".into());
    }
    let due_at_ms = raw
        .due_at
        .as_deref()
        .map(|s| parse_when(s, tz, true).map_err(|e| format!("due_at {s:?}: {e}")))
        .transpose()?;
    let not_before_ms = raw
        .not_before
        .as_deref()
        .map(|s| parse_when(s, tz, false).map_err(|e| format!("not_before {s:?}: {e}")))
        .transpose()?;
    Ok(NewContact {
        customer_id: raw.customer_id,
        phones,
        name: raw.name,
        fields: raw.fields,
        due_at_ms,
        not_before_ms,
    })
}

/// RFC 3339, a local date and time in `tz`, or a local date (its end when `end_of_day`).
pub(crate) fn parse_when(s: &str, tz: &TimeZone, end_of_day: bool) -> Result<u64, String> {
    let s = s.trim();
    let bad = || "expected 2024-05-03, 2024-05-03 14:00 or 2024-05-03T14:00:00+01:00".to_string();
    let ts = if let Ok(ts) = s.parse::<Timestamp>() {
        ts
    } else if s.len() == 10 {
        let date: Date = s.parse().map_err(|_| bad())?;
        let date = if end_of_day {
            date.tomorrow().map_err(|_| bad())?
        } else {
            date
        };
        date.to_zoned(tz.clone()).map_err(|_| bad())?.timestamp()
    } else {
        let dt: DateTime = s.parse().map_err(|_| bad())?;
        dt.to_zoned(tz.clone()).map_err(|_| bad())?.timestamp()
    };
    u64::try_from(ts.as_millisecond()).map_err(|_| "before 1970".to_string())
}

fn dup_key(c: &NewContact) -> String {
    match &c.customer_id {
        Some(id) => format!("id:{id}"),
        None => format!("tel:{}", c.phones[0]),
    }
}

fn key_label(c: &NewContact) -> String {
    match &c.customer_id {
        Some(id) => format!("customer {id:?}"),
        None => format!("number {}", c.phones[0]),
    }
}

fn pending_in_list(conn: &Db, list: ListId, c: &NewContact) -> Result<bool> {
    Ok(match &c.customer_id {
        Some(id) => conn.customer_pending(list, id)?,
        None => conn.number_pending(list, &c.phones[0])?,
    })
}

/// Insert one checked contact (pending) with its numbers. Returns its id.
fn insert_contact(
    conn: &Db,
    list: ListId,
    c: &NewContact,
    call_id: Option<i64>,
    now: i64,
) -> Result<super::ContactId> {
    let fields = Value::Object(c.fields.clone()).to_string();
    let row = NewContactRow {
        customer_id: c.customer_id.as_deref(),
        name: c.name.as_deref(),
        fields_json: &fields,
        due_at_ms: c.due_at_ms.map(sql_ms).transpose()?,
        not_before_ms: c.not_before_ms.map(sql_ms).transpose()?,
        call_id,
        phones: &c.phones,
    };
    Ok(conn.insert_contact(list, &row, now)?)
}

/// Add one contact for a complaint follow-up or a queue callback (used by [`super::complaints`]
/// and [`super::queue_callbacks`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn insert_single(
    conn: &Db,
    list: ListId,
    customer_id: &str,
    number: &str,
    name: Option<&str>,
    fields: Map<String, Value>,
    due_at_ms: u64,
    call_id: i64,
    now_ms: u64,
) -> Result<super::ContactId> {
    let c = NewContact {
        customer_id: Some(customer_id.to_string()),
        phones: vec![number.to_string()],
        name: name.map(str::to_string),
        fields,
        due_at_ms: Some(due_at_ms),
        not_before_ms: None,
    };
    insert_contact(conn, list, &c, Some(call_id), sql_ms(now_ms)?)
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;
