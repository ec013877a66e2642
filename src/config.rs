//! Configuration: the TOML file, its defaults, and validation into settings each subsystem uses.
//!
//! Owns: the file format (every table `deny_unknown_fields`), defaults, and checks that name the
//! key and line of every problem. Each top-level table and each `[[agents]]` entry is read on its
//! own, so one mistake does not hide the next: `ctid check-config` lists them all.
//!
//! This file only assembles: it reads each section into [`Config`], fills secrets from their
//! files (paths relative to the config file), and runs every section's checks. Each section's
//! settings, defaults and checks live in their own file under `config/`; the reading that
//! collects problems with key and line is `config/problems.rs`.
//!
//! Arrows: everyone reads `config`; `config` uses only plain types of the cores it fills
//! (`sip::advertise::Advertise`, `sip::PeerNet`, `acd::Overflow`, `outbound::CountryCode`), the
//! pure URI check of `resolve::plan`, and the WAV loader `media::prompt` to check prompts.
//!
//! Must not know: sockets, SIP processing, SQL.

use serde::Serialize;
use std::path::Path;
use toml::de::{DeTable, DeValue};

mod api;
mod calls;
mod daemon;
mod edge;
mod media;
mod outbound;
mod problems;
mod queues;
mod registrar;
mod reports;
mod sip;
mod tls;

pub use crate::sip::PeerNet;
pub use api::{token_digest, token_digest_from_hex, Admin, Api, ApiToken, API_ROLES};
pub use calls::{Calls, Trunk};
pub use daemon::{check_log_filter, Daemon, LogFormat};
pub use edge::{AuthThrottle, Overload};
pub use media::Media;
pub use outbound::{Outbound, MAX_DUPLICATE_PERIOD_DAYS};
use problems::{find_key_line, read, LineIndex};
pub use problems::{ConfigError, Problem};
pub use queues::{parse_overflow, Queue, QueueMember, STRATEGIES};
pub use registrar::{Agent, Registrar};
pub use reports::{time_zone, Reports, DEFAULT_INTERVAL_MINUTES, INTERVAL_MINUTES};
pub use sip::{HostPort, PeerSpec, Sip, SipLimits};
pub use tls::Tls;

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Config {
    pub daemon: Daemon,
    pub sip: Sip,
    pub registrar: Registrar,
    pub agents: Vec<Agent>,
    pub trunk: Option<Trunk>,
    pub calls: Calls,
    pub media: Media,
    pub queues: Vec<Queue>,
    pub admin: Admin,
    pub reports: Reports,
    pub api: Api,
    pub outbound: Outbound,
}

impl Config {
    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            problems: vec![Problem {
                key: String::new(),
                line: None,
                message: format!("cannot read: {e}"),
            }],
        })?;
        let base = path.parent().filter(|p| !p.as_os_str().is_empty());
        Config::parse_in(&text, base).map_err(|problems| ConfigError {
            file: path.to_path_buf(),
            problems,
        })
    }

    /// Parse and validate config text; every problem found is returned. Relative `*_file`
    /// paths are taken from the working directory.
    pub fn parse(text: &str) -> Result<Config, Vec<Problem>> {
        Config::parse_in(text, None)
    }

    /// [`Config::parse`] with relative `*_file` paths taken from `base` (the config file's
    /// directory).
    pub fn parse_in(text: &str, base: Option<&Path>) -> Result<Config, Vec<Problem>> {
        let lines = LineIndex::new(text);
        let root = match DeTable::parse(text) {
            Ok(r) => r,
            Err(e) => {
                return Err(vec![Problem {
                    key: String::new(),
                    line: e.span().map(|s| lines.line(s.start)),
                    message: e.message().to_string(),
                }])
            }
        };
        let mut cfg = Config::default();
        let mut problems = Vec::new();
        for (k, v) in root.get_ref().iter() {
            let key = k.get_ref().to_string();
            let line = lines.line(k.span().start);
            match key.as_str() {
                "daemon" => read(v.clone(), &key, &lines, &mut problems, &mut cfg.daemon),
                "sip" => read(v.clone(), &key, &lines, &mut problems, &mut cfg.sip),
                "registrar" => read(v.clone(), &key, &lines, &mut problems, &mut cfg.registrar),
                "trunk" => read(v.clone(), &key, &lines, &mut problems, &mut cfg.trunk),
                "calls" => read(v.clone(), &key, &lines, &mut problems, &mut cfg.calls),
                "media" => read(v.clone(), &key, &lines, &mut problems, &mut cfg.media),
                "admin" => read(v.clone(), &key, &lines, &mut problems, &mut cfg.admin),
                "reports" => read(v.clone(), &key, &lines, &mut problems, &mut cfg.reports),
                "api" => read(v.clone(), &key, &lines, &mut problems, &mut cfg.api),
                "outbound" => read(v.clone(), &key, &lines, &mut problems, &mut cfg.outbound),
                "queues" => read(v.clone(), &key, &lines, &mut problems, &mut cfg.queues),
                "agents" => match v.get_ref() {
                    DeValue::Array(items) => {
                        for (i, item) in items.iter().enumerate() {
                            let mut a: Option<Agent> = None;
                            let k = format!("agents[{i}]");
                            read(item.clone(), &k, &lines, &mut problems, &mut a);
                            if let Some(a) = a {
                                cfg.agents.push(a);
                            }
                        }
                    }
                    _ => problems.push(Problem {
                        key: key.clone(),
                        line: Some(line),
                        message: "must be an array of tables ([[agents]])".into(),
                    }),
                },
                _ => problems.push(Problem {
                    key: key.clone(),
                    line: Some(line),
                    message: "unknown section (expected daemon, sip, registrar, agents, trunk, calls, media, queues, admin, reports, api, outbound)"
                        .into(),
                }),
            }
        }
        read_secret_files(&mut cfg, base, text, &lines, &mut problems);
        cfg.sip.tls.resolve(base);
        validate(&cfg, text, &lines, &mut problems);
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(problems)
        }
    }
}

/// Fill `password` / `token` from their `*_file` keys. Both a secret and its file is a problem
/// (which one would win?), and so is a file that cannot be read or is empty.
fn read_secret_files(
    cfg: &mut Config,
    base: Option<&Path>,
    text: &str,
    lines: &LineIndex,
    problems: &mut Vec<Problem>,
) {
    let mut add = |key: String, message: String| {
        problems.push(Problem {
            line: find_key_line(text, &key, lines),
            key,
            message,
        })
    };
    let mut read = |file: &Path, key: String, inline: &str| -> Option<String> {
        if !inline.is_empty() {
            add(key, "give the secret or its file, not both".into());
            return None;
        }
        let path = match base {
            Some(b) if file.is_relative() => b.join(file),
            _ => file.to_path_buf(),
        };
        match std::fs::read_to_string(&path) {
            Ok(t) => match t.lines().next().map(str::trim_end) {
                Some(first) if !first.is_empty() => Some(first.to_string()),
                _ => {
                    add(key, format!("{} is empty", path.display()));
                    None
                }
            },
            Err(e) => {
                add(key, format!("cannot read {}: {e}", path.display()));
                None
            }
        }
    };
    for (i, a) in cfg.agents.iter_mut().enumerate() {
        if let Some(f) = a.password_file.clone() {
            if let Some(p) = read(&f, format!("agents[{i}].password_file"), &a.password) {
                a.password = p;
            }
        }
    }
    for (i, t) in cfg.api.tokens.iter_mut().enumerate() {
        if let Some(f) = t.token_file.clone() {
            if let Some(v) = read(&f, format!("api.tokens[{i}].token_file"), &t.token) {
                t.token = v;
            }
        }
    }
}

/// Semantic checks that serde cannot make, section by section (the order is the order in which
/// `check-config` lists the problems).
fn validate(cfg: &Config, text: &str, lines: &LineIndex, problems: &mut Vec<Problem>) {
    let mut add = |key: &str, message: String| {
        problems.push(Problem {
            key: key.to_string(),
            line: find_key_line(text, key, lines),
            message,
        })
    };
    if let Err(e) = check_log_filter(&cfg.daemon.log_level) {
        add("daemon.log_level", e);
    }
    sip::validate(&cfg.sip, &mut add);
    registrar::validate(cfg, &mut add);
    queues::validate(cfg, &mut add);
    api::validate(cfg, &mut add);
    outbound::validate(cfg, &mut add);
    media::validate(&cfg.media, &mut add);
    edge::validate(cfg, &mut add);
    tls::validate(cfg, &mut add);
    media::validate_prompts(cfg, &mut add);
    reports::validate(cfg, &mut add);
    calls::validate(cfg, &mut add);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_configs_parse() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
        let mut n = 0;
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.path().extension().is_some_and(|x| x == "toml") {
                let r = Config::load(&e.path());
                assert!(r.is_ok(), "{}: {:?}", e.path().display(), r.err());
                n += 1;
            }
        }
        assert!(n >= 1, "no example configs found");
    }

    #[test]
    fn sip_advertise_is_an_address_or_name_with_an_optional_port() {
        let cfg = Config::parse("[sip]\nadvertise = \"203.0.113.7:5070\"\n").unwrap();
        let a = cfg.sip.advertise.unwrap().literal().unwrap();
        assert_eq!(
            (a.ip.to_string(), a.port),
            ("203.0.113.7".into(), Some(5070))
        );
        let cfg = Config::parse("[sip]\nadvertise = \"[2001:db8::7]\"\n").unwrap();
        assert_eq!(cfg.sip.advertise.unwrap().literal().unwrap().port, None);
        // A DNS name, resolved at start.
        let cfg = Config::parse("[sip]\nadvertise = \"sip.example.com:5070\"\n").unwrap();
        let h = cfg.sip.advertise.unwrap();
        assert_eq!((h.host.as_str(), h.port), ("sip.example.com", Some(5070)));
        assert_eq!(h.literal(), None);
        for bad in [
            "0.0.0.0",
            "203.0.113.7:0",
            "not an address",
            "-x.example",
            "a..b",
            "h:99999",
        ] {
            let text = format!("[sip]\nadvertise = {bad:?}\n");
            let p = Config::parse(&text).unwrap_err();
            let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
            assert!(
                shown.iter().any(|s| s.contains("line 2: sip.advertise")),
                "{bad}: {shown:#?}"
            );
        }
    }

    #[test]
    fn trusted_peers_are_addresses_blocks_or_names() {
        let cfg = Config::parse(
            "[sip]\ntrusted_peers = [\"192.0.2.10\", \"10.0.0.0/8\", \"pbx.example.com\"]\n",
        )
        .unwrap();
        assert_eq!(cfg.sip.trusted_peers.len(), 3);
        assert!(
            matches!(&cfg.sip.trusted_peers[0], PeerSpec::Net(n) if n.contains("192.0.2.10".parse().unwrap()))
        );
        assert_eq!(
            cfg.sip.trusted_peers[2],
            PeerSpec::Name("pbx.example.com".into())
        );
        for bad in [
            "pbx.example.com:5060",
            "10.0.0.0/33",
            "not a host",
            "0.0.0.0:1",
        ] {
            let text = format!("[sip]\ntrusted_peers = [{bad:?}]\n");
            let p = Config::parse(&text).unwrap_err();
            let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
            assert!(
                shown
                    .iter()
                    .any(|s| s.contains("line 2: sip.trusted_peers")),
                "{bad}: {shown:#?}"
            );
        }
    }

    #[test]
    fn empty_config_is_the_default() {
        assert_eq!(Config::parse("").ok(), Some(Config::default()));
    }

    #[test]
    fn every_problem_is_listed_with_key_and_line() {
        let text = "[daemon]\nlog_level = \"info\"\nbogus = 1\n\n[sip]\nt1_ms = \"x\"\n\n[registrar]\nmin_expires = 0\n\n[[agents]]\nid = \"1\"\nname = \"A\"\nusername = \"a\"\npassword = \"\"\n\n[[agents]]\nid = \"1\"\nname = \"B\"\nusername = \"b\"\npasword = \"x\"\n\n[nonsense]\n";
        let p = Config::parse(text).unwrap_err();
        let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        let find = |needle: &str| shown.iter().any(|s| s.contains(needle));
        assert!(find("line 3: daemon: unknown field `bogus`"), "{shown:#?}");
        assert!(find("line 6: sip.t1_ms: invalid type"), "{shown:#?}");
        assert!(
            find("line 21: agents[1]: unknown field `pasword`"),
            "{shown:#?}"
        );
        assert!(find("line 23: nonsense: unknown section"), "{shown:#?}");
        assert!(find("line 9: registrar.min_expires"), "{shown:#?}");
        assert!(find("line 15: agents[0].password"), "{shown:#?}");
    }

    #[test]
    fn every_problem_of_one_section_is_listed() {
        // Three mistakes in [sip], two in one [[queues]] entry and one in the next: serde stops
        // at the first of each table, check-config must still name all six.
        let text = "[sip]\nt1_ms = \"x\"\nbogus = 1\nrealm = 5\n\n[[queues]]\nname = \"q\"\nnumbers = [\"4000\"]\nmax_wait_secs = \"long\"\nsl_target = 15\n\n[[queues]]\nname = \"r\"\nnumbers = [\"4001\"]\nwrapup = 3\n";
        let p = Config::parse(text).unwrap_err();
        let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        let find = |needle: &str| shown.iter().any(|s| s.contains(needle));
        assert!(find("line 2: sip.t1_ms: invalid type"), "{shown:#?}");
        assert!(find("line 3: sip: unknown field `bogus`"), "{shown:#?}");
        assert!(find("line 4: sip.realm: invalid type"), "{shown:#?}");
        assert!(find("line 9: queues[0].max_wait_secs"), "{shown:#?}");
        assert!(
            find("line 10: queues[0]: unknown field `sl_target`"),
            "{shown:#?}"
        );
        assert!(
            find("line 15: queues[1]: unknown field `wrapup`"),
            "{shown:#?}"
        );
    }

    #[test]
    fn secrets_can_live_in_files_or_as_hashes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sip-1001"), "from-a-file\n").unwrap();
        std::fs::write(dir.path().join("sup-token"), "supervisor-token-in-a-file\n").unwrap();
        let hash = "3c8a2b1d0b5bd43d0ad4e8ef1f6b3e0e2b1e6f43f0c9e4f3a8d6c1b2a3f4e5d6";
        let text = format!(
            "[[agents]]\nid = \"1001\"\nname = \"A\"\nusername = \"1001\"\npassword_file = \"sip-1001\"\n\n[[api.tokens]]\ntoken_file = \"sup-token\"\nrole = \"supervisor\"\n\n[[api.tokens]]\ntoken_sha256 = \"{hash}\"\nrole = \"wallboard\"\n"
        );
        // Relative files are found beside the config file.
        let cfg = Config::parse_in(&text, Some(dir.path())).unwrap();
        assert_eq!(cfg.agents[0].password, "from-a-file");
        assert_eq!(cfg.api.tokens[0].token, "supervisor-token-in-a-file");
        assert_eq!(
            cfg.api.tokens[0].digest(),
            token_digest(b"supervisor-token-in-a-file")
        );
        assert_eq!(cfg.api.tokens[1].token, "");
        assert_eq!(
            cfg.api.tokens[1].digest(),
            token_digest_from_hex(hash).unwrap()
        );

        let bad = "[[agents]]\nid = \"1\"\nname = \"A\"\nusername = \"a\"\npassword = \"p\"\npassword_file = \"p\"\n\n[[agents]]\nid = \"2\"\nname = \"B\"\nusername = \"b\"\npassword_file = \"missing\"\n\n[[api.tokens]]\ntoken_sha256 = \"abc\"\nrole = \"supervisor\"\n\n[[api.tokens]]\nrole = \"supervisor\"\n";
        let p = Config::parse_in(bad, Some(dir.path())).unwrap_err();
        let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        let find = |needle: &str| shown.iter().any(|s| s.contains(needle));
        assert!(
            find("line 6: agents[0].password_file: give the secret or its file"),
            "{shown:#?}"
        );
        assert!(
            find("line 12: agents[1].password_file: cannot read"),
            "{shown:#?}"
        );
        assert!(
            find("line 15: api.tokens[0].token_sha256: must be 64 hex digits"),
            "{shown:#?}"
        );
        assert!(
            find("api.tokens[1]: needs token, token_file or token_sha256"),
            "{shown:#?}"
        );
    }

    #[test]
    fn log_levels_are_checked() {
        for good in [
            "info",
            "debug,ctid::sip=trace",
            "warn,hyper=off",
            "ctid=debug",
            "ctid",
        ] {
            assert_eq!(check_log_filter(good), Ok(()), "{good}");
        }
        for bad in ["verbose", "debg", "info,ctid::sip=loud", ""] {
            assert!(check_log_filter(bad).is_err(), "{bad}");
        }
        let p = Config::parse("[daemon]\nlog_level = \"verbose\"\n").unwrap_err();
        assert!(
            p[0].to_string().contains("line 2: daemon.log_level"),
            "{p:?}"
        );
    }

    #[test]
    fn retention_batch_and_pause_are_bounded() {
        let ok = Config::parse(
            "[reports]\nretention_days = 30\nretention_batch = 100\nretention_pause_ms = 50\n",
        )
        .unwrap();
        assert_eq!(
            (ok.reports.retention_batch, ok.reports.retention_pause_ms),
            (100, 50)
        );
        let text =
            "[reports]\nretention_days = 30\nretention_batch = 0\nretention_pause_ms = 60001\n";
        let p = Config::parse(text).unwrap_err();
        let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        let find = |needle: &str| shown.iter().any(|s| s.contains(needle));
        assert!(find("line 3: reports.retention_batch"), "{shown:#?}");
        assert!(find("line 4: reports.retention_pause_ms"), "{shown:#?}");
    }

    #[test]
    fn queue_mistakes_are_named() {
        let text = "[[agents]]\nid = \"1\"\nname = \"A\"\nusername = \"a\"\npassword = \"p\"\n\n[[queues]]\nname = \"q\"\nnumbers = [\"4000\"]\nstrategy = \"fastest\"\nmembers = [{ agent = \"9\" }]\noverflow = \"queue:nowhere\"\n\n[[queues]]\nname = \"r\"\nnumbers = [\"4000\"]\nmembers = []\noverflow = \"hangup:200\"\n";
        let p = Config::parse(text).unwrap_err();
        let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        let find = |needle: &str| shown.iter().any(|s| s.contains(needle));
        assert!(
            find("line 10: queues[0].strategy: unknown strategy \"fastest\""),
            "{shown:#?}"
        );
        assert!(
            find("line 11: queues[0].members: agent \"9\" is not defined"),
            "{shown:#?}"
        );
        assert!(find("line 12: queues[0].overflow"), "{shown:#?}");
        assert!(
            find("queues[1].numbers: number \"4000\" already reaches queue \"q\""),
            "{shown:#?}"
        );
        assert!(find("queues[1].overflow: \"hangup:200\""), "{shown:#?}");
    }

    #[test]
    fn api_tokens_are_validated() {
        let text = "[[agents]]\nid = \"1001\"\nname = \"A\"\nusername = \"a\"\npassword = \"p\"\n\n[api]\npause_reasons = [\"break\"]\n\n[[api.tokens]]\ntoken = \"short\"\nrole = \"boss\"\n\n[[api.tokens]]\ntoken = \"0123456789abcdef\"\nrole = \"agent\"\n\n[[api.tokens]]\ntoken = \"0123456789abcdef\"\nrole = \"agent\"\nagent = \"9999\"\n";
        let p = Config::parse(text).unwrap_err();
        let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        let find = |needle: &str| shown.iter().any(|s| s.contains(needle));
        assert!(
            find("line 11: api.tokens[0].token: must be at least 16"),
            "{shown:#?}"
        );
        assert!(
            find("line 12: api.tokens[0].role: unknown role \"boss\""),
            "{shown:#?}"
        );
        assert!(
            find("api.tokens[1].agent: role \"agent\" needs"),
            "{shown:#?}"
        );
        assert!(find("api.tokens[2].token: the same token"), "{shown:#?}");
        assert!(
            find("api.tokens[2].agent: agent \"9999\" is not defined"),
            "{shown:#?}"
        );
        assert_eq!(shown.len(), 5, "{shown:#?}");

        let ok = "[[agents]]\nid = \"1001\"\nname = \"A\"\nusername = \"a\"\npassword = \"p\"\n\n[[api.tokens]]\ntoken = \"0123456789abcdef\"\nrole = \"agent\"\nagent = \"1001\"\n";
        let cfg = Config::parse(ok).unwrap();
        assert_eq!(cfg.api.tokens[0].agent.as_deref(), Some("1001"));
        assert_eq!(cfg.api.pause_reasons, Api::default().pause_reasons);
        let bad = Config::parse("[api]\nbogus = 1\n").unwrap_err();
        assert!(
            bad[0].to_string().contains("api: unknown field `bogus`"),
            "{bad:?}"
        );
    }

    #[test]
    fn outbound_defaults_and_helpers() {
        let cfg = Config::parse("").unwrap();
        let o = &cfg.outbound;
        assert!(o.enabled);
        assert_eq!(o.complaint_list, "complaints");
        assert_eq!(
            (o.complaint_reply_hours, o.complaint_resolve_hours),
            (12, 48)
        );
        assert_eq!(o.complaint_reply_ms(), 12 * 3_600_000);
        assert_eq!(o.complaint_resolve_ms(), 48 * 3_600_000);
        assert_eq!(o.dial_timeout(), std::time::Duration::from_secs(30));
        assert_eq!(o.duplicate_period_secs(), 30 * 86_400);
        assert_eq!(
            o.country_code(),
            crate::outbound::CountryCode::new("44").unwrap()
        );
        // Blending: 1 caller waiting holds back; so does a wait at 80 % of a 15 s target.
        assert!(o.hold_back(1, 0.0, 15));
        let mut relaxed = o.clone();
        relaxed.blend_hold_back_waiting = 3;
        assert!(!relaxed.hold_back(2, 11.9, 15));
        assert!(relaxed.hold_back(2, 12.0, 15));
        assert!(relaxed.hold_back(3, 0.0, 15));
        assert!(!relaxed.hold_back(0, 0.0, 15));
        relaxed.blend_hold_back_waiting = 0;
        relaxed.blend_hold_back_wait_percent = 0;
        assert!(!relaxed.hold_back(50, 500.0, 15), "0 turns both rules off");

        let text = "[[agents]]\nid = \"1\"\nname = \"A\"\nusername = \"a\"\npassword = \"p\"\n\n[[queues]]\nname = \"support\"\nnumbers = [\"4000\"]\nmembers = [{ agent = \"1\" }]\n\n[outbound]\nenabled = false\ndefault_country_code = \"+33\"\nduplicate_period_days = 7\ncomplaint_list = \"plaintes\"\ncomplaint_queue = \"support\"\ncomplaint_reply_hours = 4\ncomplaint_resolve_hours = 24\nblend_hold_back_waiting = 2\nblend_hold_back_wait_percent = 50\ndial_timeout_secs = 25\n";
        let cfg = Config::parse(text).unwrap();
        let o = &cfg.outbound;
        assert!(!o.enabled);
        assert_eq!(
            o.country_code(),
            crate::outbound::CountryCode::new("33").unwrap()
        );
        assert_eq!(o.duplicate_period_secs(), 7 * 86_400);
        assert_eq!(o.dial_timeout_secs, 25);
        let s = o.complaint_settings("Europe/Paris", Some("sales"));
        assert_eq!(s.list.name, "plaintes");
        assert_eq!(
            s.list.queue.as_deref(),
            Some("support"),
            "complaint_queue wins"
        );
        assert_eq!(s.list.time_zone, "Europe/Paris");
        s.list.validate().unwrap();
        let mut o = o.clone();
        o.complaint_queue = None;
        assert_eq!(
            o.complaint_settings("UTC", Some("sales"))
                .list
                .queue
                .as_deref(),
            Some("sales")
        );
    }

    #[test]
    fn outbound_mistakes_are_named() {
        let text = "[outbound]\ndefault_country_code = \"0044\"\nduplicate_period_days = 401\ncomplaint_list = \" \"\ncomplaint_queue = \"nowhere\"\ncomplaint_reply_hours = 0\nblend_hold_back_wait_percent = 150\ndial_timeout_secs = 1\n";
        let p = Config::parse(text).unwrap_err();
        let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        let find = |needle: &str| shown.iter().any(|s| s.contains(needle));
        assert!(find("line 2: outbound.default_country_code:"), "{shown:#?}");
        assert!(
            find("line 3: outbound.duplicate_period_days: must be at most 400"),
            "{shown:#?}"
        );
        assert!(find("line 4: outbound.complaint_list:"), "{shown:#?}");
        assert!(
            find("line 5: outbound.complaint_queue: queue \"nowhere\""),
            "{shown:#?}"
        );
        assert!(
            find("line 6: outbound.complaint_reply_hours: must be at least 1"),
            "{shown:#?}"
        );
        assert!(
            find("line 7: outbound.blend_hold_back_wait_percent"),
            "{shown:#?}"
        );
        assert!(
            find("line 8: outbound.dial_timeout_secs: must be 5 to 300"),
            "{shown:#?}"
        );
        assert_eq!(shown.len(), 7, "{shown:#?}");
        for (text, needle) in [
            (
                "[outbound]\ncomplaint_reply_hours = 24\ncomplaint_resolve_hours = 12\n",
                "outbound.complaint_resolve_hours: must be at least complaint_reply_hours",
            ),
            (
                "[outbound]\ndefault_country_code = \"4a\"\n",
                "outbound.default_country_code",
            ),
            (
                "[outbound]\nduplicate_period = 3\n",
                "outbound: unknown field `duplicate_period`",
            ),
            (
                "[outbound]\ndial_timeout_secs = \"30\"\n",
                "outbound.dial_timeout_secs: invalid type",
            ),
        ] {
            let p = Config::parse(text).unwrap_err();
            assert!(
                p.iter().any(|p| p.to_string().contains(needle)),
                "{needle}: {p:#?}"
            );
        }
        let unknown = Config::parse("[outbond]\n").unwrap_err();
        assert!(
            unknown[0].to_string().contains("reports, api, outbound)"),
            "{unknown:?}"
        );
    }

    #[test]
    fn syntax_error_has_a_line() {
        let p = Config::parse("[sip]\nrealm = \n").unwrap_err();
        assert_eq!(p[0].line, Some(2));
    }
}
