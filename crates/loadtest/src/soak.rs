//! The soak: a long run of everything a live server sees at once, to show
//! that memory stays flat and that everything a session leaves behind goes
//! away with it.
//!
//! For the whole `duration`, side by side:
//! - steady parties sending datagrams at `rate_hz` and now and then a
//!   reliable message, every delivery counted;
//! - churn: pairs of sessions that connect, make a party (open or closed,
//!   with a join code, listed, with a waiting matchmaking ticket, with a
//!   follow), seat the second one, talk a little and go, some with a clean
//!   goodbye and some silently (their grace window runs out on the server);
//! - resumers: sessions that lose their connection silently and come back
//!   with their resume ticket inside the grace window, checked to still
//!   hold their seat;
//! - now and then a flooder (datagrams, or commands, far above the rate
//!   limits: each should be cut) or a session sending garbage datagrams and
//!   frames (cut when it announces an oversized frame).
//!
//! Every `sample_interval` the server's RSS and CPU (from /proc) and its
//! gauges (from its metrics endpoint) are sampled and written as a JSON
//! line. At the end everyone leaves and, past the server's idle timeout
//! and grace window, the gauges must read zero; RSS at the end of the load
//! must be within 10% of RSS after the warm-up.

use crate::mute::{muteable_endpoint, Mute};
use crate::{procstat, scrape, SOCKET_BUFFER};
use partyline_client::protocol::{
    decode_body, encode_frame, frame_body_len_within, ClientFrame, CloseCode, Hello, Identity,
    Resumed, ServerFrame, FRAME_HEADER_LEN, MAX_FRAME_SIZE, MAX_WELCOME_SIZE, PROTOCOL_VERSION,
};
use partyline_client::{
    shared_endpoint, Client, ClientConfig, ClientError, DisconnectReason, Event, Events,
    JoinOutcome, KeyValues, PartyId, PartySettings, TicketQuery, TicketRequest,
};
use rustls::pki_types::CertificateDer;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::JoinSet;

/// RSS at the end of the load may differ from RSS after the warm-up by
/// at most this fraction.
pub const RSS_TOLERANCE: f64 = 0.10;
/// Payload of the steady parties' messages.
const PAYLOAD: usize = 64;
/// Time after the last send for messages in flight to arrive.
const DRAIN: Duration = Duration::from_secs(2);
/// Churn cycles in progress at most: a slow server is not buried under
/// ever more handshakes (cycles not started are counted as skipped).
const CHURN_IN_FLIGHT: usize = 64;
/// Errors kept word for word for the report.
const ERRORS_KEPT: usize = 20;
/// The gauges that must read zero once everyone has gone.
pub const GAUGES_TO_ZERO: [&str; 5] = [
    "sessions",
    "parties",
    "parties_listed",
    "matchmaking_tickets",
    "join_codes",
];

#[derive(Clone, Debug)]
pub struct SoakConfig {
    pub server: SocketAddr,
    pub certs: Vec<CertificateDer<'static>>,
    /// The server process, for RSS and CPU (`None`: not measured, and the
    /// RSS criterion fails).
    pub server_pid: Option<u32>,
    /// The server's metrics endpoint (`--metrics`), for the gauges.
    pub server_metrics: SocketAddr,
    /// The server's `--idle-timeout` and `--grace`: how long a silently
    /// dropped session may take to go.
    pub server_idle_timeout: Duration,
    pub server_grace: Duration,
    /// The whole load, warm-up included.
    pub duration: Duration,
    /// The first part of the load, after which RSS is the reference.
    pub warmup: Duration,
    pub sample_interval: Duration,
    /// RSS after warm-up is the median of the samples in this long a window
    /// after the warm-up; RSS at the end, of those in the last window of the
    /// load (one sample would read a churn burst as growth).
    pub rss_window: Duration,
    pub parties: usize,
    pub party_size: usize,
    /// Datagrams per steady member per second.
    pub rate_hz: f64,
    /// Each steady member sends one reliable message about this often.
    pub reliable_every: Duration,
    /// Churn pairs started per second (two sessions each).
    pub churn_per_s: f64,
    /// A churn pair stays up to this long.
    pub churn_hold_max: Duration,
    /// Sessions that lose their connection and resume, each with a partner.
    pub resumers: usize,
    /// Each resumer loses its connection about this often.
    pub resume_every: Duration,
    /// Longest wait between the loss and the resume; keep it inside the
    /// server's idle timeout plus grace window.
    pub resume_delay_max: Duration,
    /// One flooder or garbage sender this often, in turn (zero: none).
    pub flood_every: Duration,
    /// Shared client endpoints (UDP sockets) for the sessions that never
    /// drop silently.
    pub endpoints: usize,
    /// The sessions' QUIC keep-alive; `None` keeps the SDK's (7 s). A
    /// server with an idle timeout shorter than that needs a shorter one.
    pub client_keep_alive: Option<Duration>,
    /// One line to stderr per sample.
    pub verbose: bool,
    pub seed: u64,
}

impl SoakConfig {
    /// The defaults of `partyline-loadtest soak`, against a server with the
    /// default idle timeout (10 s) and grace window (15 s).
    pub fn new(
        server: SocketAddr,
        certs: Vec<CertificateDer<'static>>,
        metrics: SocketAddr,
    ) -> Self {
        SoakConfig {
            server,
            certs,
            server_pid: None,
            server_metrics: metrics,
            server_idle_timeout: Duration::from_secs(10),
            server_grace: Duration::from_secs(15),
            duration: Duration::from_secs(30 * 60),
            warmup: Duration::from_secs(120),
            sample_interval: Duration::from_secs(10),
            rss_window: Duration::from_secs(60),
            parties: 50,
            party_size: 4,
            rate_hz: 10.0,
            reliable_every: Duration::from_secs(5),
            churn_per_s: 1.5,
            churn_hold_max: Duration::from_secs(8),
            resumers: 8,
            resume_every: Duration::from_secs(30),
            resume_delay_max: Duration::from_secs(20),
            flood_every: Duration::from_secs(60),
            endpoints: 2,
            client_keep_alive: None,
            verbose: false,
            seed: 0x5eed,
        }
    }

    /// Checks the settings make a run that can pass.
    pub fn validate(&self) -> Result<(), SoakError> {
        let invalid = |message: &str| Err(SoakError::Invalid(message.to_string()));
        if self.parties == 0 || !(2..=256).contains(&self.party_size) {
            return invalid("steady parties need --parties >= 1 and --party-size 2 to 256");
        }
        if !self.rate_hz.is_finite() || self.rate_hz <= 0.0 {
            return invalid("--rate must be above 0");
        }
        if !self.churn_per_s.is_finite() || self.churn_per_s < 0.0 {
            return invalid("--churn-rate must be 0 or more");
        }
        if self.warmup + self.rss_window > self.duration {
            return invalid("--duration must hold the warm-up and one RSS window after it");
        }
        if self.sample_interval.is_zero() || self.sample_interval > self.rss_window {
            return invalid("--sample-interval must be above 0 and within --rss-window");
        }
        if self.resume_delay_max >= self.server_idle_timeout + self.server_grace {
            return invalid(
                "--resume-delay-max must be shorter than the server's idle timeout plus grace",
            );
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    #[error("invalid soak: {0}")]
    Invalid(String),
    #[error("steady party {party}: {source}")]
    Steady { party: usize, source: ClientError },
    #[error("client endpoint: {0}")]
    Endpoint(String),
}

/// What the driver did and saw, counted as it went.
#[derive(Default)]
struct Counts {
    sessions_connected: AtomicU64,
    connect_failures: AtomicU64,
    churn_cycles: AtomicU64,
    churn_skipped: AtomicU64,
    churn_errors: AtomicU64,
    clean_closes: AtomicU64,
    silent_drops: AtomicU64,
    resumes_ok: AtomicU64,
    resumes_failed: AtomicU64,
    datagram_flooders: AtomicU64,
    datagram_flooders_cut: AtomicU64,
    command_flooders: AtomicU64,
    command_flooders_cut: AtomicU64,
    garbage_senders: AtomicU64,
    garbage_senders_cut: AtomicU64,
    steady_lost: AtomicU64,
    datagrams_sent: AtomicU64,
    datagrams_received: AtomicU64,
    reliable_sent: AtomicU64,
    reliable_received: AtomicU64,
    sends_failed: AtomicU64,
}

/// The counts at one moment.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct CountsSnapshot {
    pub sessions_connected: u64,
    pub connect_failures: u64,
    pub churn_cycles: u64,
    pub churn_skipped: u64,
    pub churn_errors: u64,
    pub clean_closes: u64,
    pub silent_drops: u64,
    pub resumes_ok: u64,
    pub resumes_failed: u64,
    pub datagram_flooders: u64,
    pub datagram_flooders_cut: u64,
    pub command_flooders: u64,
    pub command_flooders_cut: u64,
    pub garbage_senders: u64,
    pub garbage_senders_cut: u64,
    /// Steady sessions whose connection ended before the teardown.
    pub steady_lost: u64,
    pub datagrams_sent: u64,
    pub datagrams_received: u64,
    pub reliable_sent: u64,
    pub reliable_received: u64,
    pub sends_failed: u64,
}

impl Counts {
    fn snapshot(&self) -> CountsSnapshot {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CountsSnapshot {
            sessions_connected: get(&self.sessions_connected),
            connect_failures: get(&self.connect_failures),
            churn_cycles: get(&self.churn_cycles),
            churn_skipped: get(&self.churn_skipped),
            churn_errors: get(&self.churn_errors),
            clean_closes: get(&self.clean_closes),
            silent_drops: get(&self.silent_drops),
            resumes_ok: get(&self.resumes_ok),
            resumes_failed: get(&self.resumes_failed),
            datagram_flooders: get(&self.datagram_flooders),
            datagram_flooders_cut: get(&self.datagram_flooders_cut),
            command_flooders: get(&self.command_flooders),
            command_flooders_cut: get(&self.command_flooders_cut),
            garbage_senders: get(&self.garbage_senders),
            garbage_senders_cut: get(&self.garbage_senders_cut),
            steady_lost: get(&self.steady_lost),
            datagrams_sent: get(&self.datagrams_sent),
            datagrams_received: get(&self.datagrams_received),
            reliable_sent: get(&self.reliable_sent),
            reliable_received: get(&self.reliable_received),
            sends_failed: get(&self.sends_failed),
        }
    }
}

fn add(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A small seeded xorshift: the run's choices are reproducible from its
/// seed, and the load generator needs no random-number crate.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // Spread nearby seeds apart; never zero (xorshift stays at zero).
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn between(&mut self, low: Duration, high: Duration) -> Duration {
        low + high.saturating_sub(low).mul_f64(self.unit())
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Where the run is, for the samples.
const PHASE_LOAD: u8 = 0;
const PHASE_TEARDOWN: u8 = 1;
const PHASE_AFTER: u8 = 2;

fn phase_name(phase: u8, t: Duration, warmup: Duration) -> &'static str {
    match phase {
        PHASE_LOAD if t < warmup => "warm-up",
        PHASE_LOAD => "load",
        PHASE_TEARDOWN => "teardown",
        _ => "after",
    }
}

/// Everything the driver's tasks share.
struct Ctx {
    config: SoakConfig,
    endpoints: Vec<quinn::Endpoint>,
    counts: Counts,
    errors: Mutex<Vec<String>>,
    stop: watch::Sender<bool>,
    next_seed: AtomicU64,
}

impl Ctx {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleeps `duration`; false when the run stops first.
    async fn sleep(&self, duration: Duration) -> bool {
        let mut stop = self.stop.subscribe();
        tokio::select! {
            _ = tokio::time::sleep(duration) => !self.stopping(),
            _ = stop.wait_for(|stopping| *stopping) => false,
        }
    }

    fn rng(&self) -> Rng {
        let n = self.next_seed.fetch_add(1, Ordering::Relaxed);
        Rng::new(self.config.seed ^ n.wrapping_mul(0x2545_f491_4f6c_dd1d))
    }

    fn error(&self, what: &str, error: impl std::fmt::Display) {
        let mut errors = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
        if errors.len() < ERRORS_KEPT {
            errors.push(format!("{what}: {error}"));
        }
    }

    fn session_config(&self, user: &str) -> ClientConfig {
        let mut config =
            ClientConfig::dev(self.config.server, self.config.certs.clone(), user, user);
        // Losses are counted, not hidden: reconnecting is the resumers'
        // job, done by hand with their tickets.
        config.auto_reconnect = false;
        if let Some(keep_alive) = self.config.client_keep_alive {
            config.keep_alive = keep_alive;
        }
        config
    }

    fn shared_endpoint(&self, n: u64) -> &quinn::Endpoint {
        &self.endpoints[n as usize % self.endpoints.len()]
    }

    async fn connect(
        &self,
        endpoint: &quinn::Endpoint,
        config: ClientConfig,
    ) -> Result<(Client, Events), ClientError> {
        match Client::connect_on(endpoint, config).await {
            Ok(connected) => {
                add(&self.counts.sessions_connected);
                Ok(connected)
            }
            Err(error) => {
                add(&self.counts.connect_failures);
                Err(error)
            }
        }
    }
}

/// Whose data a reader counts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A steady party member: data counted as delivered, and an end
    /// before the teardown counted as a lost session.
    Steady,
    Other,
}

/// Drains a session's events (an unread queue would stall its control
/// stream) and hands back how the session ended.
fn read_events(
    ctx: Arc<Ctx>,
    mut events: Events,
    role: Role,
) -> oneshot::Receiver<DisconnectReason> {
    let (ended_tx, ended_rx) = oneshot::channel();
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            match event {
                Event::Data(data) if role == Role::Steady => {
                    if data.reliable {
                        add(&ctx.counts.reliable_received);
                    } else {
                        add(&ctx.counts.datagrams_received);
                    }
                }
                Event::Disconnected { reason } => {
                    if role == Role::Steady && reason != DisconnectReason::ClosedLocally {
                        add(&ctx.counts.steady_lost);
                        ctx.error("steady session lost", &reason);
                    }
                    let _ = ended_tx.send(reason);
                    return;
                }
                _ => {}
            }
        }
    });
    ended_rx
}

/// One sample: the server's memory, CPU and gauges, and the driver's counts.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub kind: &'static str,
    pub t_s: f64,
    pub phase: &'static str,
    pub rss_bytes: Option<u64>,
    pub cpu_s: Option<f64>,
    /// Cores the server used since the previous sample.
    pub cpu_cores: Option<f64>,
    pub gauges: BTreeMap<String, u64>,
    pub counters: BTreeMap<String, u64>,
    pub driver: CountsSnapshot,
}

/// Gauges, and the counters worth following, read from the server.
fn read_metrics(text: Option<&str>) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let mut gauges = BTreeMap::new();
    let mut counters = BTreeMap::new();
    let Some(text) = text else {
        return (gauges, counters);
    };
    for name in GAUGES_TO_ZERO
        .iter()
        .copied()
        .chain(["transport_connections", "handshakes_in_progress"])
    {
        if let Some(value) = scrape::series(text, &format!("partyline_{name}")) {
            gauges.insert(name.to_string(), value);
        }
    }
    for (key, series) in [
        ("sessions_new", "partyline_sessions_total{kind=\"new\"}"),
        (
            "sessions_resumed",
            "partyline_sessions_total{kind=\"resumed\"}",
        ),
        (
            "rate_limit_disconnects",
            "partyline_disconnects_total{cause=\"rate_limit\"}",
        ),
        (
            "slow_consumer_disconnects",
            "partyline_disconnects_total{cause=\"slow_consumer\"}",
        ),
        ("commands", "partyline_commands_total"),
        (
            "datagrams_in",
            "partyline_data_total{direction=\"in\",path=\"datagram\"}",
        ),
        (
            "datagrams_out",
            "partyline_data_total{direction=\"out\",path=\"datagram\"}",
        ),
        (
            "dropped_rate_limit",
            "partyline_dropped_total{cause=\"rate_limit\"}",
        ),
    ] {
        if let Some(value) = scrape::series(text, series) {
            counters.insert(key.to_string(), value);
        }
    }
    (gauges, counters)
}

/// Reads /proc and the metrics endpoint off the runtime's threads (both
/// block, the scrape for up to 2 s).
async fn probe(
    pid: Option<u32>,
    metrics: SocketAddr,
) -> (Option<procstat::ProcessSample>, Option<String>) {
    tokio::task::spawn_blocking(move || {
        (
            pid.and_then(procstat::sample),
            scrape::metrics_text(metrics),
        )
    })
    .await
    .unwrap_or((None, None))
}

type SampleSink = Arc<Mutex<Option<Box<dyn Write + Send>>>>;

fn write_line(sink: &SampleSink, line: &impl Serialize) {
    let mut sink = sink.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(out) = sink.as_mut() {
        let written = serde_json::to_writer(&mut *out, line)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush());
        if let Err(error) = written {
            eprintln!("warning: writing a sample: {error}; no more samples are written");
            *sink = None;
        }
    }
}

struct Sampler {
    ctx: Arc<Ctx>,
    started: Instant,
    phase: Arc<AtomicU8>,
    sink: SampleSink,
    samples: Arc<Mutex<Vec<Sample>>>,
    last_cpu: Mutex<Option<(Instant, Duration)>>,
}

impl Sampler {
    async fn take(&self) -> Sample {
        let config = &self.ctx.config;
        let (process, text) = probe(config.server_pid, config.server_metrics).await;
        let now = Instant::now();
        let t = now.duration_since(self.started);
        let (gauges, counters) = read_metrics(text.as_deref());
        let cpu_cores = process.and_then(|process| {
            let mut last = self.last_cpu.lock().unwrap_or_else(PoisonError::into_inner);
            let previous = last.replace((now, process.cpu));
            previous.map(|(at, cpu)| {
                process.cpu.saturating_sub(cpu).as_secs_f64()
                    / now.duration_since(at).as_secs_f64().max(f64::MIN_POSITIVE)
            })
        });
        let sample = Sample {
            kind: "sample",
            t_s: t.as_secs_f64(),
            phase: phase_name(self.phase.load(Ordering::Acquire), t, config.warmup),
            rss_bytes: process.map(|p| p.rss_bytes),
            cpu_s: process.map(|p| p.cpu.as_secs_f64()),
            cpu_cores,
            gauges,
            counters,
            driver: self.ctx.counts.snapshot(),
        };
        if config.verbose {
            eprintln!("{}", sample_line(&sample));
        }
        write_line(&self.sink, &sample);
        self.samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(sample.clone());
        sample
    }
}

/// One line of progress for a sample.
fn sample_line(sample: &Sample) -> String {
    let gauge = |name: &str| {
        sample
            .gauges
            .get(name)
            .map_or("?".to_string(), u64::to_string)
    };
    let d = &sample.driver;
    format!(
        "soak {:>7.1}s {:<8} rss {:>7} cpu {:>5} sessions {:>4} parties {:>4} listed {} tickets {} codes {} | connects {} resumes {}/{} floods cut {} garbage cut {}",
        sample.t_s,
        sample.phase,
        sample
            .rss_bytes
            .map_or("?".to_string(), |b| format!("{:.1}M", b as f64 / 1048576.0)),
        sample
            .cpu_cores
            .map_or("-".to_string(), |c| format!("{c:.2}")),
        gauge("sessions"),
        gauge("parties"),
        gauge("parties_listed"),
        gauge("matchmaking_tickets"),
        gauge("join_codes"),
        d.sessions_connected,
        d.resumes_ok,
        d.resumes_ok + d.resumes_failed,
        d.datagram_flooders_cut + d.command_flooders_cut,
        d.garbage_senders_cut,
    )
}

struct SteadyMember {
    client: Arc<Client>,
    party_id: PartyId,
}

/// Connects and seats the steady parties (open, full).
async fn start_steady(ctx: &Arc<Ctx>) -> Result<Vec<SteadyMember>, SoakError> {
    let config = &ctx.config;
    let mut members = Vec::with_capacity(config.parties * config.party_size);
    for party in 0..config.parties {
        let steady = |source| SoakError::Steady { party, source };
        let mut clients = Vec::with_capacity(config.party_size);
        for seat in 0..config.party_size {
            let user = format!("steady-{party}-{seat}");
            let endpoint = ctx.shared_endpoint((party * config.party_size + seat) as u64);
            let (client, events) = ctx
                .connect(endpoint, ctx.session_config(&user))
                .await
                .map_err(steady)?;
            // The reader's end is not awaited: a loss is counted by it.
            drop(read_events(ctx.clone(), events, Role::Steady));
            clients.push(Arc::new(client));
        }
        let created = clients[0]
            .create_party(PartySettings {
                open: true,
                max_size: config.party_size as u16,
                label: "soak-steady".to_string(),
                ..PartySettings::default()
            })
            .await
            .map_err(steady)?;
        for client in &clients[1..] {
            client.join_party(created.party_id).await.map_err(steady)?;
        }
        members.extend(clients.into_iter().map(|client| SteadyMember {
            client,
            party_id: created.party_id,
        }));
    }
    Ok(members)
}

/// A steady member's sending: datagrams on a fixed period, one in about
/// `reliable_every` sent reliably instead.
async fn steady_sender(ctx: Arc<Ctx>, member: Arc<Client>, party_id: PartyId) {
    let mut rng = ctx.rng();
    let period = Duration::from_secs_f64(1.0 / ctx.config.rate_hz);
    let reliable_each = (ctx.config.reliable_every.as_secs_f64() * ctx.config.rate_hz)
        .round()
        .max(1.0) as u64;
    let mut tick = rng.next() % reliable_each;
    let payload = rng.bytes(PAYLOAD);
    // Spread over the period, so the members do not all send at once.
    let first = tokio::time::Instant::now() + period.mul_f64(rng.unit());
    let mut ticker = tokio::time::interval_at(first, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut stop = ctx.stop.subscribe();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|stopping| *stopping) => return,
        }
        tick += 1;
        let sent = if tick.is_multiple_of(reliable_each) {
            let sent = member.send_data_reliable(party_id, 2, &payload).await;
            sent.map(|()| &ctx.counts.reliable_sent)
        } else {
            let sent = member.send_data(party_id, 1, &payload);
            sent.map(|()| &ctx.counts.datagrams_sent)
        };
        match sent {
            Ok(counter) => add(counter),
            Err(error) => {
                add(&ctx.counts.sends_failed);
                ctx.error("steady send", error);
            }
        }
    }
}

/// A session of a churn pair; `mute` is set for one that goes silently.
struct Churner {
    client: Client,
    user: String,
    mute: Option<Mute>,
}

impl Churner {
    async fn connect(
        ctx: &Arc<Ctx>,
        user: String,
        n: u64,
        silent: bool,
    ) -> Result<Churner, String> {
        let (endpoint, mute) = if silent {
            // Its own socket, so silencing it touches no other session.
            let (endpoint, mute) = muteable_endpoint(ctx.config.server)
                .map_err(|error| format!("endpoint: {error}"))?;
            (endpoint, Some(mute))
        } else {
            (ctx.shared_endpoint(n).clone(), None)
        };
        let (client, events) = ctx
            .connect(&endpoint, ctx.session_config(&user))
            .await
            .map_err(|error| format!("connect: {error}"))?;
        drop(read_events(ctx.clone(), events, Role::Other));
        Ok(Churner { client, user, mute })
    }

    /// Goes silently when made to (the server times the connection out,
    /// then the grace window runs out), else with a goodbye.
    async fn go(self, ctx: &Ctx) {
        let Churner { client, mute, .. } = self;
        match mute {
            Some(mute) => {
                mute.silence();
                drop(client);
                add(&ctx.counts.silent_drops);
            }
            None => {
                client.close().await;
                add(&ctx.counts.clean_closes);
            }
        }
    }
}

/// A party ticket no round can match (it asks every other ticket for a
/// property none has): it waits until its party or session goes.
fn unmatchable_ticket(party_id: PartyId) -> TicketRequest {
    TicketRequest {
        party_id: Some(party_id),
        min_count: 8,
        max_count: 8,
        count_multiple: 1,
        query: TicketQuery {
            strings: KeyValues::from([("soak".to_string(), "never".to_string())]),
            ..TicketQuery::default()
        },
        ..TicketRequest::default()
    }
}

/// The four kinds of churn pair, in turn (A leads, B joins):
/// 0. open party; B and A leave, both close;
/// 1. closed party with a join code, listed; B asks by code, A accepts,
///    follows B and sets a status; A closes the party, both close;
/// 2. open party, listed, with a party ticket waiting; B drops silently,
///    A closes without leaving;
/// 3. closed party, join code, listed, ticket; both drop silently.
async fn churn_pair(ctx: Arc<Ctx>, n: u64) {
    let kind = n % 4;
    let a = match Churner::connect(&ctx, format!("churn-{n}-a"), n, kind == 3).await {
        Ok(a) => a,
        Err(error) => {
            add(&ctx.counts.churn_errors);
            ctx.error("churn", error);
            return;
        }
    };
    let b = match Churner::connect(&ctx, format!("churn-{n}-b"), n + 1, kind >= 2).await {
        Ok(b) => b,
        Err(error) => {
            add(&ctx.counts.churn_errors);
            ctx.error("churn", error);
            a.go(&ctx).await;
            return;
        }
    };
    if let Err(error) = churn_play(&ctx, &a, &b, kind).await {
        add(&ctx.counts.churn_errors);
        ctx.error(&format!("churn pair {n} (kind {kind})"), error);
    }
    b.go(&ctx).await;
    a.go(&ctx).await;
    add(&ctx.counts.churn_cycles);
}

async fn churn_play(ctx: &Ctx, a: &Churner, b: &Churner, kind: u64) -> Result<(), ClientError> {
    let closed = !kind.is_multiple_of(2);
    let party_id = a
        .client
        .create_party(PartySettings {
            open: !closed,
            max_size: 4,
            label: "soak-churn".to_string(),
            ..PartySettings::default()
        })
        .await?
        .party_id;
    let code = match closed {
        true => Some(a.client.create_join_code(party_id).await?),
        false => None,
    };
    if kind >= 1 {
        let properties = KeyValues::from([("mode".to_string(), "soak".to_string())]);
        a.client.list_party(party_id, properties).await?;
    }
    let outcome = match &code {
        Some(code) => b.client.join_by_code(code).await?,
        None => b.client.join_party(party_id).await?,
    };
    if let JoinOutcome::Queued { .. } = outcome {
        a.client.accept(party_id, &b.user).await?;
    }
    if kind == 1 {
        a.client.follow(&[b.user.as_str()]).await?;
        a.client.set_status("soaking", true).await?;
    }
    if kind >= 2 {
        a.client.submit_ticket(unmatchable_ticket(party_id)).await?;
    }
    // A little talk while they stay.
    let mut rng = ctx.rng();
    let stay = rng.between(Duration::from_millis(500), ctx.config.churn_hold_max);
    let until = Instant::now() + stay;
    while Instant::now() < until && ctx.sleep(Duration::from_millis(200)).await {
        let _ = a.client.send_data(party_id, 1, b"churn");
        let _ = b.client.send_data(party_id, 1, b"churn");
    }
    match kind {
        0 => {
            b.client.leave_party(party_id).await?;
            a.client.leave_party(party_id).await?;
        }
        1 => a.client.close_party(party_id).await?,
        // They go without a word about the party.
        _ => {}
    }
    Ok(())
}

/// Starts churn pairs at `churn_per_s` until the run stops, then waits for
/// the pairs under way to finish.
async fn churn(ctx: Arc<Ctx>) {
    if ctx.config.churn_per_s <= 0.0 {
        return;
    }
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / ctx.config.churn_per_s));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let slots = Arc::new(Semaphore::new(CHURN_IN_FLIGHT));
    let mut pairs = JoinSet::new();
    let mut stop = ctx.stop.subscribe();
    for n in 0u64.. {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|stopping| *stopping) => break,
        }
        while pairs.try_join_next().is_some() {}
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            add(&ctx.counts.churn_skipped);
            continue;
        };
        let ctx = ctx.clone();
        pairs.spawn(async move {
            churn_pair(ctx, n).await;
            drop(slot);
        });
    }
    while pairs.join_next().await.is_some() {}
}

/// Whether a resumed session is the old one and still holds its seat in
/// the server's party. (Not the new client's roster: a client built from a
/// ticket starts with an empty one when the server replays the missed
/// events, as those are only what changed.)
async fn kept_seat(client: &Client, party_id: PartyId) -> Result<(), String> {
    if matches!(client.welcome().resumed, Resumed::New) {
        return Err("the server started a new session instead".into());
    }
    let party = client
        .get_party(party_id)
        .await
        .map_err(|error| format!("get_party: {error}"))?;
    let me = client.session_id();
    if !party.members.iter().any(|m| m.presence.session_id == me) {
        return Err("the server's party has no seat for it".into());
    }
    Ok(())
}

/// One resumer: a session in a party with a partner, that now and then
/// loses its connection without a word and takes the session back with
/// its resume ticket after a while inside the grace window.
async fn resumer(ctx: Arc<Ctx>, index: usize) {
    if let Err(error) = resume_loop(&ctx, index).await {
        ctx.error(&format!("resumer {index}"), error);
    }
}

async fn resume_loop(ctx: &Arc<Ctx>, index: usize) -> Result<(), String> {
    let mut rng = ctx.rng();
    let user = format!("resumer-{index}");
    let (partner, events) = ctx
        .connect(
            ctx.shared_endpoint(index as u64),
            ctx.session_config(&format!("{user}-partner")),
        )
        .await
        .map_err(|error| format!("partner connect: {error}"))?;
    drop(read_events(ctx.clone(), events, Role::Other));
    let party_id = partner
        .create_party(PartySettings {
            open: true,
            max_size: 2,
            label: "soak-resume".to_string(),
            ..PartySettings::default()
        })
        .await
        .map_err(|error| format!("partner create: {error}"))?
        .party_id;
    let (endpoint, mut mute) =
        muteable_endpoint(ctx.config.server).map_err(|error| format!("endpoint: {error}"))?;
    let (mut client, events) = ctx
        .connect(&endpoint, ctx.session_config(&user))
        .await
        .map_err(|error| format!("connect: {error}"))?;
    drop(read_events(ctx.clone(), events, Role::Other));
    client
        .join_party(party_id)
        .await
        .map_err(|error| format!("join: {error}"))?;
    let every = ctx.config.resume_every;
    while ctx.sleep(rng.between(every / 2, every * 3 / 2)).await {
        // The connection dies: nothing more reaches the server from it,
        // not even the goodbye dropping the client sends.
        mute.silence();
        let ticket = client.resume_ticket();
        drop(client);
        let away = rng.between(Duration::from_millis(500), ctx.config.resume_delay_max);
        tokio::time::sleep(away).await;
        let (endpoint, new_mute) =
            muteable_endpoint(ctx.config.server).map_err(|error| format!("endpoint: {error}"))?;
        let mut config = ctx.session_config(&user);
        config.resume = Some(ticket);
        let (resumed, events, refused) = match ctx.connect(&endpoint, config).await {
            Ok((resumed, events)) => (resumed, events, false),
            Err(error) => {
                add(&ctx.counts.resumes_failed);
                ctx.error(&format!("resume after {away:?} away"), &error);
                // Back as a new session, to go on losing and resuming.
                let (fresh, events) = ctx
                    .connect(&endpoint, ctx.session_config(&user))
                    .await
                    .map_err(|error| format!("connect after a failed resume: {error}"))?;
                fresh
                    .join_party(party_id)
                    .await
                    .map_err(|error| format!("join after a failed resume: {error}"))?;
                (fresh, events, true)
            }
        };
        drop(read_events(ctx.clone(), events, Role::Other));
        if !refused {
            match kept_seat(&resumed, party_id).await {
                Ok(()) => add(&ctx.counts.resumes_ok),
                Err(why) => {
                    add(&ctx.counts.resumes_failed);
                    ctx.error(&format!("resume after {away:?} away"), why);
                }
            }
        }
        client = resumed;
        mute = new_mute;
    }
    for session in [client, partner] {
        let _ = session.leave_party(party_id).await;
        session.close().await;
        add(&ctx.counts.clean_closes);
    }
    Ok(())
}

/// How long a flooder floods before it is counted as not cut.
const FLOOD_LIMIT: Duration = Duration::from_secs(20);

/// A flooder, a command flooder or a garbage sender every `flood_every`,
/// in turn.
async fn flooders(ctx: Arc<Ctx>) {
    if ctx.config.flood_every.is_zero() {
        return;
    }
    let mut n = 0u64;
    while ctx.sleep(ctx.config.flood_every).await {
        match n % 3 {
            0 => datagram_flood(&ctx, n).await,
            1 => command_flood(&ctx, n).await,
            _ => garbage(&ctx, n).await,
        }
        n += 1;
    }
}

fn cut_for_rate(reason: &Result<DisconnectReason, FloodEnd>) -> bool {
    matches!(reason, Ok(DisconnectReason::ClosedByServer { code, .. }) if *code == CloseCode::RateLimited as u64)
}

#[derive(Debug)]
enum FloodEnd {
    /// Still connected after `FLOOD_LIMIT`.
    NotCut,
    /// The event reader ended without a reason.
    Unknown,
}

/// Sends datagrams at 5,000 a second, ten times the server's default data
/// limit, until the server cuts the session.
async fn datagram_flood(ctx: &Arc<Ctx>, n: u64) {
    add(&ctx.counts.datagram_flooders);
    let user = format!("datagram-flooder-{n}");
    let (client, events) = match ctx
        .connect(ctx.shared_endpoint(n), ctx.session_config(&user))
        .await
    {
        Ok(connected) => connected,
        Err(error) => return ctx.error("datagram flooder", error),
    };
    let mut ended = read_events(ctx.clone(), events, Role::Other);
    let party_id = match client.create_party(PartySettings::default()).await {
        Ok(party) => party.party_id,
        Err(error) => return ctx.error("datagram flooder", error),
    };
    let payload = [7u8; PAYLOAD];
    let give_up = tokio::time::sleep(FLOOD_LIMIT);
    tokio::pin!(give_up);
    let mut ticker = tokio::time::interval(Duration::from_millis(5));
    let reason = loop {
        tokio::select! {
            reason = &mut ended => break reason.map_err(|_| FloodEnd::Unknown),
            _ = &mut give_up => break Err(FloodEnd::NotCut),
            _ = ticker.tick() => {
                for _ in 0..25 {
                    if client.send_data(party_id, 1, &payload).is_err() {
                        break;
                    }
                }
            }
        }
    };
    if cut_for_rate(&reason) {
        add(&ctx.counts.datagram_flooders_cut);
    } else {
        ctx.error(
            "datagram flooder not cut for its rate",
            format!("{reason:?}"),
        );
    }
    client.close().await;
}

/// Sends commands at 1,000 a second, twenty times the server's default
/// command limit, until the server cuts the session.
async fn command_flood(ctx: &Arc<Ctx>, n: u64) {
    add(&ctx.counts.command_flooders);
    let user = format!("command-flooder-{n}");
    let (client, events) = match ctx
        .connect(ctx.shared_endpoint(n), ctx.session_config(&user))
        .await
    {
        Ok(connected) => connected,
        Err(error) => return ctx.error("command flooder", error),
    };
    let mut ended = read_events(ctx.clone(), events, Role::Other);
    let client = Arc::new(client);
    let give_up = tokio::time::sleep(FLOOD_LIMIT);
    tokio::pin!(give_up);
    let mut ticker = tokio::time::interval(Duration::from_millis(5));
    let mut requests = JoinSet::new();
    let reason = loop {
        tokio::select! {
            reason = &mut ended => break reason.map_err(|_| FloodEnd::Unknown),
            _ = &mut give_up => break Err(FloodEnd::NotCut),
            _ = ticker.tick() => {
                while requests.try_join_next().is_some() {}
                for _ in 0..5 {
                    let client = client.clone();
                    requests.spawn(async move {
                        let _ = client.set_status("flooding", true).await;
                    });
                }
            }
        }
    };
    if cut_for_rate(&reason) {
        add(&ctx.counts.command_flooders_cut);
    } else {
        ctx.error(
            "command flooder not cut for its rate",
            format!("{reason:?}"),
        );
    }
    requests.abort_all();
    client.disconnect();
}

/// A session that sends random bytes as datagrams and as frames, then
/// announces a frame over the size limit, which must end it.
async fn garbage(ctx: &Arc<Ctx>, n: u64) {
    add(&ctx.counts.garbage_senders);
    match garbage_session(ctx, n).await {
        Ok(true) => add(&ctx.counts.garbage_senders_cut),
        Ok(false) => ctx.error(
            "garbage sender",
            "not closed FrameTooLarge after an oversized frame",
        ),
        Err(error) => ctx.error("garbage sender", error),
    }
}

async fn garbage_session(ctx: &Arc<Ctx>, n: u64) -> Result<bool, String> {
    let text = |error: &dyn std::fmt::Display| error.to_string();
    let mut rng = ctx.rng();
    // The shared endpoint's own client settings carry partyline's ALPN
    // and trust the server's certificate.
    let connection = ctx
        .shared_endpoint(n)
        .connect(ctx.config.server, "localhost")
        .map_err(|e| text(&e))?
        .await
        .map_err(|e| text(&e))?;
    add(&ctx.counts.sessions_connected);
    let (mut send, mut recv) = connection.open_bi().await.map_err(|e| text(&e))?;
    let user = format!("garbage-{n}");
    let hello = ClientFrame::Hello(Hello {
        version: PROTOCOL_VERSION,
        identity: Identity::Dev {
            user_id: user.clone(),
            username: user,
        },
        resume: None,
    });
    let mut frame = Vec::new();
    encode_frame(&hello, &mut frame).map_err(|e| text(&e))?;
    send.write_all(&frame).await.map_err(|e| text(&e))?;
    let mut header = [0u8; FRAME_HEADER_LEN];
    recv.read_exact(&mut header).await.map_err(|e| text(&e))?;
    let len = frame_body_len_within(header, MAX_WELCOME_SIZE).map_err(|e| text(&e))?;
    let mut body = vec![0; len];
    recv.read_exact(&mut body).await.map_err(|e| text(&e))?;
    match decode_body::<ServerFrame>(&body) {
        Ok(ServerFrame::Welcome(_)) => {}
        other => return Err(format!("expected Welcome, got {other:?}")),
    }
    // What the server answers is read and dropped: an unread stream would
    // make this a slow consumer instead.
    let drain = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok(Some(_)) = recv.read(&mut buf).await {}
    });
    for _ in 0..50 {
        let len = 1 + (rng.next() % 120) as usize;
        let _ = connection.send_datagram(rng.bytes(len).into());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..20 {
        let len = 1 + (rng.next() % 200) as usize;
        let mut frame = (len as u32).to_le_bytes().to_vec();
        frame.extend(rng.bytes(len));
        send.write_all(&frame).await.map_err(|e| text(&e))?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A length over the limit: the stream cannot be read past it.
    send.write_all(&(MAX_FRAME_SIZE + 1).to_le_bytes())
        .await
        .map_err(|e| text(&e))?;
    let closed = tokio::time::timeout(Duration::from_secs(10), connection.closed()).await;
    drain.abort();
    connection.close(0u32.into(), b"done");
    Ok(matches!(
        closed,
        Ok(quinn::ConnectionError::ApplicationClosed(close))
            if close.error_code.into_inner() == CloseCode::FrameTooLarge as u64
    ))
}

/// What the soak found.
#[derive(Clone, Debug, Serialize)]
pub struct SoakReport {
    pub kind: &'static str,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub rss_window_s: f64,
    pub samples: usize,
    pub rss_start_bytes: Option<u64>,
    /// Median of the samples in the window after the warm-up.
    pub rss_after_warmup_bytes: Option<u64>,
    pub rss_peak_bytes: Option<u64>,
    /// Median of the samples in the last window of the load.
    pub rss_end_bytes: Option<u64>,
    /// Once everyone had gone and the gauges were read.
    pub rss_after_teardown_bytes: Option<u64>,
    pub rss_ratio: Option<f64>,
    pub rss_ok: bool,
    /// Server CPU over the load, seconds, and in cores on average.
    pub server_cpu_s: Option<f64>,
    pub server_cores: Option<f64>,
    pub gauges_after: BTreeMap<String, u64>,
    pub gauges_zero: bool,
    /// From the start of the teardown until every gauge read zero.
    pub seconds_to_zero: Option<f64>,
    pub counts: CountsSnapshot,
    pub datagrams_expected: u64,
    pub datagram_delivery: Option<f64>,
    pub reliable_expected: u64,
    pub reliable_delivery: Option<f64>,
    pub errors: Vec<String>,
    pub pass: bool,
}

fn median(mut values: Vec<u64>) -> Option<u64> {
    values.sort_unstable();
    let middle = values.len() / 2;
    match values.len() {
        0 => None,
        len if !len.is_multiple_of(2) => Some(values[middle]),
        _ => Some((values[middle - 1] + values[middle]) / 2),
    }
}

/// RSS of the load-phase samples (warm-up included) with `t` in `[from, to]`.
fn rss_between(samples: &[Sample], from: f64, to: f64) -> Vec<u64> {
    samples
        .iter()
        .filter(|s| matches!(s.phase, "warm-up" | "load") && s.t_s >= from && s.t_s <= to)
        .filter_map(|s| s.rss_bytes)
        .collect()
}

impl SoakReport {
    fn new(
        config: &SoakConfig,
        samples: &[Sample],
        after: &Sample,
        seconds_to_zero: Option<f64>,
        counts: CountsSnapshot,
        errors: Vec<String>,
    ) -> SoakReport {
        let (warmup, window, duration) = (
            config.warmup.as_secs_f64(),
            config.rss_window.as_secs_f64(),
            config.duration.as_secs_f64(),
        );
        let rss_after_warmup = median(rss_between(samples, warmup, warmup + window));
        let rss_end = median(rss_between(samples, duration - window, duration));
        let rss_ratio = rss_after_warmup
            .zip(rss_end)
            .filter(|(warm, _)| *warm > 0)
            .map(|(warm, end)| end as f64 / warm as f64);
        let rss_ok = rss_ratio.is_some_and(|ratio| (ratio - 1.0).abs() <= RSS_TOLERANCE);
        let load: Vec<&Sample> = samples
            .iter()
            .filter(|s| matches!(s.phase, "warm-up" | "load"))
            .collect();
        let server_cpu_s = match (load.first(), load.last()) {
            (Some(first), Some(last)) => last.cpu_s.zip(first.cpu_s).map(|(b, a)| b - a),
            _ => None,
        };
        let load_seconds = match (load.first(), load.last()) {
            (Some(first), Some(last)) => last.t_s - first.t_s,
            _ => 0.0,
        };
        let gauges_zero = GAUGES_TO_ZERO
            .iter()
            .all(|name| after.gauges.get(*name) == Some(&0));
        let others = config.party_size.saturating_sub(1) as u64;
        let ratio = |received: u64, expected: u64| {
            (expected > 0).then(|| received as f64 / expected as f64)
        };
        SoakReport {
            kind: "summary",
            duration_s: duration,
            warmup_s: warmup,
            rss_window_s: window,
            samples: samples.len(),
            rss_start_bytes: samples.first().and_then(|s| s.rss_bytes),
            rss_after_warmup_bytes: rss_after_warmup,
            rss_peak_bytes: samples.iter().filter_map(|s| s.rss_bytes).max(),
            rss_end_bytes: rss_end,
            rss_after_teardown_bytes: after.rss_bytes,
            rss_ratio,
            rss_ok,
            server_cpu_s,
            server_cores: server_cpu_s
                .filter(|_| load_seconds > 0.0)
                .map(|cpu| cpu / load_seconds),
            gauges_after: after.gauges.clone(),
            gauges_zero,
            seconds_to_zero,
            counts,
            datagrams_expected: counts.datagrams_sent * others,
            datagram_delivery: ratio(counts.datagrams_received, counts.datagrams_sent * others),
            reliable_expected: counts.reliable_sent * others,
            reliable_delivery: ratio(counts.reliable_received, counts.reliable_sent * others),
            errors,
            pass: rss_ok && gauges_zero,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn to_text(&self) -> String {
        let mib = |bytes: Option<u64>| {
            bytes.map_or("?".to_string(), |b| {
                format!("{:.1} MiB", b as f64 / 1048576.0)
            })
        };
        let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
        let percent =
            |ratio: Option<f64>| ratio.map_or("-".to_string(), |r| format!("{:.3}%", r * 100.0));
        let c = &self.counts;
        let mut text = format!(
            "soak: {:.0} s of load (warm-up {:.0} s), {} samples\n",
            self.duration_s, self.warmup_s, self.samples
        );
        text += &format!(
            "server RSS: start {}, after warm-up {} (median, {:.0}-{:.0} s), peak {}, end {} (median, {:.0}-{:.0} s), after everyone left {}\n",
            mib(self.rss_start_bytes),
            mib(self.rss_after_warmup_bytes),
            self.warmup_s,
            self.warmup_s + self.rss_window_s,
            mib(self.rss_peak_bytes),
            mib(self.rss_end_bytes),
            self.duration_s - self.rss_window_s,
            self.duration_s,
            mib(self.rss_after_teardown_bytes),
        );
        text += &format!(
            "  end / after warm-up = {} (allowed {:.2}-{:.2}): {}\n",
            self.rss_ratio
                .map_or("?".to_string(), |r| format!("{r:.3}")),
            1.0 - RSS_TOLERANCE,
            1.0 + RSS_TOLERANCE,
            verdict(self.rss_ok)
        );
        let gauges: Vec<String> = self
            .gauges_after
            .iter()
            .map(|(name, value)| format!("{name} {value}"))
            .collect();
        text += &format!(
            "gauges after everyone left{}: {}: {}\n",
            self.seconds_to_zero
                .map_or(" (not all zero in time)".to_string(), |s| format!(
                    " (all zero {s:.1} s after the teardown began)"
                )),
            gauges.join(", "),
            verdict(self.gauges_zero)
        );
        text += &format!(
            "server CPU over the load: {} s ({} cores on average)\n",
            self.server_cpu_s
                .map_or("?".to_string(), |s| format!("{s:.1}")),
            self.server_cores
                .map_or("?".to_string(), |s| format!("{s:.2}")),
        );
        text += &format!(
            "sessions connected: {} ({} failed); churn pairs: {} ({} errors, {} skipped); closed cleanly {}, dropped silently {}\n",
            c.sessions_connected, c.connect_failures, c.churn_cycles, c.churn_errors, c.churn_skipped, c.clean_closes, c.silent_drops
        );
        text += &format!(
            "resumes: {} kept their seat, {} failed\n",
            c.resumes_ok, c.resumes_failed
        );
        text += &format!(
            "cut by the server: datagram flooders {}/{}, command flooders {}/{} (RateLimited); garbage senders {}/{} (FrameTooLarge)\n",
            c.datagram_flooders_cut, c.datagram_flooders, c.command_flooders_cut, c.command_flooders, c.garbage_senders_cut, c.garbage_senders
        );
        text += &format!(
            "steady parties: datagrams {} of {} delivered ({}), reliable {} of {} ({}), {} sends failed, {} sessions lost\n",
            c.datagrams_received,
            self.datagrams_expected,
            percent(self.datagram_delivery),
            c.reliable_received,
            self.reliable_expected,
            percent(self.reliable_delivery),
            c.sends_failed,
            c.steady_lost
        );
        for error in &self.errors {
            text += &format!("  error: {error}\n");
        }
        text += &format!("{}\n", verdict(self.pass));
        text
    }
}

/// How long after the teardown the gauges may take to read zero, beyond
/// the server's idle timeout and grace window.
const ZERO_MARGIN: Duration = Duration::from_secs(30);

/// Runs the soak against `config.server`, writing each sample (and the
/// summary) as a JSON line to `sink`.
pub async fn run(
    config: SoakConfig,
    sink: Option<Box<dyn Write + Send>>,
) -> Result<SoakReport, SoakError> {
    config.validate()?;
    let template = ClientConfig::dev(config.server, config.certs.clone(), "x", "x");
    let endpoints = (0..config.endpoints.max(1))
        .map(|_| shared_endpoint(&template, Some(SOCKET_BUFFER)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| SoakError::Endpoint(error.to_string()))?;
    let ctx = Arc::new(Ctx {
        config,
        endpoints,
        counts: Counts::default(),
        errors: Mutex::default(),
        stop: watch::Sender::new(false),
        next_seed: AtomicU64::new(0),
    });
    let config = &ctx.config;
    let started = Instant::now();
    let phase = Arc::new(AtomicU8::new(PHASE_LOAD));
    let sink: SampleSink = Arc::new(Mutex::new(sink));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = Arc::new(Sampler {
        ctx: ctx.clone(),
        started,
        phase: phase.clone(),
        sink: sink.clone(),
        samples: samples.clone(),
        last_cpu: Mutex::new(None),
    });
    sampler.take().await;
    let sampling = {
        let sampler = sampler.clone();
        let interval = config.sample_interval;
        tokio::spawn(async move {
            let first = tokio::time::Instant::from_std(started + interval);
            let mut ticker = tokio::time::interval_at(first, interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                ticker.tick().await;
                sampler.take().await;
            }
        })
    };
    let steady = match start_steady(&ctx).await {
        Ok(steady) => steady,
        Err(error) => {
            sampling.abort();
            return Err(error);
        }
    };
    let mut senders = JoinSet::new();
    for member in &steady {
        senders.spawn(steady_sender(
            ctx.clone(),
            member.client.clone(),
            member.party_id,
        ));
    }
    let mut activities = JoinSet::new();
    activities.spawn(churn(ctx.clone()));
    for index in 0..config.resumers {
        activities.spawn(resumer(ctx.clone(), index));
    }
    activities.spawn(flooders(ctx.clone()));

    tokio::time::sleep_until((started + config.duration).into()).await;
    phase.store(PHASE_TEARDOWN, Ordering::Release);
    let teardown = Instant::now();
    ctx.stop.send_replace(true);
    while senders.join_next().await.is_some() {}
    while activities.join_next().await.is_some() {}
    tokio::time::sleep(DRAIN).await;
    // Everyone still here leaves and says goodbye.
    for member in steady {
        let _ = member.client.leave_party(member.party_id).await;
        match Arc::try_unwrap(member.client) {
            Ok(client) => client.close().await,
            Err(shared) => shared.disconnect(),
        }
    }
    let deadline = Instant::now() + config.server_idle_timeout + config.server_grace + ZERO_MARGIN;
    let seconds_to_zero = loop {
        let (_, text) = probe(None, config.server_metrics).await;
        let (gauges, _) = read_metrics(text.as_deref());
        if GAUGES_TO_ZERO
            .iter()
            .all(|name| gauges.get(*name) == Some(&0))
        {
            break Some(teardown.elapsed().as_secs_f64());
        }
        if Instant::now() >= deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    phase.store(PHASE_AFTER, Ordering::Release);
    sampling.abort();
    let after = sampler.take().await;
    let errors = ctx
        .errors
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let samples = samples
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let report = SoakReport::new(
        config,
        &samples,
        &after,
        seconds_to_zero,
        ctx.counts.snapshot(),
        errors,
    );
    write_line(&sink, &report);
    Ok(report)
}
