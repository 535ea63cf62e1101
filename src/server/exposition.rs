//! `/metrics`: the server's counters, gauges and histograms, with the
//! state read at scrape time, in Prometheus text format (0.0.4) by
//! prometheus-client; the counters themselves live in `super::metrics`.

use super::metrics::{child, Labeled, Metrics};
use super::player_limits::{Budget, Whose};
use super::state::Shared;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::{Metric, Registry};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;

/// One registry's `register`, with the help text written whole: the
/// registry adds the closing full stop itself.
fn add(registry: &mut Registry, name: &str, help: &str, metric: impl Metric) {
    registry.register(name, help.strip_suffix('.').unwrap_or(help), metric);
}

/// A counter whose value is read at the scrape. `name` lacks `_total`: the
/// encoder adds it.
fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    add(registry, name, help, ConstCounter::new(value));
}

/// A gauge read at the scrape.
fn gauge(registry: &mut Registry, name: &str, help: &str, value: impl TryInto<i64>) {
    let value = value.try_into().unwrap_or(i64::MAX);
    add(registry, name, help, ConstGauge::new(value));
}

/// Every metric, read now. Built per scrape, because most figures are read
/// from state at this instant (the gauges, quinn's stats, the cluster's and
/// the hooks' counters, /proc); the hot-path counters join by handle, a
/// clone sharing their atomic.
///
/// `whole`: this server speaks for its process too. Each worker of a
/// process of several renders its own part, summed by
/// [`render_process`]; what the workers share (handshakes, the limits per
/// player) and what is the process's own (/proc, the auth mode) only the
/// first worker's part holds, so that it is counted once.
fn registry(shared: &Shared, whole: bool) -> Registry {
    let m = &shared.metrics;
    let mut root = Registry::default();
    let partyline = root.sub_registry_with_prefix("partyline");
    gauge(
        partyline,
        "sessions",
        "Sessions alive, connected or in their grace window.",
        shared.session_count(),
    );
    gauge(partyline, "parties", "Parties alive.", shared.table.len());
    gauge(
        partyline,
        "parties_listed",
        "Parties listed for search.",
        shared.table.listed(),
    );
    gauge(
        partyline,
        "matchmaking_tickets",
        "Matchmaking tickets waiting.",
        shared.matchmaking.waiting(),
    );
    gauge(
        partyline,
        "join_codes",
        "Live join codes.",
        shared.table.join_codes(),
    );
    if whole {
        add_process_wide(partyline, shared);
    }
    add(
        partyline,
        "sessions",
        "Sessions started, and taken back by resume.",
        m.sessions.clone(),
    );
    add(
        partyline,
        "commands",
        "Control commands received.",
        m.commands.clone(),
    );
    add(
        partyline,
        "data",
        "Party data messages in and out.",
        m.data.clone(),
    );
    add(
        partyline,
        "dropped",
        "Messages not forwarded or refused, by cause.",
        m.dropped.clone(),
    );
    add(
        partyline,
        "coalesce_dropped",
        "Outgoing datagrams dropped, oldest first, from a recipient's full coalescing buffer (--coalesce-us).",
        m.coalesce_dropped.clone(),
    );
    add(
        partyline,
        "coalesce_batches",
        "Per-recipient datagram batches sent by the coalescing flusher; datagrams out per batch is the coalescing achieved.",
        m.coalesce_batches.clone(),
    );
    add(
        partyline,
        "disconnects",
        "Sessions cut off by the server, by cause.",
        m.disconnects.clone(),
    );
    add_mutes_and_blocks(partyline, m);
    add_hooks_and_nodes(partyline, shared);
    add(
        partyline,
        "refusals",
        "Connections refused or challenged at admission, by cause: a Hello refused (unauthenticated, version_mismatch, resume_refused, malformed_hello, no_hello, other_hello), the server full, a user or an address with the most sessions allowed (sessions_per_user, sessions_per_address), too many handshakes, a Retry asked for, or a browser session refused before Hello (webtransport: a path or origin not allowed).",
        m.refusals.clone(),
    );
    add_player_limits(partyline, shared, whole);
    add_transport(partyline, m);
    add(
        partyline,
        "command_seconds",
        "Time to handle one control command: decoded to answered, its events queued.",
        m.command_seconds.snapshot(),
    );
    add(
        partyline,
        "datagram_fan_out",
        "Recipients of one party datagram.",
        m.fan_out.snapshot(),
    );
    if whole {
        add_process(root.sub_registry_with_prefix("process"));
    }
    root
}

/// What is the process's once, however many workers it has: the
/// handshakes in progress (counted together) and the auth mode.
fn add_process_wide(partyline: &mut Registry, shared: &Shared) {
    gauge(
        partyline,
        "handshakes_in_progress",
        "QUIC handshakes in progress.",
        shared.handshakes.load(Ordering::Relaxed),
    );
    gauge(
        partyline,
        "dev_identities_allowed",
        "1 when clients may name themselves (dev identities, no token secret): nothing proves who they are.",
        i64::from(matches!(shared.config.auth, super::config::AuthMode::Dev)),
    );
}

/// What mutes and blocks did: set, lifted, and what they held back.
fn add_mutes_and_blocks(partyline: &mut Registry, m: &Metrics) {
    add(
        partyline,
        "data_withheld",
        "Party data not forwarded to a member because it muted the sender or shares a block with it (one per member left out).",
        m.data_withheld.clone(),
    );
    add(
        partyline,
        "mutes",
        "Mutes set and lifted, by action (mute: a member muted another, or changed the op codes; unmute).",
        m.mutes.clone(),
    );
    add(
        partyline,
        "block_lists_set",
        "Block lists changed, by whom: the session's own Block or Unblock, or the game's server (its API or hook).",
        m.block_lists.clone(),
    );
    add(
        partyline,
        "joins_blocked",
        "Joins answered as a party that does not exist because its leader blocks the joiner.",
        m.joins_blocked.clone(),
    );
}

/// The hooks' failures and the cluster's traffic, when there are hooks
/// and other nodes.
fn add_hooks_and_nodes(partyline: &mut Registry, shared: &Shared) {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    if let Some(hooks) = &shared.hooks {
        counter(
            partyline,
            "hook_failures",
            "Hook calls that panicked, ran out of time or answered with another kind of command.",
            get(&hooks.failures),
        );
        counter(
            partyline,
            "hook_after_events_dropped",
            "After-hook events dropped because the after-hook queue was full.",
            get(&hooks.after_dropped),
        );
    }
    let route = shared.route();
    // Workers are nodes of the process's own hub, not of a cluster: their
    // traffic is in the partyline_worker_* families instead.
    if route.clustered() && shared.worker.is_none() {
        gauge(
            partyline,
            "cluster_link_up",
            "1 while this node's NATS link is up.",
            i64::from(route.link_is_up()),
        );
        gauge(
            partyline,
            "cluster_peers",
            "Other nodes this node hears now.",
            route.peer_names().len(),
        );
        gauge(
            partyline,
            "cluster_remote_members",
            "Members on other nodes of parties homed here.",
            route.proxy_count(),
        );
        let c = route.peers().metrics();
        for (name, help, value) in [
            ("cluster_control_messages_out", "Control messages (commands, replies, event batches, membership) queued for other nodes.", &c.control_out),
            ("cluster_control_messages_in", "Control messages received from other nodes.", &c.control_in),
            ("cluster_datagram_messages_out", "Party data messages queued for other nodes (one per datagram per node).", &c.datagram_messages_out),
            ("cluster_datagram_messages_in", "Party data messages received from other nodes.", &c.datagram_messages_in),
            ("cluster_bytes_out", "Bytes of cluster messages queued for NATS.", &c.bytes_out),
            ("cluster_bytes_in", "Bytes of cluster messages received from NATS.", &c.bytes_in),
            ("cluster_control_dropped", "Control messages dropped because the publish queue was full (NATS down or far behind).", &c.dropped_control),
            ("cluster_datagrams_dropped", "Party data messages dropped because the publish queue was full.", &c.dropped_datagrams),
            ("cluster_commands_forwarded", "Commands forwarded to the party's home node.", &c.forwarded),
            ("cluster_unavailable", "Forwarded commands answered Unavailable (link down, or no answer in time).", &c.unavailable),
            ("cluster_nodes_lost", "Nodes judged lost (silent, restarted, or left).", &c.nodes_lost),
            ("cluster_undecodable", "Cluster messages dropped undecoded (another build?).", &c.undecodable),
            ("cluster_stale_dropped", "Control messages of (or for) a node incarnation no longer current, dropped: late ones of a node judged lost, or meant for one.", &c.stale),
            ("cluster_rejoins", "Times this node learned that the others judged it lost, dropped its ties to them and joined again as a new incarnation.", &c.rejoins),
        ] {
            counter(partyline, name, help, get(value));
        }
    }
}

/// The limits per user and per address: refusals, the guessing alarm, and
/// the keys tracked (the process's, so with `whole` only).
fn add_player_limits(partyline: &mut Registry, shared: &Shared, whole: bool) {
    let m = &shared.metrics;
    add(
        partyline,
        "join_code_failures",
        "Join-code attempts that named no live party (guesses, and typos).",
        m.join_code_failures.clone(),
    );
    add(
        partyline,
        "player_limited",
        "Commands refused by a budget of their user or of their address, by key and budget.",
        m.player_limited.clone(),
    );
    if !whole {
        return;
    }
    let now = tokio::time::Instant::now().into_std();
    let (guessers, tracked) = {
        let players = shared.players();
        (
            players.spent(Budget::JoinCodeFailures, now),
            players.tracked(),
        )
    };
    let by_key = |figures: [(Whose, usize); 2]| {
        let family = Family::<[(&'static str, &'static str); 1], Gauge>::default();
        for (whose, value) in figures {
            let value = i64::try_from(value).unwrap_or(i64::MAX);
            family.get_or_create(&[("key", whose.label())]).set(value);
        }
        family
    };
    add(
        partyline,
        "join_code_guessers",
        "Users and addresses whose join-code failure budget is spent now: the guessing alarm.",
        by_key(guessers),
    );
    add(
        partyline,
        "limit_keys",
        "Users and addresses whose budgets are tracked now (at most --max-sessions of each, and at least 1024; idle ones go first).",
        by_key(tracked),
    );
}

/// quinn's counters, summed over the admitted connections.
fn add_transport(partyline: &mut Registry, m: &Metrics) {
    let t = m.transport.totals();
    gauge(
        partyline,
        "transport_connections",
        "QUIC connections carrying an admitted session (sessions in their grace window have none).",
        m.transport.live(),
    );
    let udp = Labeled::<1>::default();
    child(&udp, [("direction", "out")]).inc_by(t.udp_datagrams_sent);
    child(&udp, [("direction", "in")]).inc_by(t.udp_datagrams_received);
    add(
        partyline,
        "transport_udp_datagrams",
        "UDP datagrams of admitted QUIC connections, by direction.",
        udp,
    );
    counter(
        partyline,
        "transport_packets_sent",
        "QUIC packets sent to admitted connections.",
        t.packets_sent,
    );
    counter(
        partyline,
        "transport_packets_lost",
        "QUIC packets sent to admitted connections and declared lost.",
        t.packets_lost,
    );
    counter(
        partyline,
        "transport_bytes_lost",
        "Bytes of QUIC packets declared lost.",
        t.bytes_lost,
    );
    counter(
        partyline,
        "transport_congestion_events",
        "Congestion events (the window cut) on admitted connections.",
        t.congestion_events,
    );
    add(
        partyline,
        "transport_datagrams_handed",
        "Party datagrams handed to quinn to send (after coalescing).",
        m.datagrams_handed.clone(),
    );
    counter(
        partyline,
        "transport_datagram_frames_sent",
        "DATAGRAM frames sent, the server's keep-alives (empty datagrams) included. Above transport_datagrams_handed_total by the keep-alives, below it by what waits in quinn's queue and by what it dropped when that queue overflowed.",
        t.datagram_frames_sent,
    );
    add(
        partyline,
        "quality_reports",
        "Connection quality scores told to the parties of their sessions: a connection's first, one after a new seat, and one that moved by a quarter (a message to each other node that homes one of its parties).",
        m.quality_reports.clone(),
    );
}

/// The usual process_* metrics, read from /proc/self (Linux only).
#[cfg(target_os = "linux")]
fn add_process(process: &mut Registry) {
    let Ok(me) = procfs::process::Process::myself() else {
        return;
    };
    if let Ok(stat) = me.stat() {
        let ticks = (procfs::ticks_per_second() as f64).max(1.0);
        let cpu = (stat.utime + stat.stime) as f64 / ticks;
        add(
            process,
            "cpu_seconds",
            "User and system CPU time.",
            ConstCounter::new(cpu),
        );
        let rss = stat.rss.saturating_mul(procfs::page_size());
        gauge(process, "resident_memory_bytes", "Resident memory.", rss);
        gauge(process, "threads", "OS threads.", stat.num_threads);
        if let Ok(boot) = procfs::boot_time_secs() {
            let start = boot as f64 + stat.starttime as f64 / ticks;
            add(
                process,
                "start_time_seconds",
                "Start time, Unix seconds.",
                ConstGauge::new(start),
            );
        }
    }
    if let Ok(fds) = me.fd_count() {
        gauge(process, "open_fds", "Open file descriptors.", fds);
    }
}

#[cfg(not(target_os = "linux"))]
fn add_process(_process: &mut Registry) {}

/// The Prometheus text exposition (format 0.0.4) of every metric: the
/// whole process's, when this server is one of its workers.
pub(crate) fn render(shared: &Shared) -> Result<String, std::fmt::Error> {
    if let Some(workers) = shared.workers() {
        return render_process(&workers);
    }
    let mut out = String::new();
    prometheus_text::encode(&mut out, &registry(shared, true))?;
    Ok(out)
}

/// The workers' parts summed, sample by sample (a counter, a gauge, a
/// histogram's buckets, sum and count alike), then the families that tell
/// the workers apart.
fn render_process(workers: &[Arc<Shared>]) -> Result<String, std::fmt::Error> {
    let mut parts = Vec::with_capacity(workers.len() + 1);
    for (index, worker) in workers.iter().enumerate() {
        let mut part = String::new();
        prometheus_text::encode(&mut part, &registry(worker, index == 0))?;
        parts.push(part);
    }
    let mut own = String::new();
    prometheus_text::encode(&mut own, &per_worker(workers))?;
    parts.push(own);
    Ok(sum_expositions(&parts))
}

/// Labels of one worker's figure.
type WorkerLabels = Vec<(&'static str, String)>;

/// The families that tell the workers of a process apart.
fn per_worker(workers: &[Arc<Shared>]) -> Registry {
    let mut root = Registry::default();
    let partyline = root.sub_registry_with_prefix("partyline");
    gauge(
        partyline,
        "workers",
        "Workers serving (--workers): threads, each with its own runtime and socket.",
        workers.len(),
    );
    type Counters = Family<WorkerLabels, prometheus_client::metrics::counter::Counter>;
    let sessions = Family::<WorkerLabels, Gauge>::default();
    // Each its own: a family's clone shares its figures.
    let (unknown, messages, dropped) = (
        Counters::default(),
        Counters::default(),
        Counters::default(),
    );
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    for (index, worker) in workers.iter().enumerate() {
        let name = index.to_string();
        let labels = |pairs: &[(&'static str, &str)]| -> WorkerLabels {
            let mut labels = vec![("worker", name.clone())];
            labels.extend(pairs.iter().map(|(k, v)| (*k, v.to_string())));
            labels
        };
        let count = i64::try_from(worker.session_count()).unwrap_or(i64::MAX);
        sessions.get_or_create(&labels(&[])).set(count);
        if let Some(place) = &worker.worker {
            let u = &place.unknown;
            for (named, value) in [
                ("this_worker", &u.this_worker),
                ("another_worker", &u.other_worker),
            ] {
                unknown
                    .get_or_create(&labels(&[("named", named)]))
                    .inc_by(get(value));
            }
        }
        let hub = worker.route().peers().metrics();
        for (lane, sent, lost) in [
            ("control", &hub.control_out, &hub.dropped_control),
            ("data", &hub.datagram_messages_out, &hub.dropped_datagrams),
        ] {
            messages
                .get_or_create(&labels(&[("lane", lane)]))
                .inc_by(get(sent));
            dropped
                .get_or_create(&labels(&[("lane", lane)]))
                .inc_by(get(lost));
        }
    }
    add(
        partyline,
        "worker_sessions",
        "Sessions alive on each worker.",
        sessions,
    );
    add(
        partyline,
        "worker_unknown_connection_packets",
        "Packets that reached a worker for a connection it does not know, by the worker their connection id names: this one (a connection that ended, or a node's that died) or another (steered wrong: never, while steering works).",
        unknown,
    );
    add(
        partyline,
        "worker_messages",
        "Messages a worker sent to the others, by lane: control (commands, replies, events, membership) and data (one per party datagram per worker with recipients).",
        messages,
    );
    add(
        partyline,
        "worker_messages_dropped",
        "Messages between workers dropped because the receiving worker's lane was full.",
        dropped,
    );
    root
}

/// A sample's value, kept whole while every part's is.
#[derive(Clone, Copy)]
enum Value {
    Whole(i128),
    Real(f64),
}

impl Value {
    fn parse(text: &str) -> Option<Value> {
        match text.parse::<i128>() {
            Ok(whole) => Some(Value::Whole(whole)),
            Err(_) => text.parse::<f64>().ok().map(Value::Real),
        }
    }

    fn add(self, other: Value) -> Value {
        match (self, other) {
            (Value::Whole(a), Value::Whole(b)) => Value::Whole(a.saturating_add(b)),
            (a, b) => Value::Real(a.real() + b.real()),
        }
    }

    fn real(self) -> f64 {
        match self {
            Value::Whole(whole) => whole as f64,
            Value::Real(real) => real,
        }
    }
}

/// One family of a text exposition: its comment lines, its samples.
#[derive(Default)]
struct SummedFamily {
    header: Vec<String>,
    samples: Vec<(String, Value)>,
    at: std::collections::HashMap<String, usize>,
}

/// Text expositions (format 0.0.4, as prometheus-client writes them)
/// summed: each family once, in the order first seen, its header from the
/// first part that has it, each sample (name and labels) the sum of its
/// values in every part.
fn sum_expositions(parts: &[String]) -> String {
    let mut families: Vec<SummedFamily> = Vec::new();
    let mut by_name = std::collections::HashMap::<String, usize>::new();
    for part in parts {
        let mut current: Option<(usize, bool)> = None;
        for line in part.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap_or_default().to_string();
                let fresh = !by_name.contains_key(&name);
                let index = *by_name.entry(name).or_insert_with(|| {
                    families.push(SummedFamily::default());
                    families.len() - 1
                });
                current = Some((index, fresh));
            }
            let Some((index, fresh)) = current else {
                continue;
            };
            let family = &mut families[index];
            if line.starts_with('#') {
                if fresh {
                    family.header.push(line.to_string());
                }
                continue;
            }
            let Some((key, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Some(value) = Value::parse(value) else {
                continue;
            };
            match family.at.get(key) {
                Some(&at) => family.samples[at].1 = family.samples[at].1.add(value),
                None => {
                    family.at.insert(key.to_string(), family.samples.len());
                    family.samples.push((key.to_string(), value));
                }
            }
        }
    }
    let mut out = String::new();
    for family in families {
        for line in family.header {
            out.push_str(&line);
            out.push('\n');
        }
        for (key, value) in family.samples {
            let value = match value {
                Value::Whole(whole) => whole.to_string(),
                Value::Real(real) => format!("{real:?}"),
            };
            out.push_str(&key);
            out.push(' ');
            out.push_str(&value);
            out.push('\n');
        }
    }
    out
}

/// The `/metrics` route alone: served by [`serve`], or on the admin API's
/// listener when both share an address (without the admin token).
///
/// The Prometheus text format 0.0.4, whatever the request's Accept header:
/// every Prometheus reads it, and OpenMetrics could not carry today's
/// names (its counter `partyline_sessions_total` is the family
/// `partyline_sessions`, which the gauge of that name already is).
pub(crate) fn router(shared: Arc<Shared>) -> axum::Router {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::get;
    axum::Router::new().route(
        "/metrics",
        get(move || {
            let shared = shared.clone();
            async move {
                match render(&shared) {
                    Ok(text) => (
                        [(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)],
                        text,
                    )
                        .into_response(),
                    Err(error) => {
                        tracing::error!(%error, "the metrics could not be encoded");
                        (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "the metrics could not be encoded\n",
                        )
                            .into_response()
                    }
                }
            }
        }),
    )
}

/// Serves `GET /metrics` until the server stops; any other path is 404.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    use axum::http::StatusCode;
    let app = router(shared).fallback(|| async {
        (
            StatusCode::NOT_FOUND,
            "not found: the metrics are at /metrics\n",
        )
    });
    // axum's accept loop backs off by itself when accepting fails (out of
    // file descriptors, say) instead of spinning.
    if let Err(error) = axum::serve(listener, app).await {
        tracing::error!(%error, "metrics endpoint stopped");
    }
}
