//! Shared by the integration tests: a real server on 127.0.0.1:0 with a
//! fresh certificate, real clients, and helpers that wait for events with a
//! generous limit (so a bug fails the test instead of hanging it).
#![allow(dead_code)]

pub mod exposition;
pub mod faults;
pub mod nats;
pub mod relay;
pub mod wire;

use partyline::certs::generate_dev_identity;
use partyline::protocol::{encode_frame, ClientFrame, ALPN};
use partyline::server::{Server, ServerConfig, ServerHandle};
use partyline_client::{
    Client, ClientConfig, ClientError, DisconnectReason, ErrorBody, ErrorCode, Event, Events,
    PartyData, PartySettings,
};
use quinn::crypto::rustls::QuicClientConfig;
use rustls::pki_types::CertificateDer;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Idle timeout for loss tests: short, so a lost connection shows quickly.
pub const FAST_IDLE: Duration = Duration::from_millis(1000);
const FAST_KEEP_ALIVE: Duration = Duration::from_millis(200);

/// Long enough for a loaded CI machine; only reached when something is wrong.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub addr: SocketAddr,
    /// Where Prometheus metrics are served, if the config asked for them.
    pub metrics: Option<SocketAddr>,
    pub certs: Vec<CertificateDer<'static>>,
    pub handle: ServerHandle,
}

pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

pub async fn start_with(tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
    start_built(tweak, Server::bind).await
}

/// A server with the game's `hooks` installed.
pub async fn start_with_hooks(
    hooks: impl partyline::server::Hooks,
    tweak: impl FnOnce(&mut ServerConfig),
) -> TestServer {
    start_built(tweak, |config| Server::builder(config).hooks(hooks).build()).await
}

pub async fn start_built(
    tweak: impl FnOnce(&mut ServerConfig),
    build: impl FnOnce(ServerConfig) -> Result<Server, partyline::server::ServerError>,
) -> TestServer {
    let (tls, _, _) = generate_dev_identity().expect("dev certificate");
    let certs = tls.chain.clone();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), tls);
    tweak(&mut config);
    let server = build(config).expect("server binds");
    let addr = server.local_addr().expect("local addr");
    TestServer {
        addr,
        metrics: server.metrics_addr(),
        certs,
        handle: server.spawn(),
    }
}

impl TestServer {
    pub fn config(&self, user: &str) -> ClientConfig {
        ClientConfig::dev(self.addr, self.certs.clone(), user, &format!("{user}-name"))
    }

    /// A connected dev client whose user id is `user`.
    pub async fn client(&self, user: &str) -> (Client, Events) {
        Client::connect(self.config(user))
            .await
            .expect("client connects")
    }

    /// A bare QUIC connection with the partyline ALPN, for speaking raw bytes.
    pub async fn raw(&self) -> (quinn::Endpoint, quinn::Connection) {
        let mut roots = rustls::RootCertStore::empty();
        for cert in &self.certs {
            roots.add(cert.clone()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut crypto = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        crypto.alpn_protocols = vec![ALPN.to_vec()];
        let quic = QuicClientConfig::try_from(crypto).unwrap();
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
        let connection = endpoint
            .connect(self.addr, "localhost")
            .unwrap()
            .await
            .unwrap();
        (endpoint, connection)
    }
}

pub fn frame(message: &ClientFrame) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_frame(message, &mut buf).unwrap();
    buf
}

/// The next event of any kind.
pub async fn next(events: &mut Events) -> Event {
    tokio::time::timeout(WAIT, events.next())
        .await
        .expect("an event within the limit")
        .expect("the event stream is open")
}

/// The next event, which must be about a party (not data, not the
/// connection's own ups and downs).
pub async fn next_event(events: &mut Events) -> Event {
    match next(events).await {
        event @ (Event::Data(_)
        | Event::Reconnecting { .. }
        | Event::Resumed
        | Event::SessionLost { .. }
        | Event::Disconnected { .. }
        | Event::ProtocolError { .. }) => panic!("expected a party event, got {event:?}"),
        event => event,
    }
}

/// The next event, which must be party data.
pub async fn next_data(events: &mut Events) -> PartyData {
    match next(events).await {
        Event::Data(data) => data,
        other => panic!("expected party data, got {other:?}"),
    }
}

/// Asserts nothing arrives for a short while (used after the fact that a
/// later, awaited event proves the earlier ones would have arrived already).
pub fn assert_no_pending(events: &mut Events) {
    if let Some(event) = events.try_next() {
        panic!("expected no event, got {event:?}");
    }
}

/// Server settings for loss tests: a silent connection is lost in ~1 s.
pub fn fast_loss_detection(config: &mut ServerConfig) {
    config.idle_timeout = FAST_IDLE;
    config.keep_alive = FAST_KEEP_ALIVE;
}

/// A client whose traffic goes through `relay`, with the same fast loss
/// detection as the server.
pub async fn via_relay(
    server: &TestServer,
    relay: &relay::Relay,
    user: &str,
    auto_reconnect: bool,
) -> (Client, Events) {
    let mut config = server.config(user);
    config.server_addr = relay.addr;
    config.idle_timeout = FAST_IDLE;
    config.keep_alive = FAST_KEEP_ALIVE;
    config.auto_reconnect = auto_reconnect;
    config.reconnect_for = Duration::from_secs(20);
    Client::connect(config)
        .await
        .expect("connects through the relay")
}

/// The next event says the connection was lost to the network: with
/// `auto_reconnect` on the SDK is now reconnecting; off, the session is over.
pub async fn expect_lost(events: &mut Events, auto_reconnect: bool) {
    match (next(events).await, auto_reconnect) {
        (
            Event::Reconnecting {
                reason: DisconnectReason::ConnectionLost(_),
            },
            true,
        )
        | (
            Event::Disconnected {
                reason: DisconnectReason::ConnectionLost(_),
            },
            false,
        ) => {}
        (other, _) => {
            panic!("expected a lost connection (auto_reconnect {auto_reconnect}), got {other:?}")
        }
    }
}

/// Settings for a new party.
pub fn settings(open: bool, max_size: u16, label: &str) -> PartySettings {
    PartySettings {
        open,
        max_size,
        label: label.to_string(),
        ..PartySettings::default()
    }
}

/// Either kind of refusal: the SDK's error, or the wire's error body.
pub trait Refusal: std::fmt::Display {
    fn refusal_code(&self) -> Option<ErrorCode>;
}

impl Refusal for ClientError {
    fn refusal_code(&self) -> Option<ErrorCode> {
        self.code()
    }
}

impl Refusal for ErrorBody {
    fn refusal_code(&self) -> Option<ErrorCode> {
        Some(self.code)
    }
}

/// The refusal code of a call that must have been refused.
pub fn code<T: std::fmt::Debug, E: Refusal>(result: Result<T, E>) -> ErrorCode {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(error) => error
            .refusal_code()
            .unwrap_or_else(|| panic!("expected a refusal, got {error}")),
    }
}

/// A well-behaved pair forms a party: the server still serves everyone.
pub async fn bystanders_still_served(server: &TestServer) {
    let (ana, mut ana_events) = server.client("ana-bystander").await;
    let (bob, _) = server.client("bob-bystander").await;
    let party = ana
        .create_party(settings(true, 2, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::MemberJoined { .. }
    ));
}

/// The server's metrics, parsed and checked (its config must have set
/// `metrics`).
pub async fn scrape_metrics(server: &TestServer) -> exposition::Exposition {
    let addr = server.metrics.expect("the server serves metrics");
    tokio::task::spawn_blocking(move || scrape_addr(addr))
        .await
        .unwrap()
}

/// `GET /metrics` from `addr`, parsed and checked; blocking.
pub fn scrape_addr(addr: SocketAddr) -> exposition::Exposition {
    exposition::Exposition::from_response(&http_get(addr, "/metrics"))
}

/// The whole HTTP/1.1 response to `GET path`; blocking.
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}
