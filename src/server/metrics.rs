//! Counters for operators, served as Prometheus text on `--metrics ADDR`.
//! Relaxed atomics: a counter costs one uncontended add on the hot path.

use super::Shared;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) sessions_started: AtomicU64,
    pub(crate) sessions_resumed: AtomicU64,
    pub(crate) commands: AtomicU64,
    pub(crate) datagrams_in: AtomicU64,
    pub(crate) datagrams_out: AtomicU64,
    pub(crate) reliable_data_in: AtomicU64,
    /// Commands refused and datagrams dropped by the rate limits.
    pub(crate) dropped_rate_limited: AtomicU64,
    pub(crate) dropped_oversize: AtomicU64,
    pub(crate) dropped_not_member: AtomicU64,
    pub(crate) slow_consumers: AtomicU64,
    pub(crate) refused_hello: AtomicU64,
    pub(crate) refused_server_full: AtomicU64,
    pub(crate) refused_handshake_cap: AtomicU64,
    pub(crate) retries_sent: AtomicU64,
    pub(crate) rate_limit_disconnects: AtomicU64,
    /// Outgoing datagrams dropped, oldest first, from a recipient's full
    /// coalescing buffer.
    pub(crate) coalesce_dropped: AtomicU64,
    /// Per-recipient batches the coalescing flusher handed to quinn.
    pub(crate) coalesce_batches: AtomicU64,
}

pub(crate) fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The Prometheus text exposition of every counter and gauge.
pub(crate) fn render(shared: &Shared) -> String {
    let m = &shared.metrics;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, labels: &[(&str, u64)]| {
        let _ = writeln!(
            out,
            "# HELP partyline_{name} {help}\n# TYPE partyline_{name} {kind}"
        );
        for (label, value) in labels {
            let _ = writeln!(out, "partyline_{name}{label} {value}");
        }
    };
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    metric(
        "sessions",
        "gauge",
        "Sessions alive, connected or in their grace window.",
        &[("", shared.session_count() as u64)],
    );
    metric(
        "parties",
        "gauge",
        "Parties alive.",
        &[("", shared.table.len() as u64)],
    );
    metric(
        "handshakes_in_progress",
        "gauge",
        "QUIC handshakes in progress.",
        &[("", shared.handshakes.load(Ordering::Relaxed) as u64)],
    );
    metric(
        "dev_identities_allowed",
        "gauge",
        "1 when clients may name themselves (dev identities, no token secret): nothing proves who they are.",
        &[(
            "",
            u64::from(matches!(shared.config.auth, super::AuthMode::Dev)),
        )],
    );
    metric(
        "sessions_total",
        "counter",
        "Sessions started, and taken back by resume.",
        &[
            ("{kind=\"new\"}", get(&m.sessions_started)),
            ("{kind=\"resumed\"}", get(&m.sessions_resumed)),
        ],
    );
    metric(
        "commands_total",
        "counter",
        "Control commands received.",
        &[("", get(&m.commands))],
    );
    metric(
        "data_total",
        "counter",
        "Party data messages in and out.",
        &[
            ("{direction=\"in\",path=\"datagram\"}", get(&m.datagrams_in)),
            (
                "{direction=\"out\",path=\"datagram\"}",
                get(&m.datagrams_out),
            ),
            (
                "{direction=\"in\",path=\"reliable\"}",
                get(&m.reliable_data_in),
            ),
        ],
    );
    metric(
        "dropped_total",
        "counter",
        "Messages not forwarded or refused, by cause.",
        &[
            ("{cause=\"rate_limit\"}", get(&m.dropped_rate_limited)),
            ("{cause=\"oversize\"}", get(&m.dropped_oversize)),
            ("{cause=\"not_member\"}", get(&m.dropped_not_member)),
        ],
    );
    metric(
        "coalesce_dropped_total",
        "counter",
        "Outgoing datagrams dropped, oldest first, from a recipient's full coalescing buffer (--coalesce-us).",
        &[("", get(&m.coalesce_dropped))],
    );
    metric(
        "coalesce_batches_total",
        "counter",
        "Per-recipient datagram batches sent by the coalescing flusher; datagrams out per batch is the coalescing achieved.",
        &[("", get(&m.coalesce_batches))],
    );
    metric(
        "disconnects_total",
        "counter",
        "Sessions cut off by the server, by cause.",
        &[
            ("{cause=\"slow_consumer\"}", get(&m.slow_consumers)),
            ("{cause=\"rate_limit\"}", get(&m.rate_limit_disconnects)),
        ],
    );
    metric(
        "refusals_total",
        "counter",
        "Connections refused or challenged at admission, by cause.",
        &[
            ("{cause=\"hello\"}", get(&m.refused_hello)),
            ("{cause=\"server_full\"}", get(&m.refused_server_full)),
            ("{cause=\"handshake_cap\"}", get(&m.refused_handshake_cap)),
            ("{cause=\"retry\"}", get(&m.retries_sent)),
        ],
    );
    out
}

/// Serves `GET /metrics` (any path, in fact) until the server stops.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            // Read the request head (bounded); its content does not matter.
            let mut head = [0u8; 4096];
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), stream.read(&mut head))
                .await;
            let body = render(&shared);
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}
