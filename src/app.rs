//! Wiring: opens the store, binds the sockets, builds the SIP endpoint, starts every task, and
//! drains them in order on shutdown. The only module that knows every other.

use crate::call::{CallManager, CallSettings};
use crate::config::{Config, PeerNet, PeerSpec};
use crate::media::PortPool;
use crate::sip::advertise::Advertise;
use crate::sip::auth::Algorithm;
use crate::sip::endpoint::{AdmissionConfig, Endpoint, EndpointConfig};
use crate::sip::parse::Limits;
use crate::sip::registrar::{Account, RegistrarConfig};
use crate::sip::throttle::ThrottleConfig;
use crate::sip::transaction::Timers;
use crate::store;
use crate::transport::driver::SipDriver;
use crate::transport::limits::{ConnLimiter, ConnLimits};
use crate::transport::load::OverloadLimits;
use crate::transport::tcp::{self, TcpSettings};
use crate::transport::udp;
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The addresses the daemon actually listens on (port 0 in the config becomes a real port).
#[derive(Debug, Clone, Default)]
pub struct Bound {
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
    pub tls: Vec<SocketAddr>,
    pub admin: Option<SocketAddr>,
}

/// A TCP listener with our backlog (tokio's `TcpListener::bind` always asks for 1024).
fn tcp_listener(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let sock = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(backlog)
}

fn endpoint_config(
    cfg: &Config,
    trusted: Vec<PeerNet>,
    advertise: Option<Advertise>,
) -> EndpointConfig {
    let mut secret = [0u8; 32];
    rand::fill(&mut secret);
    EndpointConfig {
        user_agent: cfg.sip.user_agent.clone(),
        domain: cfg.sip.domain.clone(),
        trusted,
        force_rport: cfg.sip.force_rport,
        timers: Timers {
            t1: Duration::from_millis(cfg.sip.t1_ms),
            t2: Duration::from_millis(cfg.sip.t2_ms),
            t4: Duration::from_millis(cfg.sip.t4_ms),
        },
        registrar: RegistrarConfig {
            realm: cfg.sip.realm.clone(),
            min_expires: cfg.registrar.min_expires,
            max_expires: cfg.registrar.max_expires,
            default_expires: cfg.registrar.default_expires,
            max_contacts: cfg.registrar.max_contacts_per_agent,
            algorithms: cfg
                .registrar
                .algorithms
                .iter()
                .filter_map(|a| Algorithm::from_token(a))
                .collect(),
            nonce_lifetime: Duration::from_secs(cfg.registrar.nonce_lifetime_secs),
            throttle: {
                let a = &cfg.registrar.auth;
                ThrottleConfig {
                    max_failures: a.max_failures,
                    account_max_failures: a.account_max_failures,
                    block: Duration::from_secs(a.block_secs),
                    max_block: Duration::from_secs(a.max_block_secs),
                    forget_after: Duration::from_secs(a.forget_secs),
                    max_tracked: 16_384,
                }
            },
        },
        accounts: cfg
            .agents
            .iter()
            .map(|a| Account {
                agent_id: a.id.clone(),
                username: a.username.clone(),
                password: a.password.clone(),
                ha1: (a.ha1_md5.is_some() || a.ha1_sha256.is_some()).then(|| {
                    crate::sip::registrar::Ha1 {
                        md5: a.ha1_md5.clone(),
                        sha256: a.ha1_sha256.clone(),
                    }
                }),
                algorithms: a.algorithms.as_ref().map(|list| {
                    list.iter()
                        .filter_map(|t| Algorithm::from_token(t))
                        .collect()
                }),
            })
            .collect(),
        nonce_secret: secret,
        advertise,
        admission: AdmissionConfig {
            retry_after_secs: cfg.sip.overload.retry_after_secs,
            max_unacked_per_peer: cfg.sip.overload.max_unacked_per_peer,
        },
    }
}

/// `[sip] trusted_peers` as address blocks: a name stands for every address it resolves to
/// now. A name that does not resolve is logged and trusts nobody (ctid still starts, so a DNS
/// outage at boot does not keep the agents' phones from registering).
async fn trusted_peers(resolver: &crate::resolve::Resolver, specs: &[PeerSpec]) -> Vec<PeerNet> {
    let mut out = Vec::new();
    for spec in specs {
        match spec {
            PeerSpec::Net(n) => out.push(*n),
            PeerSpec::Name(name) => match resolver.ips(name).await {
                Ok(ips) => {
                    tracing::info!(peer = %name, addresses = ?ips, "trusted peer resolved");
                    out.extend(ips.into_iter().map(|ip| PeerNet(ip.into())));
                }
                Err(e) => {
                    tracing::error!(peer = %name, error = %e, "trusted peer does not resolve; it is not trusted")
                }
            },
        }
    }
    out
}

/// The retention thread: at start and then hourly, purge call records older than
/// `[reports] retention_days` in batches of `retention_batch`, each batch a job of the store
/// writer (so it waits behind at most the writes queued before it, and they behind one short
/// batch), with `retention_pause_ms` between them.
fn start_retention(
    cfg: &Config,
    store: store::Store,
) -> Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)> {
    let days = cfg.reports.retention_days;
    if days == 0 {
        return None;
    }
    let batch = cfg.reports.retention_batch.max(1);
    let pause = Duration::from_millis(cfg.reports.retention_pause_ms);
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let handle = std::thread::Builder::new()
        .name("ctid-retention".into())
        .spawn(move || 'passes: loop {
            let cutoff = unix_ms().saturating_sub(u64::from(days) * 86_400_000);
            tracing::debug!(cutoff_ms = cutoff, days, batch, "retention pass started");
            let mut purged = 0;
            loop {
                match store.purge_batch_blocking(cutoff, batch) {
                    Ok(0) => break,
                    Ok(n) => purged += n,
                    Err(e) => {
                        tracing::warn!(error = %e, "retention purge failed");
                        break;
                    }
                }
                match stopped.recv_timeout(pause) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    _ => break 'passes,
                }
            }
            if purged > 0 {
                tracing::info!(calls = purged, days, "purged call records past retention");
            }
            match stopped.recv_timeout(Duration::from_secs(3600)) {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                _ => return,
            }
        })
        .ok()?;
    Some((stop, handle))
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Read connections of the store: reports (two each, at most half the cores at once), API
/// pages, the callback-list routes and gauges.
const STORE_READERS: usize = 8;

/// Run the daemon until `shutdown` is cancelled, then drain and return. `ready` gets the bound
/// addresses once every socket is open.
pub async fn run(
    cfg: Config,
    shutdown: CancellationToken,
    ready: Option<tokio::sync::oneshot::Sender<Bound>>,
) -> anyhow::Result<()> {
    let queue_info: Vec<crate::metrics::QueueInfo> = cfg
        .queues
        .iter()
        .map(|q| crate::metrics::QueueInfo {
            name: q.name.clone(),
            sl_target_secs: q.sl_target_secs,
        })
        .collect();
    let metrics = match crate::metrics::install(&queue_info) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!(error = %e, "metrics recorder not installed (another one is active)");
            None
        }
    };
    crate::metrics::build_info();
    for q in &cfg.queues {
        crate::metrics::set_queue_goals(
            &q.name,
            f64::from(q.sl_goal_percent) / 100.0,
            f64::from(q.answer_rate_target_percent) / 100.0,
        );
    }
    // Before anything is read or written: a second daemon on this directory stops here.
    let _data_dir_lock = store::lock_data_dir(&cfg.daemon.data_dir)?;
    let data_dir = cfg.daemon.data_dir.clone();
    let tz = crate::stats::time_zone(&cfg.reports.time_zone)
        .map_err(|e| anyhow::anyhow!("reports.time_zone {:?}: {e}", cfg.reports.time_zone))?;
    let goals = cfg
        .queues
        .iter()
        .map(|q| {
            let goals = crate::stats::QueueGoals {
                sl_target_secs: q.sl_target_secs,
                sl_goal: f64::from(q.sl_goal_percent) / 100.0,
                answer_rate_goal: f64::from(q.answer_rate_target_percent) / 100.0,
            };
            (q.name.clone(), goals)
        })
        .collect();
    let mut live = crate::stats::LiveStats::new(tz, cfg.reports.interval_minutes, goals);
    let (conn, readers, bindings, first_call_id, mut live) =
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            // The one migration check; then the readers, opened once.
            let conn = store::open(&data_dir)?;
            let readers = store::ReadPool::open(&data_dir, STORE_READERS)?;
            let rebuilt = readers
                .with(|r| crate::stats::rebuild_today(r, &mut live, unix_ms()))
                .context("rebuilding today's figures from the call records")?;
            tracing::info!(
                calls = rebuilt,
                "today's figures rebuilt from the call records"
            );
            let bindings = store::load_bindings(&conn).context("reading stored bindings")?;
            let interrupted =
                store::interrupt_live_calls(&conn, unix_ms()).context("closing calls left live")?;
            if interrupted > 0 {
                tracing::warn!(
                    interrupted,
                    "calls that were live when ctid last stopped are recorded as interrupted"
                );
            }
            let next = store::next_call_id(&conn).context("reading the last call id")?;
            Ok((conn, readers, bindings, next, live))
        })
        .await??;
    let writer = store::Writer::start(conn, 16_384)?;
    let store = store::Store::new(writer.sender.clone(), readers);
    let retention = start_retention(&cfg, store.clone());
    tracing::info!(bindings = bindings.len(), dir = %cfg.daemon.data_dir.display(), "store open");
    let live_bindings = bindings.clone();

    // Names in the config (`[sip] advertise`, the trunk's host) become addresses here.
    let resolver = crate::resolve::Resolver::system();
    let advertise = match &cfg.sip.advertise {
        None => None,
        Some(spec) => Some(match spec.literal() {
            Some(a) => a,
            None => {
                let ips = resolver
                    .ips(&spec.host)
                    .await
                    .map_err(|e| anyhow::anyhow!("[sip] advertise: {e}"))?;
                crate::sip::advertise::Advertise {
                    ip: ips[0],
                    port: spec.port,
                }
            }
        }),
    };
    if let Some(a) = advertise {
        tracing::info!(advertise = %a, "advertising this address to SIP peers");
    }
    let trusted = trusted_peers(&resolver, &cfg.sip.trusted_peers).await;

    let limits = Limits {
        max_message_size: cfg.sip.limits.max_message_size,
        max_headers: cfg.sip.limits.max_headers,
        max_header_len: cfg.sip.limits.max_header_len,
    };
    let tcp_settings = TcpSettings {
        limits,
        idle_timeout: Duration::from_secs(cfg.sip.limits.tcp_idle_timeout_secs),
        unproven_idle_timeout: Duration::from_secs(
            cfg.sip
                .limits
                .tcp_unproven_idle_timeout_secs
                .min(cfg.sip.limits.tcp_idle_timeout_secs),
        ),
        message_timeout: Duration::from_secs(cfg.sip.limits.tcp_message_timeout_secs),
    };
    let transports = CancellationToken::new();
    let (inbound_tx, inbound) = mpsc::channel(8192);
    let mut tasks = JoinSet::new();
    let mut bound = Bound::default();
    let mut udp_sockets = Vec::new();
    for addr in &cfg.sip.listen_udp {
        let sock = UdpSocket::bind(addr)
            .await
            .with_context(|| format!("cannot listen on udp {addr}"))?;
        let local = sock.local_addr()?;
        let sock = Arc::new(sock);
        udp_sockets.push((local, sock.clone()));
        bound.udp.push(local);
        tasks.spawn(udp::receive(
            sock,
            local,
            limits,
            inbound_tx.clone(),
            transports.clone(),
        ));
    }
    let l = &cfg.sip.limits;
    let limiter = ConnLimiter::new(
        ConnLimits {
            max_total: l.max_tcp_connections,
            reserved_for_trusted: l.tcp_reserved_for_trusted.min(l.max_tcp_connections / 2),
            per_source: l.tcp_max_connections_per_source,
        },
        trusted.clone(),
    );
    for addr in &cfg.sip.listen_tcp {
        // Same port as UDP when the config says port 0 for both.
        let addr = match (addr.port(), bound.udp.iter().find(|u| u.ip() == addr.ip())) {
            (0, Some(u)) => SocketAddr::new(addr.ip(), u.port()),
            _ => *addr,
        };
        let listener = tcp_listener(addr, l.tcp_listen_backlog)
            .with_context(|| format!("cannot listen on tcp {addr}"))?;
        bound.tcp.push(listener.local_addr()?);
        tasks.spawn(tcp::listen(
            listener,
            tcp_settings,
            limiter.clone(),
            inbound_tx.clone(),
            transports.clone(),
        ));
    }

    let tls = if cfg.sip.listen_tls.is_empty()
        && cfg.sip.tls.cert_file.is_none()
        && cfg.sip.tls.ca_file.is_none()
    {
        None
    } else {
        Some(crate::transport::tls::TlsContext::load(&cfg.sip.tls).context("[sip.tls]")?)
    };
    for addr in &cfg.sip.listen_tls {
        let Some(ctx) = tls.clone() else { break };
        let listener = tcp_listener(*addr, l.tcp_listen_backlog)
            .with_context(|| format!("cannot listen on tls {addr}"))?;
        bound.tls.push(listener.local_addr()?);
        tasks.spawn(crate::transport::tls::listen(
            listener,
            ctx,
            tcp_settings,
            limiter.clone(),
            inbound_tx.clone(),
            transports.clone(),
        ));
    }

    if let Some(ctx) = tls.clone() {
        tasks.spawn(crate::transport::tls::reload_on_hangup(
            ctx,
            cfg.sip.tls.clone(),
            transports.clone(),
        ));
    }

    let trunk_target = crate::trunk::TrunkTarget::default();
    if let Some(trunk) = &cfg.trunk {
        if let Err(e) = trunk_target.refresh(&resolver, &trunk.uri).await {
            tracing::warn!(trunk = %trunk.uri, error = %e, "cannot resolve the trunk yet");
        }
    }

    let now = Instant::now();
    let mut endpoint = Endpoint::new(endpoint_config(&cfg, trusted, advertise), now, unix_ms());
    endpoint.load_bindings(now, bindings);

    let (cmd_tx, cmd_rx) = mpsc::channel(16_384);
    let (ev_tx, ev_rx) = mpsc::channel(65_536);
    let (reply_tx, reply_rx) = mpsc::channel(64);
    let media_threads = match cfg.media.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    crate::media::threads::install(media_threads, cfg.media.realtime_priority)
        .context("starting the media threads")?;
    // `[sip] advertise` also stands for the media address (same family as rtp_ip).
    let sdp_ip = advertise
        .map(|a| a.ip)
        .filter(|ip| ip.is_ipv4() == cfg.media.rtp_ip.is_ipv4())
        .unwrap_or(cfg.media.rtp_ip);
    let pool = PortPool::advertised(
        cfg.media.rtp_ip,
        sdp_ip,
        cfg.media.rtp_port_min..=cfg.media.rtp_port_max,
    )
    .context("[media] RTP port range")?;
    let (stats_tx, stats_rx) = tokio::sync::watch::channel(live.snapshot(unix_ms()));
    let (control_tx, control_rx) = mpsc::channel(256);
    let api = crate::api::ApiState::new(
        &cfg.api,
        cfg.agents
            .iter()
            .map(|a| (a.id.clone(), a.name.clone()))
            .collect(),
        control_tx,
        store.clone(),
        stats_rx,
    )
    .with_reports(&cfg);
    let (call_events_tx, mut call_events_rx) = mpsc::channel(8192);
    let publisher = api.clone();
    let live_calls = std::sync::Arc::new(crate::web::Live::new());
    let web_live = live_calls.clone();
    tasks.spawn(async move {
        while let Some(ev) = call_events_rx.recv().await {
            web_live.observe(&ev, unix_ms());
            publisher.publish(ev);
        }
    });
    if let Some(m) = metrics {
        let admin = TcpListener::bind(cfg.admin.listen)
            .await
            .with_context(|| format!("cannot listen on admin address {}", cfg.admin.listen))?;
        bound.admin = Some(admin.local_addr()?);
        let api_router = crate::api::router(api.clone());
        let router = api_router
            .clone()
            .merge(crate::web::router(&cfg, api, api_router, live_calls));
        tasks.spawn(crate::admin::serve(admin, m, router, transports.clone()));
    }
    let (mut call_settings, engine) = CallSettings::from_config(
        &cfg,
        bound.udp.clone(),
        advertise,
        crate::clock::Now::read(),
    )
    .map_err(|e| anyhow::anyhow!("queues: {e}"))?;
    call_settings.local_tls = bound
        .tls
        .iter()
        .map(|a| match advertise {
            Some(adv) if adv.ip.is_ipv4() == a.is_ipv4() => SocketAddr::new(adv.ip, a.port()),
            _ => *a,
        })
        .collect();
    // Recordings cut short by a crash get a valid WAV header again (off the executor).
    let rec_dir = call_settings.media.recordings_dir().to_path_buf();
    tokio::task::spawn_blocking(move || {
        if !rec_dir.is_dir() {
            return;
        }
        for r in crate::media::recorder::repair_partial_recordings(&rec_dir) {
            match r.outcome {
                crate::media::recorder::RepairOutcome::Repaired { data_bytes, .. } => {
                    tracing::warn!(path = %r.path.display(), data_bytes, "partial recording repaired")
                }
                crate::media::recorder::RepairOutcome::Failed(e) => {
                    tracing::error!(path = %r.path.display(), error = %e, "partial recording could not be repaired")
                }
            }
        }
    })
    .await?;
    let outbound = cfg.outbound.enabled.then(|| crate::call::OutboundSettings {
        trunk_target: trunk_target.clone(),
        ..crate::call::OutboundSettings::from_config(&cfg, store.clone())
    });
    let mut calls = CallManager::new(
        call_settings,
        engine,
        pool,
        cmd_tx.clone(),
        writer.sender.clone(),
        reply_tx,
        first_call_id,
        live_bindings,
        transports.child_token(),
        live,
        stats_tx,
        crate::clock::Now::read(),
    );
    if let Some(settings) = outbound {
        calls = calls.with_outbound(settings);
    }
    tasks.spawn(
        calls
            .with_event_stream(call_events_tx)
            .run(ev_rx, control_rx, shutdown.clone()),
    );
    if let Some(trunk) = cfg.trunk.clone() {
        tasks.spawn(crate::trunk::qualify(
            trunk,
            trunk_target.clone(),
            resolver.clone(),
            cmd_tx.clone(),
            reply_rx,
            shutdown.clone(),
        ));
    }
    tasks.spawn(crate::outbound_metrics::refresh_outbound_gauges(
        store.clone(),
        cfg.outbound.clone(),
        crate::outbound_metrics::REFRESH_INTERVAL,
        shutdown.clone(),
    ));
    drop(cmd_tx);

    let driver = SipDriver {
        endpoint,
        udp: udp_sockets,
        tcp_settings,
        tls: tls.clone(),
        tls_local: bound.tls.clone(),
        inbound_tx,
        inbound,
        commands: cmd_rx,
        events: ev_tx,
        store: writer.sender.clone(),
        shutdown,
        transports: transports.clone(),
        grace: Duration::from_secs(cfg.daemon.shutdown_grace_secs),
        overload: OverloadLimits {
            max_pending_events: cfg.sip.overload.max_pending_events,
            max_loop_lag: Duration::from_millis(cfg.sip.overload.max_loop_lag_ms),
            max_media_cpu_percent: cfg.sip.overload.max_media_cpu_percent,
        },
    };
    tracing::info!(udp = ?bound.udp, tcp = ?bound.tcp, tls = ?bound.tls, admin = ?bound.admin, "ctid ready");
    if let Some(r) = ready {
        let _ = r.send(bound);
    }
    driver.run().await;
    // The driver is gone: socket tasks were cancelled, the TU sees its queue close.
    transports.cancel();
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(2), drain)
        .await
        .is_err()
    {
        tracing::warn!("some tasks did not stop in time");
    }
    if let Some((stop, handle)) = retention {
        let _ = stop.send(());
        let _ = tokio::task::spawn_blocking(move || handle.join()).await;
    }
    // The writer finishes once every sender is gone: ours too.
    drop(store);
    tokio::task::spawn_blocking(move || writer.join()).await?;
    tracing::info!("ctid stopped");
    Ok(())
}
