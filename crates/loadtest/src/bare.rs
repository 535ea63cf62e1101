//! The transport reference: a bare quinn datagram relay with no party
//! logic, no sessions, no framing. Connections are grouped in accept order;
//! each datagram goes to the other members of its group, as in a party
//! (group size 1 echoes it back to the sender). Driven with the same load
//! as partyline, its CPU per delivered datagram is what QUIC alone costs.

use super::{procstat, BareFigures, Histogram};
use bytes::Bytes;
use partyline::server::{quinn_server_config, ServerConfig, ServerError};
use partyline_client::{shared_endpoint, ClientConfig};
use rustls::pki_types::CertificateDer;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Serves the bare relay until the process ends.
pub async fn run_bare_relay(config: ServerConfig, group_size: usize) -> Result<(), ServerError> {
    let listen = config.listen;
    let endpoint =
        quinn::Endpoint::server(quinn_server_config(&config)?, listen).map_err(|source| {
            ServerError::Bind {
                addr: listen,
                source,
            }
        })?;
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
            let mut others = Vec::new();
            while let Ok(datagram) = connection.read_datagram().await {
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
                    let _ = other.send_datagram(datagram.clone());
                }
            }
        });
    }
    Ok(())
}

/// The same load as a partyline run, against a bare relay.
#[derive(Clone, Debug)]
pub struct BareLoad {
    pub server: SocketAddr,
    pub certs: Vec<CertificateDer<'static>>,
    pub sessions: usize,
    pub rate_hz: f64,
    pub payload: usize,
    pub duration: Duration,
    pub endpoints: usize,
    pub server_pid: Option<u32>,
}

pub async fn measure(load: BareLoad) -> Result<BareFigures, String> {
    let template = ClientConfig::dev(load.server, load.certs.clone(), "x", "x");
    let endpoints = (0..load.endpoints.max(1))
        .map(|_| shared_endpoint(&template, Some(4 * 1024 * 1024)))
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
    let base = Instant::now();
    let delivered = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = JoinSet::new();
    for connection in &connections {
        let (connection, delivered) = (connection.clone(), delivered.clone());
        readers.spawn(async move {
            let mut latency = Histogram::default();
            while let Ok(datagram) = connection.read_datagram().await {
                if datagram.len() >= 8 {
                    let mut sent = [0u8; 8];
                    sent.copy_from_slice(&datagram[..8]);
                    let now = base.elapsed().as_nanos() as u64;
                    latency.record(now.saturating_sub(u64::from_le_bytes(sent)));
                    delivered.fetch_add(1, Ordering::Relaxed);
                }
            }
            latency
        });
    }
    let server_before = load.server_pid.and_then(procstat::sample);
    let counted_before = delivered.load(Ordering::Relaxed);
    let mut senders = JoinSet::new();
    if load.rate_hz > 0.0 {
        let period = Duration::from_secs_f64(1.0 / load.rate_hz);
        for (index, connection) in connections.iter().enumerate() {
            let (connection, stop) = (connection.clone(), stop.clone());
            let payload = load.payload.max(8);
            let offset = period.mul_f64((index % 997) as f64 / 997.0);
            senders.spawn(async move {
                let mut ticks = tokio::time::interval_at((Instant::now() + offset).into(), period);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut message = vec![0u8; payload];
                while !stop.load(Ordering::Relaxed) {
                    ticks.tick().await;
                    message[..8].copy_from_slice(&(base.elapsed().as_nanos() as u64).to_le_bytes());
                    let _ = connection.send_datagram(Bytes::copy_from_slice(&message));
                }
            });
        }
    }
    tokio::time::sleep(load.duration).await;
    stop.store(true, Ordering::Relaxed);
    while senders.join_next().await.is_some() {}
    tokio::time::sleep(Duration::from_secs(1)).await;
    let server_after = load.server_pid.and_then(procstat::sample);
    let counted = delivered.load(Ordering::Relaxed) - counted_before;
    for connection in &connections {
        connection.close(0u32.into(), b"done");
    }
    let mut latency = Histogram::default();
    while let Some(joined) = readers.join_next().await {
        if let Ok(histogram) = joined {
            latency.merge(&histogram);
        }
    }
    for endpoint in &endpoints {
        let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
    }
    Ok(BareFigures {
        delivered: counted,
        server_cpu: match (server_before, server_after) {
            (Some(a), Some(b)) => b.cpu.saturating_sub(a.cpu),
            _ => Duration::ZERO,
        },
        latency_p50: Duration::from_nanos(latency.quantile(0.5)),
        latency_p99: Duration::from_nanos(latency.quantile(0.99)),
    })
}
