//! `partyline-loadtest`: many client sessions from one process against a
//! running server, in phases (connect, form parties, warm-up, measured
//! window, drain, teardown), and a report of latency, delivery, offered
//! against achieved load, and what each side cost.
//!
//! Sessions share about one client endpoint per core. Senders are spread
//! evenly over the period by one timetable (`schedule`); each message
//! carries its send time, sender and sequence (`measure`), so latency is
//! one-way (sender and receivers share this process's clock) and loss,
//! duplicates and reordering are counted per (sender, seq).

pub mod bare;
pub mod cluster;
pub mod measure;
pub mod mute;
pub mod procstat;
mod progress;
mod report;
pub mod schedule;
pub mod scrape;
pub mod soak;
pub mod spawn;
pub mod window;

pub use progress::ProgressMode;
pub use report::{
    BareFigures, Control, Delivery, Load, ProcessFigures, Quantiles, Report, Sends, ServerFigures,
};

use hdrhistogram::Histogram;
use measure::{histogram, record, Clock, Tally};
use partyline_client::{
    shared_endpoint, Client, ClientConfig, ClientError, Event, Events, JoinOutcome, PartyId,
    PartySettings,
};
use progress::Progress;
use rustls::pki_types::CertificateDer;
use schedule::Timetable;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use window::WindowFigures;

/// Smallest payload: the stamp (send time, sender, sequence).
pub const MIN_PAYLOAD: usize = measure::STAMP_LEN;
/// UDP socket buffers asked for on each client endpoint, as on the server.
pub const SOCKET_BUFFER: usize = 4 * 1024 * 1024;
/// Time allowed after the last send for messages in flight to arrive.
const DRAIN: Duration = Duration::from_millis(1000);
/// Time from the end of party formation to the first send.
const LEAD: Duration = Duration::from_millis(20);
/// Events the SDK queues per session before dropping datagrams.
const EVENT_CAPACITY: usize = 16 * 1024;

#[derive(Clone, Debug)]
pub struct LoadtestConfig {
    pub server: SocketAddr,
    /// Several nodes of one cluster to spread each party's members over
    /// (`cluster::node_of`); empty: every session connects to `server`.
    pub servers: Vec<SocketAddr>,
    /// Processes, node metrics and NATS to read at the window's edges (a
    /// cluster run); empty: the report has no `cluster` part.
    pub cluster: cluster::ClusterProbe,
    pub certs: Vec<CertificateDer<'static>>,
    pub parties: usize,
    pub party_size: usize,
    /// Messages per member per second; 0 sends nothing (idle sessions).
    pub rate_hz: f64,
    pub payload: usize,
    /// Sending before the measured window, to let caches, windows and
    /// congestion controllers settle. Not measured.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    pub reliable: bool,
    /// New sessions per second in the connect phase.
    pub connect_rate: f64,
    /// Sessions that only connect and stay idle (no parties): cell I.
    pub idle_sessions: usize,
    pub server_pid: Option<u32>,
    /// The server's Prometheus endpoint, for its QUIC counters.
    pub server_metrics: Option<SocketAddr>,
    /// How often to read them inside the window; zero: only at its edges.
    pub server_metrics_interval: Duration,
    /// Server worker threads, for its utilization figure.
    pub server_threads: usize,
    /// This generator's runtime threads, for its utilization figure.
    pub generator_threads: usize,
    /// Client endpoints (UDP sockets) to spread sessions over.
    pub endpoints: usize,
    pub progress: ProgressMode,
    /// What the sessions ask of the server's acknowledgements.
    pub ack_frequency: Option<partyline_client::AckFrequency>,
    /// The sessions' QUIC keep-alive interval; `None` keeps the SDK's.
    pub keep_alive: Option<Duration>,
    /// The sessions' QUIC idle timeout; `None` keeps the SDK's. QUIC uses
    /// the shorter of the two sides', so a long keep-alive needs this too.
    pub idle_timeout: Option<Duration>,
    /// The server's token secret: sessions present tokens minted with it
    /// instead of dev identities (a server in token mode refuses those).
    pub token_secret: Option<Vec<u8>>,
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

struct Session {
    client: Arc<Client>,
    reader: tokio::task::JoinHandle<Tally>,
}

async fn read_events(mut events: Events, clock: Clock) -> Tally {
    let mut tally = Tally::default();
    while let Some(event) = events.next().await {
        match event {
            Event::Data(data) => tally.observe(&data.data, clock.now_ns()),
            Event::Disconnected { .. } => break,
            _ => {}
        }
    }
    tally
}

impl LoadtestConfig {
    fn sessions_wanted(&self) -> usize {
        if self.idle_sessions > 0 {
            self.idle_sessions
        } else {
            self.parties * self.party_size
        }
    }

    fn validate(&self) -> Result<(), LoadtestError> {
        let invalid = |message: &str| Err(LoadtestError::Invalid(message.to_string()));
        if self.sessions_wanted() == 0 {
            return invalid("no sessions: give --parties and --party-size, or --idle-sessions");
        }
        if self.idle_sessions == 0 && !(1..=256).contains(&self.party_size) {
            return invalid("--party-size must be 1 to 256");
        }
        if self.payload < MIN_PAYLOAD {
            return Err(LoadtestError::Invalid(format!(
                "--payload must be at least {MIN_PAYLOAD} bytes"
            )));
        }
        if !self.rate_hz.is_finite() || self.rate_hz < 0.0 {
            return invalid("--rate must be a number of messages per second >= 0");
        }
        Ok(())
    }

    /// The servers sessions connect to: `servers`, or `server` alone.
    fn targets(&self) -> Vec<SocketAddr> {
        if self.servers.is_empty() {
            vec![self.server]
        } else {
            self.servers.clone()
        }
    }

    /// The server session `index` (in connect order) connects to.
    fn server_for(&self, index: usize, targets: &[SocketAddr]) -> SocketAddr {
        let party_size = if self.idle_sessions > 0 {
            0
        } else {
            self.party_size
        };
        targets
            .get(cluster::node_of_session(index, party_size, targets.len()))
            .copied()
            .unwrap_or(self.server)
    }

    fn load(&self) -> Load {
        Load {
            sessions: self.sessions_wanted(),
            parties: if self.idle_sessions > 0 {
                0
            } else {
                self.parties
            },
            party_size: self.party_size,
            rate_hz: self.rate_hz,
            payload: self.payload,
            warmup_s: self.warmup.as_secs_f64(),
            duration_s: self.duration.as_secs_f64(),
            reliable: self.reliable,
        }
    }
}

/// The timetable for `senders` sessions starting `LEAD` from now.
pub fn timetable(
    clock: Clock,
    senders: usize,
    rate_hz: f64,
    warmup: Duration,
    duration: Duration,
) -> Timetable {
    let period_ns = if rate_hz > 0.0 {
        (1e9 / rate_hz) as u64
    } else {
        0
    };
    let start_ns = clock.now_ns() + LEAD.as_nanos() as u64;
    let warm_end_ns = start_ns + warmup.as_nanos() as u64;
    Timetable {
        senders,
        period_ns,
        start_ns,
        warm_end_ns,
        end_ns: warm_end_ns + duration.as_nanos() as u64,
    }
}

/// What a window's sends and samples say, in report form.
pub(crate) struct WindowReport {
    pub sends: Sends,
    pub server: Option<ProcessFigures>,
    pub generator: Option<ProcessFigures>,
    pub steal_s: Option<f64>,
    pub kernel_udp_drops: Option<u64>,
    pub seconds: f64,
}

pub(crate) fn window_report(
    window: &WindowFigures,
    duration: Duration,
    server_threads: usize,
    generator_threads: usize,
) -> WindowReport {
    let seconds = window.seconds();
    let secs = duration.as_secs_f64().max(f64::MIN_POSITIVE);
    let s = &window.sends;
    let process = |start: Option<procstat::ProcessSample>,
                   end: Option<procstat::ProcessSample>,
                   threads: usize| {
        let cpu = window::duration_delta(start, end, |p| p.cpu)?;
        let run_delay = window::duration_delta(start, end, |p| p.run_delay)?;
        Some(ProcessFigures {
            cpu_s: cpu.as_secs_f64(),
            utilization: cpu.as_secs_f64()
                / (seconds.max(f64::MIN_POSITIVE) * threads.max(1) as f64),
            threads,
            run_delay_ms: run_delay.as_secs_f64() * 1000.0,
        })
    };
    let (start, end) = (window.start, window.end);
    WindowReport {
        sends: Sends {
            offered: s.offered,
            sent: s.sent,
            failed: s.failed,
            missed: s.missed,
            offered_per_s: s.offered as f64 / secs,
            sent_per_s: s.sent as f64 / secs,
            lateness_ms: Quantiles::of(&s.lateness),
        },
        server: process(start.server, end.server, server_threads),
        generator: process(start.own, end.own, generator_threads),
        steal_s: window::delta(
            start.host,
            end.host,
            |h| h.steal,
            |b, a| b.saturating_sub(a),
        )
        .map(|d| d.as_secs_f64()),
        kernel_udp_drops: window::delta(
            start.host,
            end.host,
            |h| h.udp_receive_buffer_errors,
            |b, a| b.saturating_sub(a),
        ),
        seconds,
    }
}

pub async fn run(config: LoadtestConfig) -> Result<Report, LoadtestError> {
    config.validate()?;
    let sessions_wanted = config.sessions_wanted();
    let clock = Clock::start();
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

    // Phase 3: warm-up and the measured window (or idle holding).
    let senders = if config.rate_hz > 0.0 && !party_ids.is_empty() {
        sessions.len()
    } else {
        0
    };
    let table = timetable(
        clock,
        senders,
        config.rate_hz,
        config.warmup,
        config.duration,
    );
    let progress = Progress::start(
        config.progress,
        "warm-up + measure",
        (config.warmup + config.duration).as_secs() as usize,
    );
    let ticker = tick_progress(&progress, config.warmup + config.duration);
    // Every other process, the nodes' counters and NATS, at the same edges.
    let cluster_sampler = (!config.cluster.is_empty()).then(|| {
        cluster::sample_window(
            config.cluster.clone(),
            clock.at(table.warm_end_ns),
            clock.at(table.end_ns),
        )
    });
    let refused_later = Arc::new(AtomicU64::new(0));
    let window = {
        let clients: Vec<Arc<Client>> = sessions.iter().map(|s| s.client.clone()).collect();
        let (party_size, reliable) = (config.party_size, config.reliable);
        let refused_later = refused_later.clone();
        window::run(
            table,
            clock,
            config.payload,
            window::ServerProbe {
                pid: config.server_pid,
                metrics: config.server_metrics,
                metrics_interval: config.server_metrics_interval,
            },
            move |sender, message| {
                let client = &clients[sender];
                let party_id = party_ids[sender / party_size];
                if reliable {
                    // A reliable send waits for stream credit: off the timetable.
                    let (client, message, refused) =
                        (client.clone(), message.to_vec(), refused_later.clone());
                    tokio::spawn(async move {
                        if client
                            .send_data_reliable(party_id, 1, &message)
                            .await
                            .is_err()
                        {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                    true
                } else {
                    client.send_data(party_id, 1, message).is_ok()
                }
            },
        )
        .await
    };
    let cluster_edges = match cluster_sampler {
        Some(sampler) => sampler.await.ok().flatten(),
        None => None,
    };
    if senders > 0 {
        tokio::time::sleep(DRAIN).await;
    }
    ticker.abort();
    progress.finish();

    // Phase 4: teardown.
    let progress = Progress::start(config.progress, "teardown", sessions.len());
    let mut tally = Tally::default();
    let mut clients = ClientCounts::default();
    let server_end_sample = config.server_pid.and_then(procstat::sample);
    // A reader ends when its connection does: before teardown, that is a
    // session lost during the run (an idle hold that lost its sessions
    // measured nothing).
    let sessions_lost = sessions.iter().filter(|s| s.reader.is_finished()).count();
    for session in sessions {
        clients.sdk_drops += session.client.dropped_datagrams();
        clients.add(&session.client.transport_stats());
        drop(session.client);
        if let Ok(own) = session.reader.await {
            tally.merge(&own);
        }
        progress.advance(1);
    }
    for endpoint in &endpoints {
        let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
    }
    progress.finish();

    let measured = window_report(
        &window,
        config.duration,
        config.server_threads,
        config.generator_threads,
    );
    let mut sends = measured.sends;
    let refused_later = refused_later.load(Ordering::Relaxed);
    sends.sent = sends.sent.saturating_sub(refused_later);
    sends.failed += refused_later;
    let expected = sends.sent * config.party_size.saturating_sub(1) as u64;
    let delivery = delivery(&tally, expected, clients, measured.kernel_udp_drops);
    let server_cpu_per_delivered = measured
        .server
        .filter(|_| tally.received > 0)
        .map(|server| server.cpu_s / tally.received as f64 * 1e6);
    let generator_bound = report::generator_bound(&sends, measured.generator.as_ref());
    let cluster = (!config.cluster.is_empty() || config.servers.len() > 1).then(|| {
        cluster::figures(
            &config.cluster,
            &config.targets(),
            if config.idle_sessions > 0 {
                0
            } else {
                config.party_size
            },
            config.load().parties,
            sessions_wanted,
            tally.received,
            cluster_edges.as_ref(),
        )
    });
    Ok(Report {
        load: config.load(),
        server_args: Vec::new(),
        pinned: false,
        window_s: measured.seconds,
        sends,
        delivery,
        latency_ms: Quantiles::of(&tally.latency),
        control: Control {
            handshake: Quantiles::of(&handshakes),
            handshakes_per_s: sessions_wanted as f64 / connect_elapsed.as_secs_f64(),
            connect_failures,
            sessions_lost,
            create: Quantiles::of(&control.create),
            join: Quantiles::of(&control.join),
            accept: Quantiles::of(&control.accept),
            form: Quantiles::of(&control.form),
        },
        server: measured.server,
        server_figures: ServerFigures {
            cpu_per_delivered_us: server_cpu_per_delivered,
            peak_rss_bytes: server_end_sample.map(|s| s.peak_rss_bytes),
            // At the window's end: quinn grows some per-connection queues
            // only after a connection has lived a while (~20 s), so a
            // sample right after connecting reads low.
            rss_per_session_bytes: match (server_start, window.end.server.or(server_connected)) {
                (Some(a), Some(b)) => {
                    let connected = (sessions_wanted - connect_failures).max(1) as u64;
                    Some(b.rss_bytes.saturating_sub(a.rss_bytes) / connected)
                }
                _ => None,
            },
        },
        generator: measured.generator,
        host_steal_s: measured.steal_s,
        generator_bound,
        bare: None,
        late_timeline: late_timeline(&tally, table.warm_end_ns),
        server_transport: window
            .end
            .server_transport
            .zip(window.start.server_transport)
            .map(|(end, start)| end.since(start)),
        server_transport_timeline: window.transport_timeline.clone(),
        transport_ratio: None,
        cluster,
        latency: tally.latency,
    })
}

/// The 20 worst 100 ms slices of late messages, in time order, as (ms
/// into the measured window, count).
fn late_timeline(tally: &Tally, window_start_ns: u64) -> Vec<(u64, u64)> {
    let mut slices: Vec<(u64, u64)> = tally
        .late_by_bucket
        .iter()
        .map(|(bucket, count)| {
            let start_ns = bucket * measure::LATE_BUCKET_NS;
            (start_ns.saturating_sub(window_start_ns) / 1_000_000, *count)
        })
        .collect();
    slices.sort_by_key(|slice| std::cmp::Reverse(slice.1));
    slices.truncate(20);
    slices.sort();
    slices
}

/// What the client side counted over a whole run.
#[derive(Default)]
pub(crate) struct ClientCounts {
    /// Data dropped in the SDK's (or the bare path's) bounded queue.
    pub sdk_drops: u64,
    /// DATAGRAM frames the clients' QUIC stacks received.
    pub transport_frames: u64,
    pub udp_rx: u64,
    pub udp_tx: u64,
    pub lost_packets: u64,
    pub congestion_events: u64,
}

impl ClientCounts {
    /// Adds one connection's QUIC statistics.
    fn add(&mut self, stats: &quinn::ConnectionStats) {
        self.transport_frames += stats.frame_rx.datagram;
        self.udp_rx += stats.udp_rx.datagrams;
        self.udp_tx += stats.udp_tx.datagrams;
        self.lost_packets += stats.path.lost_packets;
        self.congestion_events += stats.path.congestion_events;
    }
}

/// The delivery figures of a run: what arrived of `expected`, and where the
/// rest was lost.
pub(crate) fn delivery(
    tally: &Tally,
    expected: u64,
    clients: ClientCounts,
    kernel_udp_drops: Option<u64>,
) -> Delivery {
    Delivery {
        expected,
        received: tally.received,
        ratio: (expected > 0).then(|| tally.received as f64 / expected as f64),
        duplicates: tally.duplicates,
        reordered: tally.reordered,
        sdk_event_drops: clients.sdk_drops,
        // Frames that reached QUIC but never the reader (reliable runs
        // receive no datagram frames: this is then 0).
        client_transport_drops: clients
            .transport_frames
            .saturating_sub(tally.events() + clients.sdk_drops),
        kernel_udp_drops,
        client_udp_rx: clients.udp_rx,
        client_udp_tx: clients.udp_tx,
        client_lost_packets: clients.lost_packets,
        client_congestion_events: clients.congestion_events,
    }
}

/// Advances the progress bar once a second for `total`.
fn tick_progress(progress: &Progress, total: Duration) -> tokio::task::JoinHandle<()> {
    let bar = progress.handle();
    tokio::spawn(async move {
        let end = Instant::now() + total;
        while Instant::now() < end {
            tokio::time::sleep(Duration::from_secs(1)).await;
            bar.inc(1);
        }
    })
}

async fn connect_all(
    config: &LoadtestConfig,
    endpoints: &[quinn::Endpoint],
    count: usize,
    clock: Clock,
    progress: &Progress,
) -> Result<(Vec<Session>, Histogram<u64>, usize), LoadtestError> {
    // Bounded in flight, and paced: a reconnect storm is not what we measure.
    let in_flight = Arc::new(Semaphore::new(256));
    let pace = Duration::from_secs_f64(1.0 / config.connect_rate.max(1.0));
    let mut tasks = JoinSet::new();
    let mut next_start = Instant::now();
    let targets = config.targets();
    for index in 0..count {
        let server = config.server_for(index, &targets);
        tokio::time::sleep_until(next_start.into()).await;
        next_start += pace;
        let permit = in_flight.clone().acquire_owned().await;
        let endpoint = endpoints[index % endpoints.len()].clone();
        let (user_id, username) = (format!("load-{index}"), format!("Load {index}"));
        let mut session_config = match &config.token_secret {
            Some(secret) => {
                let token = partyline::auth::mint_token_for(
                    secret,
                    &user_id,
                    &username,
                    Duration::from_secs(24 * 3600),
                );
                ClientConfig::with_token(server, config.certs.clone(), &token)
            }
            None => ClientConfig::dev(server, config.certs.clone(), &user_id, &username),
        };
        // A load generator measures loss; it does not hide it.
        session_config.auto_reconnect = false;
        session_config.event_capacity = EVENT_CAPACITY;
        session_config.ack_frequency = config.ack_frequency;
        if let Some(keep_alive) = config.keep_alive {
            session_config.keep_alive = keep_alive;
        }
        if let Some(idle_timeout) = config.idle_timeout {
            session_config.idle_timeout = idle_timeout;
        }
        tasks.spawn(async move {
            let started = Instant::now();
            let connected = Client::connect_on(&endpoint, session_config).await;
            drop(permit);
            (index, started.elapsed(), connected)
        });
    }
    let mut slots: Vec<Option<Session>> = (0..count).map(|_| None).collect();
    let mut handshakes = histogram();
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
        record(&mut handshakes, took.as_nanos() as u64);
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

struct ControlLatencies {
    create: Histogram<u64>,
    join: Histogram<u64>,
    accept: Histogram<u64>,
    form: Histogram<u64>,
}

impl Default for ControlLatencies {
    fn default() -> ControlLatencies {
        ControlLatencies {
            create: histogram(),
            join: histogram(),
            accept: histogram(),
            form: histogram(),
        }
    }
}

impl ControlLatencies {
    fn merge(&mut self, other: &ControlLatencies) {
        for (mine, theirs) in [
            (&mut self.create, &other.create),
            (&mut self.join, &other.join),
            (&mut self.accept, &other.accept),
            (&mut self.form, &other.form),
        ] {
            let _ = mine.add(theirs);
        }
    }
}

fn elapsed_ns(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// One party: the leader creates it, then every member joins at once (as
/// after an invite), and in a closed party the leader accepts each request
/// in turn.
async fn form_party(
    members: Vec<Arc<Client>>,
    open: bool,
    max_size: u16,
) -> Result<(PartyId, ControlLatencies), ClientError> {
    let mut latencies = ControlLatencies::default();
    let started = Instant::now();
    let leader = members[0].clone();
    let created = patiently(|| {
        leader.create_party(PartySettings {
            open,
            max_size,
            label: "loadtest".to_string(),
            ..PartySettings::default()
        })
    })
    .await?;
    record(&mut latencies.create, elapsed_ns(started));
    let party_id = created.party_id;
    // The leader accepts one request at a time, as a player would: a burst
    // of concurrent accepts is a flood the server's command limit cuts.
    let accepting_turn = Arc::new(tokio::sync::Mutex::new(()));
    let mut joins = JoinSet::new();
    for member in members.into_iter().skip(1) {
        let (leader, accepting_turn) = (leader.clone(), accepting_turn.clone());
        joins.spawn(async move {
            let mut latencies = ControlLatencies::default();
            let asked = Instant::now();
            let outcome = patiently(|| member.join_party(party_id)).await?;
            record(&mut latencies.join, elapsed_ns(asked));
            if let JoinOutcome::Queued { .. } = outcome {
                let _turn = accepting_turn.lock().await;
                let accepting = Instant::now();
                let user_id = member.presence().user_id;
                patiently(|| leader.accept(party_id, &user_id)).await?;
                record(&mut latencies.accept, elapsed_ns(accepting));
            }
            Ok::<_, ClientError>(latencies)
        });
    }
    while let Some(joined) = joins.join_next().await {
        if let Ok(result) = joined {
            latencies.merge(&result?);
        }
    }
    record(&mut latencies.form, elapsed_ns(started));
    Ok((party_id, latencies))
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
            let formed = form_party(members, open, max_size).await;
            drop(permit);
            formed.map(|(id, latencies)| (party, id, latencies))
        });
    }
    let mut ids = vec![PartyId::nil(); config.parties];
    let mut all = ControlLatencies::default();
    while let Some(joined) = tasks.join_next().await {
        let Ok(result) = joined else { continue };
        let (party, id, latencies) = result.map_err(LoadtestError::Party)?;
        ids[party] = id;
        all.merge(&latencies);
        progress.advance(1);
    }
    Ok((ids, all))
}
