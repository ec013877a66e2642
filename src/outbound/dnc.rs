//! The do-not-call list: numbers (E.164) never dialed from any list. Added one by one (API, or
//! an agent's `do_not_call` disposition), imported from CSV or a plain list, removed one by one.
//! The policy checks it at dial time, so a number added while its contact is pending is still
//! never dialed.

use super::e164::{normalise, CountryCode};
use super::import::{csv_rows, header_error, ImportOptions, ImportReport, RowError};
use super::{ms_from_sql, sql_ms, write_tx, OutboundError, Result};
use crate::store::outbound::Db;
use std::io::Read;

/// Put one number on the do-not-call list. Returns its E.164 form. Adding it again keeps the
/// first `added_at` and `source`.
pub fn add_do_not_call(
    conn: &Db,
    number: &str,
    country: &CountryCode,
    source: &str,
    now_ms: u64,
) -> Result<String> {
    let n = normalise(number, country).map_err(|reason| OutboundError::InvalidNumber {
        input: number.to_string(),
        reason,
    })?;
    insert_dnc(conn, &n, source, sql_ms(now_ms)?)?;
    Ok(n)
}

pub(super) fn insert_dnc(conn: &Db, e164: &str, source: &str, now: i64) -> Result<()> {
    Ok(conn.insert_dnc(e164, source, now)?)
}

/// Take a number off the do-not-call list. Returns whether it was on it.
pub fn remove_do_not_call(conn: &Db, number: &str, country: &CountryCode) -> Result<bool> {
    let n = normalise(number, country).map_err(|reason| OutboundError::InvalidNumber {
        input: number.to_string(),
        reason,
    })?;
    Ok(conn.delete_dnc(&n)?)
}

/// Is this E.164 number on the do-not-call list? With its `added_at_ms` and `source`.
pub fn is_do_not_call(conn: &Db, e164: &str) -> Result<Option<(u64, String)>> {
    Ok(conn
        .find_dnc(e164)?
        .map(|(at, source)| (ms_from_sql(at), source)))
}

/// Import do-not-call numbers from CSV with a header row and a `phone` (or `number`) column;
/// other columns are ignored. Rows numbered as for contacts.
pub fn import_do_not_call_csv<R: Read>(
    conn: &Db,
    input: R,
    opts: &ImportOptions,
    source: &str,
    now_ms: u64,
) -> Result<ImportReport> {
    let mut col: Option<usize> = None;
    let mut numbers = Vec::new();
    for (row, rec) in csv_rows(input, opts.delimiter)? {
        let cell = |i: usize| {
            rec.get(i)
                .map(|b| String::from_utf8_lossy(b).trim().to_string())
        };
        let Some(c) = col else {
            let found = (0..rec.len()).find(|&i| {
                let h = cell(i)
                    .unwrap_or_default()
                    .trim_start_matches('\u{feff}')
                    .to_lowercase();
                matches!(
                    h.as_str(),
                    "phone" | "number" | "phone_number" | "phone number"
                )
            });
            match found {
                Some(i) => col = Some(i),
                None => return Ok(header_error("no phone column in the header".into())),
            }
            continue;
        };
        if rec.iter().all(|b| b.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        numbers.push((row, cell(c).unwrap_or_default()));
    }
    if col.is_none() {
        return Ok(header_error(
            "the file is empty: expected a header row".into(),
        ));
    }
    store_dnc(conn, numbers, opts, source, now_ms)
}

/// Import a plain list of do-not-call numbers (rows numbered from 1).
pub fn import_do_not_call_numbers<S: AsRef<str>>(
    conn: &Db,
    numbers: &[S],
    opts: &ImportOptions,
    source: &str,
    now_ms: u64,
) -> Result<ImportReport> {
    let numbered = numbers
        .iter()
        .enumerate()
        .map(|(i, n)| (i + 1, n.as_ref().to_string()))
        .collect();
    store_dnc(conn, numbered, opts, source, now_ms)
}

fn store_dnc(
    conn: &Db,
    numbers: Vec<(usize, String)>,
    opts: &ImportOptions,
    source: &str,
    now_ms: u64,
) -> Result<ImportReport> {
    let now = sql_ms(now_ms)?;
    let mut good = Vec::new();
    let mut errors = Vec::new();
    for (row, raw) in &numbers {
        match normalise(raw, &opts.country_code) {
            Ok(n) => good.push(n),
            Err(e) => errors.push(RowError {
                row: *row,
                reason: format!("{raw:?}: {e}"),
            }),
        }
    }
    let report = |imported| ImportReport {
        rows: numbers.len(),
        imported,
        errors: errors.clone(),
    };
    if opts.all_or_nothing && !errors.is_empty() {
        return Ok(report(0));
    }
    let tx = write_tx(conn)?;
    for n in &good {
        insert_dnc(&*tx, n, source, now)?;
    }
    tx.commit()?;
    Ok(report(good.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::testutil::db;

    fn opts() -> ImportOptions {
        ImportOptions::new(CountryCode::new("44").unwrap())
    }

    fn errors(r: &ImportReport) -> Vec<String> {
        r.errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn do_not_call_import_add_remove() {
        let (_dir, conn) = db();
        let cc = CountryCode::new("44").unwrap();
        let csv = "Name,Number\nA,020 7946 0958\nB,call me\nC,+44 20 7946 0958\nD,0161 496 0000\n";
        let r = import_do_not_call_csv(&conn, csv.as_bytes(), &opts(), "regulator", 5).unwrap();
        assert_eq!(errors(&r), ["row 3: \"call me\": contains letters"]);
        assert_eq!(r.imported, 3);
        assert_eq!(
            is_do_not_call(&conn, "+442079460958").unwrap(),
            Some((5, "regulator".to_string()))
        );
        let mut o = opts();
        o.all_or_nothing = true;
        let r = import_do_not_call_numbers(&conn, &["0113 496 0000", "x"], &o, "api", 6).unwrap();
        assert_eq!(
            (r.imported, errors(&r)),
            (0, vec!["row 2: \"x\": contains letters".to_string()])
        );
        assert!(is_do_not_call(&conn, "+441134960000").unwrap().is_none());
        let n = add_do_not_call(&conn, "0113 496 0000", &cc, "api", 7).unwrap();
        assert_eq!(n, "+441134960000");
        assert!(is_do_not_call(&conn, &n).unwrap().is_some());
        assert!(remove_do_not_call(&conn, "+44 113 496 0000", &cc).unwrap());
        assert!(!remove_do_not_call(&conn, "+44 113 496 0000", &cc).unwrap());
        assert!(add_do_not_call(&conn, "12", &cc, "api", 7).is_err());
    }
}
