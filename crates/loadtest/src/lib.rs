//! `partyline loadtest`: many client sessions from one process against a
//! running server, in phases (connect, form parties, steady data,
//! teardown), and a report of latency, delivery, throughput and cost.
//!
//! Sessions share about one client endpoint per core. Each message carries
//! its send time (one clock: sender and receivers live in this process), so
//! the latency is one-way, sender to each receiver.

pub mod bare;
mod histogram;
pub mod procstat;
mod progress;
mod report;
pub mod spawn;

pub use histogram::Histogram;
pub use progress::ProgressMode;
pub use report::{BareFigures, Report};

use partyline_client::{
    shared_endpoint, Client, ClientConfig, ClientError, Event, Events, JoinOutcome, PartyId,
    PartySettings,
};

use progress::Progress;
use rustls::pki_types::CertificateDer;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Smallest payload: send time (8 bytes) and sender/sequence (8 bytes).
pub const MIN_PAYLOAD: usize = 16;
/// UDP socket buffers asked for on each shared endpoint.
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;
/// Time allowed after the last send for messages in flight to arrive.
const DRAIN: Duration = Duration::from_millis(1000);

#[derive(Clone, Debug)]
pub struct LoadtestConfig {
    pub server: SocketAddr,
    pub certs: Vec<CertificateDer<'static>>,
    pub parties: usize,
    pub party_size: usize,
    /// Messages per member per second; 0 sends nothing (idle sessions).
    pub rate_hz: f64,
    pub payload: usize,
    pub duration: Duration,
    pub reliable: bool,
    /// New sessions per second in the connect phase.
    pub connect_rate: f64,
    /// Sessions that only connect and stay idle (no parties): cell I.
    pub idle_sessions: usize,
    pub server_pid: Option<u32>,
    /// Client endpoints (UDP sockets) to spread sessions over.
    pub endpoints: usize,
    pub progress: ProgressMode,
    /// What the sessions ask of the server's acknowledgements.
    pub ack_frequency: Option<partyline_client::AckFrequency>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadtestError {
    #[error("invalid load: {0}")]
    Invalid(String),
    #[error("session {index}: {source}")]
    Client { index: usize, source: ClientError },
    #[error("party formation: {0}")]
    Party(ClientError),
}

/// What each session's event reader counted.
#[derive(Default)]
struct Tally {
    latency: Histogram,
    received: u64,
}

struct Session {
    client: Arc<Client>,
    reader: tokio::task::JoinHandle<Tally>,
}

/// The run's clock: payload timestamps are nanoseconds since `base`.
#[derive(Clone, Copy)]
struct Clock {
    base: Instant,
}

impl Clock {
    fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
}

async fn read_events(mut events: Events, clock: Clock) -> Tally {
    let mut tally = Tally::default();
    while let Some(event) = events.next().await {
        match event {
            Event::Data(data) if data.data.len() >= MIN_PAYLOAD => {
                let mut sent = [0u8; 8];
                sent.copy_from_slice(&data.data[..8]);
                let sent_ns = u64::from_le_bytes(sent);
                tally.latency.record(clock.now_ns().saturating_sub(sent_ns));
                tally.received += 1;
            }
            Event::Disconnected { .. } => break,
            _ => {}
        }
    }
    tally
}

fn quantiles(histogram: &Histogram) -> (Duration, Duration) {
    (
        Duration::from_nanos(histogram.quantile(0.5)),
        Duration::from_nanos(histogram.quantile(0.99)),
    )
}

pub async fn run(config: LoadtestConfig) -> Result<Report, LoadtestError> {
    let sessions_wanted = if config.idle_sessions > 0 {
        config.idle_sessions
    } else {
        config.parties * config.party_size
    };
    if sessions_wanted == 0 {
        return Err(LoadtestError::Invalid(
            "no sessions: give --parties and --party-size, or --idle-sessions".into(),
        ));
    }
    if config.idle_sessions == 0 && !(1..=256).contains(&config.party_size) {
        return Err(LoadtestError::Invalid(
            "--party-size must be 1 to 256".into(),
        ));
    }
    if config.payload < MIN_PAYLOAD {
        return Err(LoadtestError::Invalid(format!(
            "--payload must be at least {MIN_PAYLOAD} bytes"
        )));
    }
    let clock = Clock {
        base: Instant::now(),
    };
    let own_start = procstat::own();
    let server_start = config.server_pid.and_then(procstat::sample);
    let template = ClientConfig::dev(config.server, config.certs.clone(), "x", "x");
    let endpoints = (0..config.endpoints.max(1))
        .map(|_| shared_endpoint(&template, Some(SOCKET_BUFFER)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| LoadtestError::Client { index: 0, source })?;

    // Phase 1: connect.
    let progress = Progress::start(config.progress, "connect", sessions_wanted);
    let connect_started = Instant::now();
    let (sessions, handshakes, connect_failures) =
        connect_all(&config, &endpoints, sessions_wanted, clock, &progress).await?;
    let connect_elapsed = connect_started.elapsed();
    progress.finish();
    let server_connected = config.server_pid.and_then(procstat::sample);

    // Phase 2: parties (half open, half closed with requests accepted).
    let mut control = ControlLatencies::default();
    let mut party_ids = Vec::new();
    if config.idle_sessions == 0 {
        let progress = Progress::start(config.progress, "form parties", config.parties);
        (party_ids, control) = form_parties(&config, &sessions, &progress).await?;
        progress.finish();
    }

    // Phase 3: steady data (or idle holding).
    let progress = Progress::start(
        config.progress,
        "steady",
        config.duration.as_secs() as usize,
    );
    let steady_server = config.server_pid.and_then(procstat::sample);
    let steady_own = procstat::own();
    let sent = steady(&config, &sessions, &party_ids, clock, &progress).await;
    tokio::time::sleep(if sent > 0 { DRAIN } else { Duration::ZERO }).await;
    let steady_server_end = config.server_pid.and_then(procstat::sample);
    let steady_own_end = procstat::own();
    progress.finish();

    // Phase 4: teardown.
    let progress = Progress::start(config.progress, "teardown", sessions.len());
    let mut latency = Histogram::default();
    let mut received = 0;
    let server_end_sample = config.server_pid.and_then(procstat::sample);
    for session in sessions {
        drop(session.client);
        if let Ok(tally) = session.reader.await {
            latency.merge(&tally.latency);
            received += tally.received;
        }
        progress.advance(1);
    }
    for endpoint in &endpoints {
        let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
    }
    progress.finish();

    let receivers_per_message = config.party_size.saturating_sub(1) as u64;
    let cpu = |a: Option<procstat::ProcessSample>, b: Option<procstat::ProcessSample>| match (a, b)
    {
        (Some(a), Some(b)) => Some(b.cpu.saturating_sub(a.cpu)),
        _ => None,
    };
    Ok(Report {
        sessions: sessions_wanted,
        connect_failures,
        parties: if config.idle_sessions > 0 {
            0
        } else {
            config.parties
        },
        party_size: config.party_size,
        rate_hz: config.rate_hz,
        payload: config.payload,
        duration: config.duration,
        reliable: config.reliable,
        latency,
        sent,
        expected: sent * receivers_per_message,
        received,
        handshake: quantiles(&handshakes),
        handshakes_per_second: sessions_wanted as f64 / connect_elapsed.as_secs_f64(),
        create: quantiles(&control.create),
        join: quantiles(&control.join),
        accept: quantiles(&control.accept),
        server_steady_cpu: cpu(steady_server, steady_server_end),
        server_total_cpu: cpu(server_start, server_end_sample),
        server_peak_rss: server_end_sample.map(|s| s.peak_rss_bytes),
        server_rss_per_session: match (server_start, server_connected) {
            (Some(a), Some(b)) => {
                let connected = (sessions_wanted - connect_failures).max(1) as u64;
                Some(b.rss_bytes.saturating_sub(a.rss_bytes) / connected)
            }
            _ => None,
        },
        own_steady_cpu: cpu(steady_own, steady_own_end),
        own_total_cpu: cpu(own_start, procstat::own()),
        bare: None,
    })
}

async fn connect_all(
    config: &LoadtestConfig,
    endpoints: &[quinn::Endpoint],
    count: usize,
    clock: Clock,
    progress: &Progress,
) -> Result<(Vec<Session>, Histogram, usize), LoadtestError> {
    // Bounded in flight, and paced: a reconnect storm is not what we measure.
    let in_flight = Arc::new(Semaphore::new(256));
    let pace = Duration::from_secs_f64(1.0 / config.connect_rate.max(1.0));
    let mut tasks = JoinSet::new();
    let mut next_start = Instant::now();
    for index in 0..count {
        tokio::time::sleep_until(next_start.into()).await;
        next_start += pace;
        let permit = in_flight.clone().acquire_owned().await;
        let endpoint = endpoints[index % endpoints.len()].clone();
        let mut session_config = ClientConfig::dev(
            config.server,
            config.certs.clone(),
            &format!("load-{index}"),
            &format!("Load {index}"),
        );
        // A load generator measures loss; it does not hide it.
        session_config.auto_reconnect = false;
        session_config.event_capacity = 16 * 1024;
        session_config.ack_frequency = config.ack_frequency;
        tasks.spawn(async move {
            let started = Instant::now();
            let connected = Client::connect_on(&endpoint, session_config).await;
            drop(permit);
            (index, started.elapsed(), connected)
        });
    }
    let mut slots: Vec<Option<Session>> = (0..count).map(|_| None).collect();
    let mut handshakes = Histogram::default();
    let mut failures = 0;
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let Ok((index, took, connected)) = joined else {
            continue;
        };
        let (client, events) = match connected {
            Ok(connected) => connected,
            Err(source) => {
                // Counted, not fatal: a refused or timed-out handshake is a
                // result (the server is saturated), unless nothing got through.
                failures += 1;
                first_error.get_or_insert(LoadtestError::Client { index, source });
                progress.advance(1);
                continue;
            }
        };
        handshakes.record(took.as_nanos() as u64);
        slots[index] = Some(Session {
            client: Arc::new(client),
            reader: tokio::spawn(read_events(events, clock)),
        });
        progress.advance(1);
    }
    let sessions: Vec<Session> = slots.into_iter().flatten().collect();
    match first_error {
        // Parties need every seat; idle sessions can do with fewer.
        Some(error) if sessions.is_empty() || config.idle_sessions == 0 => Err(error),
        _ => Ok((sessions, handshakes, failures)),
    }
}

/// Runs a command, waiting and trying again while the server answers
/// RateLimited, as a well-behaved client does: a leader of a large closed
/// party accepts its requests faster than the default command rate. The
/// measured latency includes the waits.
async fn patiently<T, F, Fut>(mut command: F) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    let mut wait = Duration::from_millis(20);
    for _ in 0..50 {
        match command().await {
            Err(error) if error.code() == Some(partyline_client::ErrorCode::RateLimited) => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
    command().await
}

#[derive(Default)]
struct ControlLatencies {
    create: Histogram,
    join: Histogram,
    accept: Histogram,
}

async fn form_parties(
    config: &LoadtestConfig,
    sessions: &[Session],
    progress: &Progress,
) -> Result<(Vec<PartyId>, ControlLatencies), LoadtestError> {
    let in_flight = Arc::new(Semaphore::new(64));
    let mut tasks = JoinSet::new();
    for party in 0..config.parties {
        let members: Vec<Arc<Client>> = sessions
            [party * config.party_size..(party + 1) * config.party_size]
            .iter()
            .map(|s| s.client.clone())
            .collect();
        let open = party % 2 == 0;
        let max_size = config.party_size as u16;
        let permit = in_flight.clone().acquire_owned().await;
        tasks.spawn(async move {
            let mut latencies = ControlLatencies::default();
            let leader = &members[0];
            let started = Instant::now();
            let created = patiently(|| {
                leader.create_party(PartySettings {
                    open,
                    max_size,
                    label: "loadtest".to_string(),
                })
            })
            .await?;
            latencies.create.record(started.elapsed().as_nanos() as u64);
            for member in &members[1..] {
                let started = Instant::now();
                let outcome = patiently(|| member.join_party(created.party_id)).await?;
                latencies.join.record(started.elapsed().as_nanos() as u64);
                if let JoinOutcome::Queued { .. } = outcome {
                    let started = Instant::now();
                    let user_id = member.presence().user_id;
                    patiently(|| leader.accept(created.party_id, &user_id)).await?;
                    latencies.accept.record(started.elapsed().as_nanos() as u64);
                }
            }
            drop(permit);
            Ok::<_, ClientError>((party, created.party_id, latencies))
        });
    }
    let mut ids = vec![PartyId::nil(); config.parties];
    let mut all = ControlLatencies::default();
    while let Some(joined) = tasks.join_next().await {
        let Ok(result) = joined else { continue };
        let (party, id, latencies) = result.map_err(LoadtestError::Party)?;
        ids[party] = id;
        all.create.merge(&latencies.create);
        all.join.merge(&latencies.join);
        all.accept.merge(&latencies.accept);
        progress.advance(1);
    }
    Ok((ids, all))
}

/// Every member sends at `rate_hz` for the duration; returns messages sent.
async fn steady(
    config: &LoadtestConfig,
    sessions: &[Session],
    party_ids: &[PartyId],
    clock: Clock,
    progress: &Progress,
) -> u64 {
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = JoinSet::new();
    if config.rate_hz > 0.0 && !party_ids.is_empty() {
        let period = Duration::from_secs_f64(1.0 / config.rate_hz);
        for (index, session) in sessions.iter().enumerate() {
            let party_id = party_ids[index / config.party_size];
            let client = session.client.clone();
            let (sent, stop) = (sent.clone(), stop.clone());
            let (payload, reliable) = (config.payload, config.reliable);
            // Spread the senders over one period so they do not tick together.
            let offset = period.mul_f64((index % 997) as f64 / 997.0);
            senders.spawn(async move {
                let mut ticks = tokio::time::interval_at((Instant::now() + offset).into(), period);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut message = vec![0u8; payload];
                let mut seq: u32 = 0;
                while !stop.load(Ordering::Relaxed) {
                    ticks.tick().await;
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    seq = seq.wrapping_add(1);
                    message[..8].copy_from_slice(&clock.now_ns().to_le_bytes());
                    message[8..12].copy_from_slice(&(index as u32).to_le_bytes());
                    message[12..16].copy_from_slice(&seq.to_le_bytes());
                    let ok = if reliable {
                        client
                            .send_data_reliable(party_id, 1, &message)
                            .await
                            .is_ok()
                    } else {
                        client.send_data(party_id, 1, &message).is_ok()
                    };
                    if ok {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    }
    let end = Instant::now() + config.duration;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_secs(1).min(end - Instant::now())).await;
        progress.advance(1);
    }
    stop.store(true, Ordering::Relaxed);
    while senders.join_next().await.is_some() {}
    sent.load(Ordering::Relaxed)
}
