//! The transport reference: a bare quinn datagram relay with no party
//! logic, no sessions, no control stream. Connections are grouped in
//! accept order; each datagram goes to the other members of its group, as
//! in a party (group size 1 echoes it back to the sender).
//!
//! It is held to everything partyline's data path shares with it, so the
//! difference between the two is party logic alone: the same QUIC
//! settings and 4 MiB socket buffers (`partyline::server::bind_endpoint`),
//! the same bytes on the wire (partyline's datagram header, decoded and
//! re-encoded with the sender's id stamped in), and on the generator's side
//! the same timetable, the same receive path shape (a reader per
//! connection handing decoded data through a bounded queue to a consumer)
//! and the same accounting.

use super::{window, BareFigures, Quantiles, SOCKET_BUFFER};
use crate::measure::{Clock, Tally};
use bytes::Bytes;
use partyline::server::{bind_endpoint, quinn_server_config, ServerConfig, ServerError};
use partyline_client::{shared_endpoint, ClientConfig};
use partyline_protocol::{
    decode_client_datagram, decode_server_datagram, encode_client_datagram, encode_server_datagram,
    PartyId, SessionId,
};
use rustls::pki_types::CertificateDer;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Binds the bare relay's endpoint, with partyline's QUIC settings and
/// socket buffers. Must be called inside a tokio runtime.
pub fn bind_bare_relay(config: &ServerConfig) -> Result<quinn::Endpoint, ServerError> {
    bind_endpoint(quinn_server_config(config)?, config)
}

/// Serves the bare relay on `endpoint` until the endpoint closes.
pub async fn serve_bare_relay(endpoint: quinn::Endpoint, group_size: usize) {
    if let Ok(addr) = endpoint.local_addr() {
        tracing::info!(%addr, group_size, "bare quinn relay listening");
    }
    let groups: Arc<RwLock<Vec<Vec<quinn::Connection>>>> = Arc::default();
    let accepted = Arc::new(Mutex::new(0usize));
    while let Some(incoming) = endpoint.accept().await {
        let (groups, accepted) = (groups.clone(), accepted.clone());
        tokio::spawn(async move {
            let Ok(connection) = incoming.await else {
                return;
            };
            let group = {
                let mut count = accepted.lock().unwrap_or_else(PoisonError::into_inner);
                let group = *count / group_size.max(1);
                *count += 1;
                let mut groups = groups.write().unwrap_or_else(PoisonError::into_inner);
                if groups.len() <= group {
                    groups.resize_with(group + 1, Vec::new);
                }
                groups[group].push(connection.clone());
                group
            };
            let me = connection.stable_id();
            let sender = SessionId::random();
            let mut others = Vec::new();
            while let Ok(datagram) = connection.read_datagram().await {
                let Ok(data) = decode_client_datagram(datagram) else {
                    continue;
                };
                let outgoing =
                    encode_server_datagram(data.party_id, sender, data.op_code, &data.payload);
                {
                    let groups = groups.read().unwrap_or_else(PoisonError::into_inner);
                    others.extend(
                        groups[group]
                            .iter()
                            .filter(|c| group_size <= 1 || c.stable_id() != me)
                            .cloned(),
                    );
                }
                for other in others.drain(..) {
                    let _ = other.send_datagram(outgoing.clone());
                }
            }
        });
    }
}

/// The same load as a partyline run, against a bare relay.
#[derive(Clone, Debug)]
pub struct BareLoad {
    pub server: SocketAddr,
    pub certs: Vec<CertificateDer<'static>>,
    pub sessions: usize,
    /// Connections per relay group: the party size.
    pub group_size: usize,
    pub rate_hz: f64,
    pub payload: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub endpoints: usize,
    pub server_pid: Option<u32>,
    pub server_threads: usize,
    pub generator_threads: usize,
}

/// One connection's receive path: a reader decoding datagrams into a
/// bounded queue (dropping when full, as the SDK does), and a consumer
/// counting them.
fn receive(
    connection: quinn::Connection,
    clock: Clock,
    dropped: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<Tally> {
    let (tx, mut rx) = mpsc::channel::<Bytes>(super::EVENT_CAPACITY);
    tokio::spawn(async move {
        while let Ok(datagram) = connection.read_datagram().await {
            let Ok(data) = decode_server_datagram(datagram) else {
                continue;
            };
            if tx.try_send(data.payload).is_err() {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    tokio::spawn(async move {
        let mut tally = Tally::default();
        while let Some(payload) = rx.recv().await {
            tally.observe(&payload, clock.now_ns());
        }
        tally
    })
}

pub async fn measure(load: BareLoad) -> Result<BareFigures, String> {
    let template = ClientConfig::dev(load.server, load.certs.clone(), "x", "x");
    let endpoints = (0..load.endpoints.max(1))
        .map(|_| shared_endpoint(&template, Some(SOCKET_BUFFER)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    // Connect one by one, so accept order (and so grouping) is connect order.
    let mut connections = Vec::with_capacity(load.sessions);
    for index in 0..load.sessions {
        let endpoint = &endpoints[index % endpoints.len()];
        let connecting = endpoint
            .connect(load.server, "localhost")
            .map_err(|e| e.to_string())?;
        connections.push(connecting.await.map_err(|e| e.to_string())?);
    }
    let clock = Clock::start();
    let dropped = Arc::new(AtomicU64::new(0));
    let receivers: Vec<_> = connections
        .iter()
        .map(|connection| receive(connection.clone(), clock, dropped.clone()))
        .collect();
    let senders = if load.rate_hz > 0.0 {
        connections.len()
    } else {
        0
    };
    let table = super::timetable(clock, senders, load.rate_hz, load.warmup, load.duration);
    let window = {
        let connections = connections.clone();
        window::run(
            table,
            clock,
            load.payload,
            window::ServerProbe {
                pid: load.server_pid,
                metrics: None,
                metrics_interval: Duration::ZERO,
            },
            move |sender, message| {
                let datagram = encode_client_datagram(PartyId::nil(), 1, message);
                connections[sender].send_datagram(datagram).is_ok()
            },
        )
        .await
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut clients = super::ClientCounts::default();
    for connection in &connections {
        clients.add(&connection.stats());
    }
    for connection in &connections {
        connection.close(0u32.into(), b"done");
    }
    let mut tally = Tally::default();
    let mut joins: JoinSet<Tally> = JoinSet::new();
    for receiver in receivers {
        joins.spawn(async move { receiver.await.unwrap_or_default() });
    }
    while let Some(joined) = joins.join_next().await {
        if let Ok(own) = joined {
            tally.merge(&own);
        }
    }
    for endpoint in &endpoints {
        let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
    }
    let measured = super::window_report(
        &window,
        load.duration,
        load.server_threads,
        load.generator_threads,
    );
    let expected = measured.sends.sent * load.group_size.saturating_sub(1).max(1) as u64;
    clients.sdk_drops = dropped.load(Ordering::Relaxed);
    let generator_bound =
        super::report::generator_bound(&measured.sends, measured.generator.as_ref());
    Ok(BareFigures {
        delivery: super::delivery(&tally, expected, clients, measured.kernel_udp_drops),
        sends: measured.sends,
        latency_ms: Quantiles::of(&tally.latency),
        cpu_per_delivered_us: measured
            .server
            .filter(|_| tally.received > 0)
            .map(|server| server.cpu_s / tally.received as f64 * 1e6),
        server: measured.server,
        generator: measured.generator,
        generator_bound,
    })
}
