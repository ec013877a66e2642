//! The monitoring files under `deploy/`: the Prometheus config, recording and alerting rules (with
//! their `promtool test rules` unit tests) and the Grafana wallboard, whose every PromQL
//! expression is checked by `promtool` too, so a typo in a panel fails here.
//!
//! Needs `promtool` (Debian package `prometheus`) on `PATH`, or its path in `$PROMTOOL`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
const DASHBOARD: &str = "deploy/grafana/ctid-wallboard.json";

fn promtool() -> String {
    std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".to_owned())
}

/// Runs `promtool ARGS` in the crate root and panics with its output unless it succeeds.
fn run_promtool(args: &[&str]) -> String {
    let bin = promtool();
    let out = match Command::new(&bin)
        .args(args)
        .current_dir(MANIFEST_DIR)
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run `{bin}` ({e}): promtool is needed to check deploy/prometheus and \
             deploy/grafana; install Debian's `prometheus` package (apt-get install prometheus) \
             or set PROMTOOL=/path/to/promtool"
        ),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "`promtool {}` failed ({}):\n{text}",
        args.join(" "),
        out.status
    );
    text
}

#[test]
fn prometheus_config_is_valid() {
    let out = run_promtool(&["check", "config", "deploy/prometheus/prometheus.yml"]);
    assert!(out.contains("2 rule files found"), "{out}");
}

#[test]
fn rule_files_are_valid() {
    run_promtool(&[
        "check",
        "rules",
        "deploy/prometheus/ctid-recording.rules.yml",
        "deploy/prometheus/ctid-alerts.rules.yml",
    ]);
}

#[test]
fn rule_unit_tests_pass() {
    let dir = Path::new(MANIFEST_DIR).join("deploy/prometheus/tests");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no rule tests in {}", dir.display());
    let mut args = vec!["test", "rules"];
    args.extend(files.iter().map(String::as_str));
    run_promtool(&args);
}

/// Every alert of the rule file has a unit test (its name appears as `alertname:` in a test).
#[test]
fn every_alert_is_unit_tested() {
    let rules = read("deploy/prometheus/ctid-alerts.rules.yml");
    let tests = read("deploy/prometheus/tests/alerts.test.yml");
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(str::trim)
        .collect();
    assert_eq!(alerts.len(), 8, "{alerts:?}");
    for alert in alerts {
        assert!(
            tests.contains(&format!("alertname: {alert}\n")),
            "alert {alert} has no test in deploy/prometheus/tests/alerts.test.yml"
        );
    }
}

#[test]
fn dashboard_is_valid_json_with_the_expected_settings() {
    let dash = parse_json(&read(DASHBOARD)).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"));
    assert_eq!(dash.get("schemaVersion"), Some(&Json::Num(39.0)));
    assert_eq!(dash.get("refresh"), Some(&Json::Str("10s".into())));
    let time = dash.get("time").expect("time");
    assert_eq!(time.get("from"), Some(&Json::Str("now/d".into())));
    assert_eq!(time.get("to"), Some(&Json::Str("now".into())));

    let vars = match dash.get("templating").and_then(|t| t.get("list")) {
        Some(Json::Arr(v)) => v,
        other => panic!("templating.list: {other:?}"),
    };
    let var = |name: &str| {
        vars.iter()
            .find(|v| v.get("name") == Some(&Json::Str(name.into())))
            .unwrap_or_else(|| panic!("no variable {name}"))
    };
    assert_eq!(
        var("DS_PROMETHEUS").get("type"),
        Some(&Json::Str("datasource".into()))
    );
    let queue = var("queue");
    assert_eq!(queue.get("multi"), Some(&Json::Bool(true)));
    assert_eq!(queue.get("includeAll"), Some(&Json::Bool(true)));
    assert_eq!(
        queue.get("definition"),
        Some(&Json::Str(
            "label_values(ctid_queue_calls_entered_total, queue)".into()
        ))
    );

    // Every panel queries the templated data source.
    let panels = match dash.get("panels") {
        Some(Json::Arr(p)) => p,
        other => panic!("panels: {other:?}"),
    };
    assert!(panels.len() >= 10, "{} panels", panels.len());
    for p in panels {
        let uid = p.get("datasource").and_then(|d| d.get("uid"));
        assert_eq!(
            uid,
            Some(&Json::Str("${DS_PROMETHEUS}".into())),
            "panel {:?}",
            p.get("title")
        );
    }
}

/// Every `"expr"` of the dashboard, with Grafana's variables replaced, is valid PromQL: they are
/// written as recording rules to a temporary file that `promtool check rules` must accept.
#[test]
fn dashboard_expressions_are_valid_promql() {
    let dash = parse_json(&read(DASHBOARD)).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"));
    let mut exprs = Vec::new();
    collect_exprs(&dash, &mut exprs);
    assert!(exprs.len() >= 15, "only {} exprs found", exprs.len());

    let mut rules = String::from("groups:\n  - name: ctid-wallboard-exprs\n    rules:\n");
    for (i, expr) in exprs.iter().enumerate() {
        let promql = grafana_to_promql(expr);
        assert!(
            !promql.contains('$'),
            "unknown Grafana variable left in {expr:?} -> {promql:?}"
        );
        rules.push_str(&format!(
            "      - record: ctid_wallboard_expr_{i}\n        expr: {}\n",
            yaml_quote(&promql)
        ));
    }
    let path = temp_path("ctid-wallboard-exprs.rules.yml");
    std::fs::write(&path, &rules).unwrap();
    let result = std::panic::catch_unwind(|| {
        run_promtool(&["check", "rules", path.to_str().unwrap()]);
    });
    let _ = std::fs::remove_file(&path);
    if let Err(e) = result {
        eprintln!("rules written from {DASHBOARD}:\n{rules}");
        std::panic::resume_unwind(e);
    }
}

/// The checker must catch a broken expression (guards against a vacuous test).
#[test]
fn promtool_rejects_a_broken_dashboard_expression() {
    let path = temp_path("ctid-broken-expr.rules.yml");
    let expr =
        grafana_to_promql("sum(increase(ctid_queue_calls_left_total{queue=~\"$queue\"}[$__range])");
    std::fs::write(
        &path,
        format!(
            "groups:\n  - name: broken\n    rules:\n      - record: broken\n        expr: {}\n",
            yaml_quote(&expr)
        ),
    )
    .unwrap();
    let out = Command::new(promtool())
        .args(["check", "rules", path.to_str().unwrap()])
        .output();
    let _ = std::fs::remove_file(&path);
    let out =
        out.unwrap_or_else(|e| panic!("cannot run promtool ({e}); install Debian's `prometheus`"));
    assert!(!out.status.success(), "promtool accepted {expr:?}");
}

/// Replaces the Grafana variables the dashboard uses by values that make valid PromQL.
fn grafana_to_promql(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("${__rate_interval}", "1m")
        .replace("$__range", "1d")
        .replace("${__range}", "1d")
        .replace("$__interval", "1m")
        .replace("${__interval}", "1m")
        .replace("${queue}", ".*")
        .replace("$queue", ".*")
}

/// A YAML double-quoted scalar (JSON string escaping is valid YAML).
fn yaml_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{}-{name}", std::process::id()))
}

fn read(rel: &str) -> String {
    let path = Path::new(MANIFEST_DIR).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn collect_exprs(v: &Json, out: &mut Vec<String>) {
    match v {
        Json::Obj(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", Json::Str(s)) => out.push(s.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        Json::Arr(a) => a.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

// A strict, minimal JSON parser (RFC 8259): the crate has no JSON dependency.

#[derive(Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.get(key),
            _ => None,
        }
    }
}

fn parse_json(text: &str) -> Result<Json, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("trailing characters"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        let line = self.s[..self.i.min(self.s.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        format!("invalid JSON at byte {} (line {line}): {what}", self.i)
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, b: u8) -> Result<(), String> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", b as char)))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > 128 {
            return Err(self.err("nested too deeply"));
        }
        self.ws();
        match self.peek() {
            Some(b'{') => {
                self.i += 1;
                let mut m = BTreeMap::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(m));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.ws();
                    self.expect(b':')?;
                    let v = self.value(depth + 1)?;
                    if m.insert(k.clone(), v).is_some() {
                        return Err(self.err(&format!("duplicate key {k:?}")));
                    }
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(m));
                        }
                        _ => return Err(self.err("expected ',' or '}'")),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(Json::Arr(a));
                }
                loop {
                    a.push(self.value(depth + 1)?);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Arr(a));
                        }
                        _ => return Err(self.err("expected ',' or ']'")),
                    }
                }
            }
            Some(b'"') => Ok(Json::Str(self.string()?)),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.err("expected a value")),
        }
    }

    fn literal(&mut self, word: &str, v: Json) -> Result<Json, String> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.err("bad literal"))
        }
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.i;
        let digits = |p: &mut Self| {
            let s = p.i;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.i += 1;
            }
            p.i > s
        };
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        if self.peek() == Some(b'0') {
            self.i += 1;
        } else if !digits(self) {
            return Err(self.err("bad number"));
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !digits(self) {
                return Err(self.err("bad fraction"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !digits(self) {
                return Err(self.err("bad exponent"));
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap();
        text.parse()
            .map(Json::Num)
            .map_err(|_| self.err("bad number"))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self
            .s
            .get(self.i..self.i + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.err("bad \\u escape"))?;
        self.i += 4;
        Ok(h)
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.err("unterminated string"));
            };
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return Err(self.err("unterminated escape"));
                    };
                    self.i += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = if (0xD800..0xDC00).contains(&hi) {
                                if !self.s[self.i..].starts_with(b"\\u") {
                                    return Err(self.err("lone surrogate"));
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err("bad surrogate pair"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(cp).ok_or_else(|| self.err("bad code point"))?
                        }
                        _ => return Err(self.err("bad escape")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1f => return Err(self.err("control character in string")),
                _ => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| self.err("invalid UTF-8"))
    }
}

#[test]
fn json_parser_accepts_and_rejects() {
    let v = parse_json(r#" {"a": [1, -2.5e3, true, null, "x\"\u00e9\ud83d\ude00"], "b": {}} "#)
        .unwrap();
    assert_eq!(
        v.get("a"),
        Some(&Json::Arr(vec![
            Json::Num(1.0),
            Json::Num(-2500.0),
            Json::Bool(true),
            Json::Null,
            Json::Str("x\"é😀".into())
        ]))
    );
    for bad in [
        "",
        "{",
        "{\"a\":1,}",
        "[1,]",
        "{\"a\" 1}",
        "01",
        "\"a\nb\"",
        "{\"a\":1}x",
        "{\"a\":1,\"a\":2}",
        "[tru]",
    ] {
        assert!(parse_json(bad).is_err(), "accepted {bad:?}");
    }
}
