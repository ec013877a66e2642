//! Pure text formatting, shared by the CLI views and the report tables: tables, percentages,
//! durations, target marks, times. Knows no data source and no terminal (colors are codes the
//! caller asks for).

/// A terminal color for a cell (only used when stdout is a terminal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    Green,
    Red,
    Yellow,
    Cyan,
    Dim,
}

impl Color {
    fn code(self) -> &'static str {
        match self {
            Color::Green => "32",
            Color::Red => "31",
            Color::Yellow => "33",
            Color::Cyan => "36",
            Color::Dim => "2",
        }
    }
}

/// Column alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// One table cell: its text and an optional color.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub text: String,
    pub color: Option<Color>,
}

impl Cell {
    pub fn plain(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            color: None,
        }
    }

    pub fn colored(text: impl Into<String>, color: Option<Color>) -> Cell {
        Cell {
            text: text.into(),
            color,
        }
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::plain(s)
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::plain(s)
    }
}

/// A table with a header row; columns are as wide as their widest cell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub headers: Vec<String>,
    pub align: Vec<Align>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// Columns given as (header, alignment).
    pub fn new(columns: &[(&str, Align)]) -> Table {
        Table {
            headers: columns.iter().map(|(h, _)| h.to_string()).collect(),
            align: columns.iter().map(|(_, a)| *a).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<Cell>) {
        self.rows.push(row);
    }

    /// Render with two spaces between columns, no trailing spaces; `color` adds ANSI colors
    /// (widths are computed on the visible text).
    pub fn render(&self, color: bool) -> String {
        let ncols = self
            .rows
            .iter()
            .map(Vec::len)
            .chain(std::iter::once(self.headers.len()))
            .max()
            .unwrap_or(0);
        let mut widths = vec![0usize; ncols];
        for (i, h) in self.headers.iter().enumerate() {
            widths[i] = widths[i].max(width(h));
        }
        for row in &self.rows {
            for (i, c) in row.iter().enumerate() {
                widths[i] = widths[i].max(width(&c.text));
            }
        }
        let mut out = String::new();
        let header: Vec<Cell> = self
            .headers
            .iter()
            .map(|h| Cell::plain(h.clone()))
            .collect();
        self.line(&mut out, &header, &widths, color, true);
        for row in &self.rows {
            self.line(&mut out, row, &widths, color, false);
        }
        out
    }

    fn line(&self, out: &mut String, row: &[Cell], widths: &[usize], color: bool, header: bool) {
        let mut line = String::new();
        let last = widths.len().saturating_sub(1);
        for (i, w) in widths.iter().enumerate() {
            let empty = Cell::plain("");
            let cell = row.get(i).unwrap_or(&empty);
            let pad = w.saturating_sub(width(&cell.text));
            let align = self.align.get(i).copied().unwrap_or(Align::Left);
            if i > 0 {
                line.push_str("  ");
            }
            if align == Align::Right {
                line.push_str(&" ".repeat(pad));
            }
            match (color, header, cell.color) {
                (true, true, _) => line.push_str(&format!("\x1b[1m{}\x1b[0m", cell.text)),
                (true, false, Some(c)) => {
                    line.push_str(&format!("\x1b[{}m{}\x1b[0m", c.code(), cell.text))
                }
                _ => line.push_str(&cell.text),
            }
            if align == Align::Left && i != last {
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// Visible width: one column per char (the table never holds wide characters).
pub fn width(s: &str) -> usize {
    s.chars().count()
}

/// A ratio in 0..=1 as a whole percentage, rounded down so a figure just below a goal never
/// shows as reaching it (79.6 % → "79%"); `-` when unknown.
pub fn pct(ratio: Option<f64>) -> String {
    match ratio {
        Some(r) if r.is_finite() => {
            let p = (r * 100.0 + 1e-9).floor().max(0.0);
            format!("{p:.0}%")
        }
        _ => "-".into(),
    }
}

/// Whether a figure meets its goal: the server's verdict when it gave one, else `ratio ≥ goal`.
pub fn met(ratio: Option<f64>, goal: Option<f64>, server: Option<bool>) -> Option<bool> {
    server.or_else(|| match (ratio, goal) {
        (Some(r), Some(g)) if r.is_finite() && g.is_finite() => Some(r >= g - 1e-12),
        _ => None,
    })
}

/// A percentage with its target mark: `92% ✓`, `81% ✗`, `92%` (no goal), `-` (no figure).
pub fn pct_mark(ratio: Option<f64>, met: Option<bool>) -> Cell {
    let p = pct(ratio);
    if p == "-" {
        return Cell::plain(p);
    }
    match met {
        Some(true) => Cell::colored(format!("{p} ✓"), Some(Color::Green)),
        Some(false) => Cell::colored(format!("{p} ✗"), Some(Color::Red)),
        None => Cell::plain(p),
    }
}

/// A duration in seconds: `0s`, `8s`, `1m05s`, `12m03s`, `2h04m09s`; `-` when unknown.
/// Fractions are rounded to the nearest second; negative values (clock skew) count as 0.
pub fn dur_secs(secs: Option<f64>) -> String {
    let Some(s) = secs.filter(|s| s.is_finite()) else {
        return "-".into();
    };
    let total = s.max(0.0).round() as u64;
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// A duration in milliseconds (see [`dur_secs`]).
pub fn dur_ms(ms: Option<f64>) -> String {
    dur_secs(ms.map(|m| m / 1000.0))
}

/// Unix ms as local wall-clock `YYYY-MM-DD HH:MM:SS` in `tz`.
pub fn datetime(ms: i64, tz: &jiff::tz::TimeZone) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => ms.to_string(),
    }
}

/// Unix ms as `HH:MM:SS.mmm` in `tz`.
pub fn clock_ms(ms: i64, tz: &jiff::tz::TimeZone) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.to_zoned(tz.clone()).strftime("%H:%M:%S%.3f").to_string(),
        Err(_) => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages() {
        assert_eq!(pct(Some(0.92)), "92%");
        assert_eq!(pct(Some(0.0)), "0%");
        assert_eq!(pct(Some(1.0)), "100%");
        assert_eq!(pct(Some(0.7996)), "79%");
        assert_eq!(pct(Some(0.57)), "57%"); // 0.57 * 100 = 56.99999…
        assert_eq!(pct(Some(0.999)), "99%");
        assert_eq!(pct(None), "-");
        assert_eq!(pct(Some(f64::NAN)), "-");
    }

    #[test]
    fn marks() {
        assert_eq!(pct_mark(Some(0.92), Some(true)).text, "92% ✓");
        assert_eq!(pct_mark(Some(0.92), Some(true)).color, Some(Color::Green));
        assert_eq!(pct_mark(Some(0.81), Some(false)).text, "81% ✗");
        assert_eq!(pct_mark(Some(0.81), Some(false)).color, Some(Color::Red));
        assert_eq!(pct_mark(Some(0.81), None).text, "81%");
        assert_eq!(pct_mark(None, Some(true)).text, "-");
    }

    #[test]
    fn goal_met() {
        assert_eq!(met(Some(0.8), Some(0.8), None), Some(true));
        assert_eq!(met(Some(0.79), Some(0.8), None), Some(false));
        assert_eq!(met(Some(0.79), Some(0.8), Some(true)), Some(true));
        assert_eq!(met(None, Some(0.8), None), None);
        assert_eq!(met(Some(0.9), None, None), None);
    }

    #[test]
    fn durations() {
        assert_eq!(dur_secs(Some(0.0)), "0s");
        assert_eq!(dur_secs(Some(8.4)), "8s");
        assert_eq!(dur_secs(Some(59.6)), "1m00s");
        assert_eq!(dur_secs(Some(65.0)), "1m05s");
        assert_eq!(dur_secs(Some(723.0)), "12m03s");
        assert_eq!(dur_secs(Some(7449.0)), "2h04m09s");
        assert_eq!(dur_secs(Some(-3.0)), "0s");
        assert_eq!(dur_secs(None), "-");
        assert_eq!(dur_ms(Some(723_000.0)), "12m03s");
        assert_eq!(dur_ms(None), "-");
    }

    #[test]
    fn table_alignment() {
        let mut t = Table::new(&[
            ("QUEUE", Align::Left),
            ("N", Align::Right),
            ("SL", Align::Left),
        ]);
        t.push(vec!["sales".into(), "12".into(), "92% ✓".into()]);
        t.push(vec!["support-long".into(), "3".into(), "-".into()]);
        assert_eq!(
            t.render(false),
            "QUEUE          N  SL\n\
             sales         12  92% ✓\n\
             support-long   3  -\n"
        );
    }

    #[test]
    fn table_colors_keep_alignment() {
        let mut t = Table::new(&[("A", Align::Left), ("B", Align::Right)]);
        t.push(vec![Cell::colored("x", Some(Color::Red)), "10".into()]);
        let s = t.render(true);
        assert_eq!(
            s,
            "\x1b[1mA\x1b[0m  \x1b[1mB\x1b[0m\n\x1b[31mx\x1b[0m  10\n"
                .replace("\x1b[1mB", " \x1b[1mB")
        );
        // Plain rendering never contains escapes.
        assert!(!t.render(false).contains('\x1b'));
    }

    #[test]
    fn table_short_rows_and_empty() {
        let mut t = Table::new(&[("A", Align::Left), ("B", Align::Left)]);
        t.push(vec!["only".into()]);
        assert_eq!(t.render(false), "A     B\nonly\n");
        assert_eq!(Table::new(&[("X", Align::Left)]).render(false), "X\n");
    }

    #[test]
    fn times() {
        let tz = jiff::tz::TimeZone::UTC;
        assert_eq!(datetime(1_700_000_000_123, &tz), "2023-11-14 22:13:20");
        assert_eq!(clock_ms(1_700_000_000_123, &tz), "22:13:20.123");
    }
}
