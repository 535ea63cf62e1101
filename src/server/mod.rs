//! The partyline server: a quinn endpoint, one task set per connection,
//! the party table, the timer that expires join requests, and (with
//! `--coalesce-us`) the flusher of coalesced datagrams.

mod admin;
mod api;
#[doc(hidden)]
pub mod bench_support;
mod coalesce;
mod commands;
mod config;
mod connection;
mod deadlines;
mod devhttp;
mod directory;
mod exposition;
mod grace;
mod hook_events;
pub mod hooks;
#[cfg(test)]
mod hub_tests;
mod keepalive;
mod limits;
mod matchmaking;
mod metrics;
mod nodes;
mod peers;
mod pending;
mod player_limits;
mod presence;
mod quality;
mod replay;
mod route;
mod session;
mod state;
mod tickets;
mod transport;
mod users;
mod web;

pub use api::{server_presence, ApiError, PartyInfo, ServerApi, SessionInfo};
pub use config::ClusterConfig;
pub use config::{
    AckFrequency, AdminToken, AuthMode, PlayerBudgets, ResetKey, ServerConfig, WebTransportConfig,
    DEFAULT_REPLAY_BYTES, DEV_MATCH_SECRET, MIN_RESET_KEY_BYTES,
};
pub use hooks::{AfterEvent, BeforeCall, Decision, HookFuture, HookPoint, Hooks};
pub use peers::hub::{HubError, MemoryHub};
pub use peers::nats::ClusterError;
pub use peers::{home_of, node_tag, party_id_on};
pub use route::NodeTimings;
pub use web::WEBTRANSPORT_PATH;

/// Whether `name` may name a node of a cluster (`--node`): 1 to 64 ASCII
/// letters, digits, `-`, `_` and `.`. Checked again when the node joins;
/// here so that a command line can refuse a bad name before starting.
pub fn valid_node_name(name: &str) -> bool {
    peers::valid_node_name(name)
}

use crate::protocol::{CloseCode, ALPN};
use crate::security::{Warning, DEV_IDENTITY_REMINDER};
use quinn::crypto::rustls::QuicServerConfig;
use quinn::{Endpoint, IdleTimeout, TransportConfig, VarInt};
use state::Shared;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How often each connection's quality is sampled when keep-alives are
/// off (with them on, once per keep-alive period).
const QUALITY_PERIOD: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("QUIC configuration: {0}")]
    Quic(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("cluster: {0}")]
    Cluster(#[from] ClusterError),
    #[error("cluster: {0}")]
    Hub(#[from] HubError),
    #[error("could not listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

pub struct Server {
    endpoint: Endpoint,
    shared: Arc<Shared>,
    metrics_listener: Option<std::net::TcpListener>,
    /// The admin API's own listener; `None` with `admin_bearer` set when
    /// it shares the metrics listener.
    admin_listener: Option<std::net::TcpListener>,
    /// The admin token check, when the admin API is on.
    admin_bearer: Option<admin::Bearer>,
    /// The dev HTTP endpoint's listener (`--dev-http`).
    dev_http_listener: Option<std::net::TcpListener>,
    /// After-hook events, drained by a task once the server runs.
    after_queue: Option<tokio::sync::mpsc::Receiver<hooks::AfterEvent>>,
    /// The game's hooks, asked by every connection's commands.
    hooks: Option<Arc<hooks::HookRunner>>,
}

/// A server's configuration and hooks, before it binds:
/// `Server::builder(config).hooks(my_rules).build()`.
pub struct ServerBuilder {
    config: ServerConfig,
    hooks: Option<Arc<dyn hooks::Hooks>>,
    hub: Option<(MemoryHub, String, NodeTimings)>,
}

impl ServerBuilder {
    /// Makes this server node `name` of `hub`: several servers of one
    /// process as one cluster (instead of `config.cluster` over NATS).
    pub fn hub(mut self, hub: &MemoryHub, name: &str, timings: NodeTimings) -> Self {
        self.hub = Some((hub.clone(), name.to_string(), timings));
        self
    }

    /// The game's own rules and analytics (see [`hooks`]).
    pub fn hooks(mut self, hooks: impl hooks::Hooks) -> Self {
        self.hooks = Some(Arc::new(hooks));
        self
    }

    /// Binds the UDP socket (and the metrics listener). Must be called
    /// inside a tokio runtime.
    pub fn build(self) -> Result<Server, ServerError> {
        let server = Server::bind_with(self.config, self.hooks)?;
        if let Some((hub, name, timings)) = self.hub {
            let peers = hub.join(&name)?;
            server
                .shared
                .join(Arc::new(peers), timings)
                .map_err(already)?;
        }
        Ok(server)
    }
}

/// Transport settings chosen for a party server; see QUIC-NOTES.md.
fn transport_config(config: &ServerConfig) -> Result<TransportConfig, ServerError> {
    let mut transport = TransportConfig::default();
    // One control stream per session and nothing else: every stream a peer
    // may open is memory it can pin. The windows and buffers below bound what
    // a busy or hostile peer can make the server hold; none of them is
    // allocated up front, so an idle session costs nothing for them (what it
    // does cost is quinn's and rustls's own per-connection state).
    //
    // MTU discovery stays on, a trade-off: it costs each connection 1.2 KiB
    // (quinn's send buffer grows from 1200 to 2400 bytes once the MTU passes
    // 1200), and buys fuller packets when datagrams queue up under load.
    transport
        .max_concurrent_bidi_streams(VarInt::from_u32(1))
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .stream_receive_window(VarInt::from_u32(64 * 1024))
        .receive_window(VarInt::from_u32(256 * 1024))
        .send_window(256 * 1024)
        .datagram_receive_buffer_size(Some(64 * 1024))
        // A few ticks of party data: under congestion, old data is dropped
        // instead of turning into delay.
        .datagram_send_buffer_size(32 * 1024)
        .keep_alive_interval(None)
        .max_idle_timeout(Some(
            IdleTimeout::try_from(config.idle_timeout)
                .map_err(|e| ServerError::Quic(e.to_string()))?,
        ))
        .ack_frequency_config(config.ack_frequency.map(config::quinn_ack_frequency));
    if config.webtransport.is_some() {
        // HTTP/3's own streams, for browsers (`web::H3_UNI_STREAMS`).
        transport.max_concurrent_uni_streams(VarInt::from_u32(web::H3_UNI_STREAMS));
    }
    Ok(transport)
}

/// TLS and transport for a partyline endpoint (also used by the load
/// generator's bare-quinn reference, so both run the same QUIC settings).
pub fn quinn_server_config(config: &ServerConfig) -> Result<quinn::ServerConfig, ServerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth();
    let browser_certificates = config
        .webtransport
        .as_ref()
        .and_then(|web| web.browser_certificates.clone());
    let mut crypto = match browser_certificates {
        // Browsers get the rotating certificate they accept by hash.
        Some(browser) => builder.with_cert_resolver(Arc::new(
            crate::certs::CertByAlpn::new(&config.tls, ALPN, browser)
                .map_err(|e| ServerError::Config(e.to_string()))?,
        )),
        None => builder.with_single_cert(config.tls.chain.clone(), config.tls.key.clone_key())?,
    };
    crypto.alpn_protocols = vec![ALPN.to_vec()];
    if config.webtransport.is_some() {
        // Browsers offer only h3; native clients only partyline's.
        crypto.alpn_protocols.push(web::H3_ALPN.to_vec());
    }
    let quic_crypto =
        QuicServerConfig::try_from(crypto).map_err(|e| ServerError::Quic(e.to_string()))?;
    let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(quic_crypto));
    server_config.transport_config(Arc::new(transport_config(config)?));
    Ok(server_config)
}

/// The server's UDP socket, with receive and send buffers enlarged to
/// `config.socket_buffer` (the kernel caps it at net.core.rmem_max /
/// wmem_max). With the 208 KiB default, bursts overflow it and the kernel
/// drops datagrams silently (RcvbufErrors in /proc/net/snmp).
pub fn bind_endpoint(
    server_config: quinn::ServerConfig,
    config: &ServerConfig,
) -> Result<Endpoint, ServerError> {
    let bind_error = |source| ServerError::Bind {
        addr: config.listen,
        source,
    };
    let domain = socket2::Domain::for_address(config.listen);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))
        .map_err(bind_error)?;
    if config.socket_buffer > 0 {
        // Best effort: a smaller buffer than asked only costs kernel drops.
        let _ = socket.set_recv_buffer_size(config.socket_buffer);
        let _ = socket.set_send_buffer_size(config.socket_buffer);
    }
    if config.listen.is_ipv6() {
        let _ = socket.set_only_v6(false);
    }
    socket.bind(&config.listen.into()).map_err(bind_error)?;
    let runtime = quinn::default_runtime()
        .ok_or_else(|| ServerError::Quic("no async runtime found".into()))?;
    Endpoint::new(
        endpoint_config(config),
        Some(server_config),
        socket.into(),
        runtime,
    )
    .map_err(bind_error)
}

/// Quinn's endpoint settings: the stateless reset key.
fn endpoint_config(config: &ServerConfig) -> quinn::EndpointConfig {
    let Some(key) = &config.reset_key else {
        return quinn::EndpointConfig::default();
    };
    let file_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.bytes());
    // Two keys from the file's, one per use.
    let derive = |label: &[u8]| ring::hmac::sign(&file_key, label);
    let reset = derive(b"partyline stateless reset v1");
    let reset = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, reset.as_ref());
    let mut endpoint = quinn::EndpointConfig::new(Arc::new(reset));
    // Quinn answers only packets whose connection id its generator
    // recognises; with a per-process random generator key, a node would
    // drop a dead node's packets instead of resetting them.
    let mut cid_key = [0u8; 8];
    cid_key.copy_from_slice(&derive(b"partyline connection id v1").as_ref()[..8]);
    endpoint.cid_generator(move || {
        Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(
            u64::from_le_bytes(cid_key),
        ))
    });
    // Quinn sends at most one reset per 20 ms per endpoint by default; after
    // a node dies, every one of its clients needs one, and a reset is never
    // larger than the packet that caused it (no amplification).
    endpoint.min_reset_interval(Duration::ZERO);
    endpoint
}

impl Server {
    /// A server with `config`; add hooks, then `build`.
    pub fn builder(config: ServerConfig) -> ServerBuilder {
        ServerBuilder {
            config,
            hooks: None,
            hub: None,
        }
    }

    /// Binds the UDP socket, with no hooks. Must be called inside a tokio
    /// runtime.
    pub fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        Self::bind_with(config, None)
    }

    fn bind_with(
        config: ServerConfig,
        hooks: Option<Arc<dyn hooks::Hooks>>,
    ) -> Result<Server, ServerError> {
        let most = crate::protocol::MAX_PARTIES_PER_SESSION;
        if !(1..=most).contains(&config.max_parties_per_session) {
            return Err(ServerError::Config(format!(
                "max_parties_per_session must be 1 to {most} (a snapshot resume of them all must fit one Welcome), got {}",
                config.max_parties_per_session
            )));
        }
        config
            .check_secrets()
            .map_err(|refusal| ServerError::Config(refusal.to_string()))?;
        let admin_bearer = match (config.admin, &config.admin_token) {
            (None, _) => None,
            (Some(addr), None) => {
                return Err(ServerError::Config(format!(
                    "the admin API on {addr} needs a bearer token (admin_token; \
                     --admin-token-file): it is never served without one"
                )))
            }
            (Some(_), Some(token)) => {
                Some(admin::Bearer::new(token.expose()).map_err(ServerError::Config)?)
            }
        };
        let server_config = quinn_server_config(&config)?;
        // Bound here, so a taken port fails at start, not later.
        let metrics_listener = config.metrics.map(bind_http).transpose()?;
        // The same address as the metrics: one listener serves both.
        let admin_listener = config
            .admin
            .filter(|addr| config.metrics != Some(*addr))
            .map(bind_http)
            .transpose()?;
        let dev_http_listener = config
            .webtransport
            .as_ref()
            .and_then(|web| web.dev_http)
            .map(bind_http)
            .transpose()?;
        let endpoint = bind_endpoint(server_config, &config)?;
        let limits = config.limits();
        let (hook_state, after_queue, hooks) = match hooks {
            Some(hooks) => {
                let (state, queue) = hook_events::HookState::new();
                let state = Arc::new(state);
                let runner = hooks::HookRunner::new(hooks, config.hook_timeout, state.clone());
                (Some(state), Some(queue), Some(Arc::new(runner)))
            }
            None => (None, None, None),
        };
        let shared = Arc::new(Shared::new(config, limits, hook_state));
        Ok(Server {
            endpoint,
            shared,
            metrics_listener,
            admin_listener,
            admin_bearer,
            dev_http_listener,
            after_queue,
            hooks,
        })
    }

    /// The server-side API on this server's state (usable before and
    /// while it runs).
    pub fn api(&self) -> ServerApi {
        ServerApi {
            shared: self.shared.clone(),
        }
    }

    /// Joins the cluster named by `config.cluster` (connects to NATS,
    /// checks the node name is free, subscribes). Does nothing without one
    /// or when already joined. `run_until` calls it if it was not called,
    /// but calling it first reports a NATS that cannot be reached before
    /// serving.
    pub async fn join_cluster(&self) -> Result<(), ServerError> {
        let Some(config) = self.shared.config.cluster.clone() else {
            return Ok(());
        };
        if self.shared.joined() {
            return Ok(());
        }
        let peers = peers::nats::NatsPeers::join(&config).await?;
        let timings = NodeTimings {
            heartbeat: config.heartbeat,
            node_timeout: config.node_timeout,
            request_timeout: config.request_timeout,
        };
        self.shared.join(Arc::new(peers), timings).map_err(already)
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Where the Prometheus metrics are served, when `config.metrics` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// Where the admin API is served, when `config.admin` is set (the
    /// metrics address when both share one).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_bearer.as_ref()?;
        match &self.admin_listener {
            Some(listener) => listener.local_addr().ok(),
            None => self.metrics_addr(),
        }
    }

    /// Where the dev HTTP endpoint (browser certificate hashes) is served,
    /// when `webtransport.dev_http` is set.
    pub fn dev_http_addr(&self) -> Option<SocketAddr> {
        self.dev_http_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// Number of parties alive now (for operators and tests).
    pub fn party_count(&self) -> usize {
        self.shared.table.len()
    }

    /// Serves until `shutdown` completes, then closes every connection with
    /// `ServerShutdown` and waits up to the drain timeout for them to go.
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        if let Err(error) = self.join_cluster().await {
            tracing::error!(%error, "could not join the cluster; not serving");
            return;
        }
        let background = self.spawn_background();
        // Every connection's task, so that stopping waits for all of them.
        let mut connections = tokio::task::JoinSet::new();
        let sweep_every = (self.shared.config.join_request_ttl / 4)
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        let mut sweep = tokio::time::interval(sweep_every);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                incoming = self.endpoint.accept() => {
                    let Some(incoming) = incoming else { break };
                    let Some(incoming) = self.admit(incoming) else { continue };
                    if self.shared.session_count() >= self.shared.config.max_sessions {
                        metrics::count(&self.shared.metrics.refused_server_full);
                        connections.spawn(connection::refuse_full(self.shared.clone(), incoming));
                    } else {
                        connections.spawn(connection::serve(self.shared.clone(), self.hooks.clone(), incoming));
                    }
                }
                // Reap finished connection tasks as they go.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                _ = sweep.tick() => {
                    let shared = &self.shared;
                    shared.table.expire(Instant::now(), |effects| commands::deliver(shared, effects));
                }
                _ = &mut shutdown => break,
            }
        }
        // Datagrams still waiting to be coalesced go with their connections,
        // which the close below ends anyway. Pending grace deadlines go with
        // the server.
        for task in background {
            task.abort();
        }
        tracing::info!("shutting down: closing every connection");
        self.shared.stopping.store(true, Ordering::Release);
        // The other nodes end this node's parties and seats now.
        self.shared.route().leave().await;
        // Each session's writer closes its connection with ServerShutdown
        // once what is in flight settled, so the code reaches even a busy
        // client; then the endpoint closes whatever is left.
        for session in self.shared.all_sessions() {
            session.close(CloseCode::ServerShutdown, "server shutting down");
        }
        let goodbyes = session::GOODBYE_SETTLE + Duration::from_millis(100);
        let _ = tokio::time::timeout(goodbyes, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        self.endpoint.close(
            (CloseCode::ServerShutdown as u32).into(),
            b"server shutting down",
        );
        let drain = self.shared.config.drain_timeout;
        let drained = tokio::time::timeout(drain, async {
            self.endpoint.wait_idle().await;
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(left = connections.len(), "drain timeout: stopping the rest");
        }
        connections.shutdown().await;
    }

    /// Starts what runs beside the connections: other nodes' messages, the
    /// HTTP endpoints, the reminder, hooks, coalescing, deadlines,
    /// matchmaking and keep-alives. Aborted when the server stops.
    fn spawn_background(&mut self) -> Vec<JoinHandle<()>> {
        let nodes_task = tokio::spawn(nodes::run(self.shared.clone()));
        let mut admin_bearer = self.admin_bearer.take();
        let admin_shares_metrics = self.admin_listener.is_none();
        let metrics_task =
            http_listener(self.metrics_listener.take(), "metrics endpoint").map(|listener| {
                let shared = self.shared.clone();
                match admin_bearer.take_if(|_| admin_shares_metrics) {
                    Some(bearer) => tokio::spawn(admin::serve(listener, shared, bearer, true)),
                    None => tokio::spawn(exposition::serve(listener, shared)),
                }
            });
        let admin_task = http_listener(self.admin_listener.take(), "admin API")
            .zip(admin_bearer)
            .map(|(listener, bearer)| {
                tokio::spawn(admin::serve(listener, self.shared.clone(), bearer, false))
            });
        let dev_http_task = self.spawn_dev_http();
        let rotation_task = self.spawn_certificate_rotation();
        let listen = self.shared.config.listen;
        let reminder_task = (matches!(self.shared.config.auth, AuthMode::Dev)
            && !crate::security::is_loopback(listen.ip()))
        .then(|| {
            tokio::spawn(repeat_every(DEV_IDENTITY_REMINDER, move || {
                let warning = Warning::DevIdentitiesOffLoopback { listen };
                tracing::warn!("{warning}");
            }))
        });
        let after_hook_task = match (&self.hooks, self.after_queue.take()) {
            (Some(runner), Some(queue)) => Some(tokio::spawn(runner.clone().run_after(queue))),
            _ => None,
        };
        let flusher_task = self
            .shared
            .coalescer
            .clone()
            .map(|coalescer| tokio::spawn(coalesce::flush_loop(coalescer)));
        let deadline_task = {
            let shared = self.shared.clone();
            tokio::spawn(async move {
                shared
                    .deadlines
                    .run(|deadline| grace::deadline_reached(&shared, deadline))
                    .await
            })
        };
        let matchmaker_task = {
            let shared = self.shared.clone();
            tokio::spawn(async move {
                let period = shared
                    .config
                    .matchmaker_interval
                    .max(Duration::from_millis(10));
                let mut every = tokio::time::interval(period);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    every.tick().await;
                    tickets::run_round(shared.clone()).await;
                }
            })
        };
        let keep_alive_task = {
            // The same visits sample each connection's quality: with
            // keep-alives off, they still come, at the default period.
            let keep_alive = self.shared.config.keep_alive;
            let poke = !keep_alive.is_zero();
            let period = if poke { keep_alive } else { QUALITY_PERIOD };
            let shared = self.shared.clone();
            let report = move |session_id, score| {
                if let Some(session) = shared.find_session(session_id) {
                    grace::connection_measured(&shared, &session, score);
                }
            };
            let registry = self.shared.metrics.transport.clone();
            Some(tokio::spawn(keepalive::run(registry, period, poke, report)))
        };
        [
            Some(nodes_task),
            metrics_task,
            admin_task,
            dev_http_task,
            rotation_task,
            reminder_task,
            after_hook_task,
            flusher_task,
            Some(deadline_task),
            Some(matchmaker_task),
            keep_alive_task,
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The dev HTTP endpoint, when asked for.
    fn spawn_dev_http(&mut self) -> Option<JoinHandle<()>> {
        let listener = http_listener(self.dev_http_listener.take(), "dev HTTP endpoint")?;
        let config = self.shared.config.webtransport.clone()?;
        let quic = self.endpoint.local_addr().ok()?;
        Some(tokio::spawn(devhttp::serve(listener, config, quic)))
    }

    /// Rotates the browser certificates (hourly check): a new one is
    /// presented every `BROWSER_CERT_ROTATION`, long before one expires.
    fn spawn_certificate_rotation(&self) -> Option<JoinHandle<()>> {
        let web = self.shared.config.webtransport.as_ref()?;
        let certificates = web.browser_certificates.clone()?;
        Some(tokio::spawn(repeat_every(
            Duration::from_secs(3600),
            move || match certificates.rotate_if_due(std::time::SystemTime::now()) {
                Ok(false) => {}
                Ok(true) => {
                    let [now, next] = certificates.hashes_hex();
                    tracing::info!(sha256 = %now, next = %next, "browser certificate rotated");
                }
                Err(error) => tracing::error!(%error, "could not rotate the browser certificate"),
            },
        )))
    }

    /// Decides per incoming connection: refuse when too many handshakes are
    /// in progress, ask for address validation (Retry) when they pile up,
    /// accept otherwise.
    fn admit(&self, incoming: quinn::Incoming) -> Option<quinn::Incoming> {
        let in_progress = self.shared.handshakes.load(Ordering::Relaxed);
        let config = &self.shared.config;
        if in_progress >= config.max_handshakes {
            tracing::warn!(
                in_progress,
                "refusing a connection: too many handshakes in progress"
            );
            metrics::count(&self.shared.metrics.refused_handshake_cap);
            incoming.refuse();
            return None;
        }
        if in_progress >= config.retry_above && !incoming.remote_address_validated() {
            // Stateless: nothing is kept until the client comes back with
            // the token, which proves it owns its address.
            return match incoming.retry() {
                Ok(()) => {
                    metrics::count(&self.shared.metrics.retries_sent);
                    None
                }
                Err(error) => Some(error.into_incoming()),
            };
        }
        Some(incoming)
    }

    /// Runs the server on a background task (tests, embedding).
    pub fn spawn(self) -> ServerHandle {
        let (stop, stopped) = oneshot::channel::<()>();
        let shared = self.shared.clone();
        let task = tokio::spawn(self.run_until(async {
            let _ = stopped.await;
        }));
        ServerHandle {
            stop: Some(stop),
            task,
            shared,
        }
    }
}

fn already(_: state::AlreadyJoined) -> ServerError {
    ServerError::Config("the server is in a cluster already".into())
}

/// A TCP listener for an HTTP endpoint, bound now so that a taken port
/// fails at start.
fn bind_http(addr: SocketAddr) -> Result<std::net::TcpListener, ServerError> {
    let bind_error = |source| ServerError::Bind { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    Ok(listener)
}

/// A bound listener handed to tokio, or `None` (logged) if it cannot be.
fn http_listener(
    listener: Option<std::net::TcpListener>,
    what: &str,
) -> Option<tokio::net::TcpListener> {
    match tokio::net::TcpListener::from_std(listener?) {
        Ok(listener) => Some(listener),
        Err(error) => {
            tracing::error!(%error, "{what} unavailable");
            None
        }
    }
}

/// Calls `remind` every `period`, the first time one period from now (the
/// warning at start is the caller's: `partyline serve` logs every
/// `security::check` warning before it binds).
async fn repeat_every(period: Duration, mut remind: impl FnMut()) {
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        interval.tick().await;
        remind();
    }
}

/// A server running on a background task.
pub struct ServerHandle {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    shared: Arc<Shared>,
}

impl ServerHandle {
    /// The server-side API on the running server.
    pub fn api(&self) -> ServerApi {
        ServerApi {
            shared: self.shared.clone(),
        }
    }

    pub fn party_count(&self) -> usize {
        self.shared.table.len()
    }

    /// The other nodes of the cluster this node hears now, by name (empty
    /// without a cluster).
    pub fn cluster_peers(&self) -> Vec<String> {
        self.shared.route().peer_names()
    }

    /// Whether this node's link to NATS is up (false without a cluster).
    pub fn cluster_link_up(&self) -> bool {
        let route = self.shared.route();
        route.clustered() && route.link_is_up()
    }

    /// Members on other nodes that parties homed here hold now.
    pub fn remote_members(&self) -> usize {
        self.shared.route().proxy_count()
    }

    /// Sessions alive now, connected or waiting in their grace window.
    pub fn session_count(&self) -> usize {
        self.shared.session_count()
    }

    /// Commands refused and datagrams dropped by the rate limits so far.
    pub fn rate_limited(&self) -> u64 {
        self.shared.metrics.dropped_rate_limited.get()
    }

    /// Stops the server as Ctrl-C would, and waits for it.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_ends_sessions_without_a_grace_window_and_leaves_nothing_running() {
        use partyline_client::{Client, ClientConfig, Event, PartySettings};
        let (tls, _, _) = crate::certs::generate_dev_identity().unwrap();
        let certs = tls.chain.clone();
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), tls);
        // A grace window that would outlive the test by far if it started.
        config.grace = Duration::from_secs(3600);
        let server = Server::bind(config).unwrap();
        let addr = server.local_addr().unwrap();
        let handle = server.spawn();
        let shared = handle.shared.clone();
        let state = Arc::downgrade(&handle.shared);
        let connect = |user: &str| {
            let mut config = ClientConfig::dev(addr, certs.clone(), user, user);
            config.auto_reconnect = false;
            Client::connect(config)
        };
        let (ana, mut ana_events) = connect("ana").await.unwrap();
        let (bob, _bob_events) = connect("bob").await.unwrap();
        let party = ana.create_party(PartySettings::default()).await.unwrap();
        bob.join_party(party.party_id).await.unwrap();
        assert!(matches!(
            ana_events.next().await,
            Some(Event::MemberJoined { .. })
        ));

        tokio::time::timeout(Duration::from_secs(10), handle.shutdown())
            .await
            .expect("shutdown finishes within its drain timeout");
        // The sessions ended outright: no grace window was started.
        assert_eq!(shared.session_count(), 0);
        assert_eq!(shared.deadlines.len(), 0, "no grace deadlines pending");
        // Every task is done: nothing but this test holds the server's
        // state, and it goes with it.
        drop(shared);
        assert!(state.upgrade().is_none(), "server state outlived shutdown");
        // Ana heard the server go, not bob's connection drop.
        match ana_events.next().await {
            Some(Event::Disconnected { .. }) => {}
            other => panic!("expected Disconnected, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_reminder_repeats_every_period_after_the_first() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let task = tokio::spawn(repeat_every(DEV_IDENTITY_REMINDER, move || {
            counter.fetch_add(1, Ordering::Relaxed);
        }));
        let at = |minutes: u64| Duration::from_secs(minutes * 60);
        tokio::time::sleep(at(9)).await;
        assert_eq!(
            calls.load(Ordering::Relaxed),
            0,
            "not again right after start"
        );
        tokio::time::sleep(at(2)).await;
        assert_eq!(calls.load(Ordering::Relaxed), 1, "at 10 minutes");
        tokio::time::sleep(at(20)).await;
        assert_eq!(calls.load(Ordering::Relaxed), 3, "at 20 and 30 minutes");
        task.abort();
    }
}
