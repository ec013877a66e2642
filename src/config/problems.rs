//! How a config file's problems are found and named: [`Problem`] (key, line, message) and
//! [`ConfigError`], the reading of one table that records every failing key rather than the
//! first (serde stops at the first error), and the line of a dotted key in the file.
//!
//! Must not know: what any section means (the sections' own files check that).

use serde::de::DeserializeOwned;
use std::fmt;
use std::path::PathBuf;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path (`sip.listen_udp`, `agents[2].password`), empty for syntax errors.
    pub key: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.key.is_empty()) {
            (Some(l), false) => write!(f, "line {l}: {}: {}", self.key, self.message),
            (Some(l), true) => write!(f, "line {l}: {}", self.message),
            (None, false) => write!(f, "{}: {}", self.key, self.message),
            (None, true) => write!(f, "{}", self.message),
        }
    }
}

/// Every problem found in a config file.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} problem(s)",
            self.file.display(),
            self.problems.len()
        )?;
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// Deserialize one table into `out`, recording a problem (with its line) for every key that
/// fails: serde stops at the first error, so the failing key is dropped and the table read
/// again until it reads (or nothing more can be dropped, e.g. a required key is missing).
pub(super) fn read<T: DeserializeOwned>(
    v: Spanned<DeValue<'_>>,
    key: &str,
    lines: &LineIndex,
    problems: &mut Vec<Problem>,
    out: &mut T,
) {
    let start = v.span().start;
    let whole = v.clone();
    let mut v = v;
    // Each round drops one key or array item, so the rounds are bounded by the table's size.
    for _ in 0..=text_entries(whole.get_ref()) {
        let err = match T::deserialize(ValueDeserializer::from(v.clone())) {
            Ok(t) => {
                *out = t;
                return;
            }
            Err(e) => e,
        };
        let offset = err.span().map_or(start, |s| s.start);
        // Paths are found in the file as written (spans never move), not in the pruned copy.
        let mut path = key.to_string();
        key_path_at(whole.get_ref(), offset, &mut path);
        problems.push(Problem {
            key: path,
            line: Some(lines.line(offset)),
            message: err.message().trim().to_string(),
        });
        if !drop_at(v.get_mut(), offset) {
            return;
        }
    }
}

/// How many keys and array items a value holds, all levels counted.
fn text_entries(v: &DeValue<'_>) -> usize {
    match v {
        DeValue::Table(t) => t.iter().map(|(_, v)| 1 + text_entries(v.get_ref())).sum(),
        DeValue::Array(items) => items.iter().map(|v| 1 + text_entries(v.get_ref())).sum(),
        _ => 0,
    }
}

fn spans(span: std::ops::Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end.max(span.start + 1)
}

/// Whether an array item holds byte `offset`. An `[[array]]` table's own span is only its
/// header, so its entries are asked too.
fn item_holds(item: &Spanned<DeValue<'_>>, offset: usize) -> bool {
    spans(item.span(), offset)
        || match item.get_ref() {
            DeValue::Table(t) => t
                .iter()
                .any(|(k, v)| spans(k.span(), offset) || spans(v.span(), offset)),
            _ => false,
        }
}

/// Remove the innermost key or array item whose key or value holds byte `offset`, so that the
/// rest of the table can be checked. False when nothing there can be removed.
fn drop_at(v: &mut DeValue<'_>, offset: usize) -> bool {
    match v {
        DeValue::Table(t) => {
            let mut hit = None;
            for (k, val) in t.iter_mut() {
                let in_value = spans(val.span(), offset);
                if in_value || spans(k.span(), offset) {
                    if in_value && drop_at(val.get_mut(), offset) {
                        return true;
                    }
                    hit = Some(k.get_ref().to_string());
                    break;
                }
            }
            hit.is_some_and(|name| t.remove(name.as_str()).is_some())
        }
        DeValue::Array(items) => {
            let Some(i) = items.iter().position(|val| item_holds(val, offset)) else {
                return false;
            };
            if let Some(item) = items.get_mut(i) {
                if drop_at(item.get_mut(), offset) {
                    return true;
                }
            }
            let rest: toml::de::DeArray<'_> = items
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, val)| val.clone())
                .collect();
            *items = rest;
            true
        }
        _ => false,
    }
}

/// Extend `path` with the keys (and array indexes) whose values contain byte `offset`, so an
/// error inside `[sip]` is reported as `sip.realm` rather than `sip`.
fn key_path_at(v: &DeValue<'_>, offset: usize, path: &mut String) {
    match v {
        DeValue::Table(t) => {
            for (k, val) in t.iter() {
                let span = val.span();
                if span.start <= offset && offset < span.end.max(span.start + 1) {
                    path.push('.');
                    path.push_str(k.get_ref());
                    key_path_at(val.get_ref(), offset, path);
                    return;
                }
            }
        }
        DeValue::Array(items) => {
            for (i, val) in items.iter().enumerate() {
                if item_holds(val, offset) {
                    path.push_str(&format!("[{i}]"));
                    key_path_at(val.get_ref(), offset, path);
                    return;
                }
            }
        }
        _ => {}
    }
}

/// Best-effort line of a dotted key (`sip.limits.max_headers`, `agents[1].id`): the line of the
/// last path element inside its table, falling back to the table header.
pub(super) fn find_key_line(text: &str, key: &str, lines: &LineIndex) -> Option<usize> {
    let root = DeTable::parse(text).ok()?;
    let mut table: &DeTable<'_> = root.get_ref();
    let mut best = None;
    for seg in key.split('.') {
        let (name, index) = match seg.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        let (k, v) = table.iter().find(|(k, _)| k.get_ref().as_ref() == name)?;
        best = Some(lines.line(k.span().start));
        let v = match (v.get_ref(), index) {
            (DeValue::Array(items), Some(i)) => {
                let item = items.get(i)?;
                best = Some(lines.line(item.span().start));
                item
            }
            _ => v,
        };
        match v.get_ref() {
            DeValue::Table(t) => table = t,
            _ => break,
        }
    }
    best
}

/// Byte offset → 1-based line number.
pub(super) struct LineIndex(Vec<usize>);

impl LineIndex {
    pub(super) fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex(starts)
    }

    pub(super) fn line(&self, offset: usize) -> usize {
        match self.0.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}
