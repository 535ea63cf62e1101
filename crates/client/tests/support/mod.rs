//! Shared by the SDK's tests: a real partyline server on 127.0.0.1:0 with a
//! fresh dev certificate, dev clients for it, and waiting for events with a
//! generous limit (so a bug fails the test instead of hanging it).
#![allow(dead_code)]

// The root tests' fault-injecting UDP relay, shared rather than copied.
#[path = "../../../../tests/support/relay.rs"]
pub mod relay;

use partyline::certs::generate_dev_identity;
use partyline::server::{Server, ServerConfig, ServerHandle};
use partyline_client::{Client, ClientConfig, Event, Events};
use rustls::pki_types::CertificateDer;
use std::net::SocketAddr;
use std::time::Duration;

/// Long enough for a loaded machine; only reached when something is wrong.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub addr: SocketAddr,
    pub certs: Vec<CertificateDer<'static>>,
    pub handle: ServerHandle,
}

pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

pub async fn start_with(tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let (tls, _, _) = generate_dev_identity().expect("dev certificate");
    let certs = tls.chain.clone();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().expect("address"), tls);
    tweak(&mut config);
    let server = Server::bind(config).expect("server binds");
    TestServer {
        addr: server.local_addr().expect("local addr"),
        certs,
        handle: server.spawn(),
    }
}

impl TestServer {
    pub fn config(&self, user: &str) -> ClientConfig {
        ClientConfig::dev(self.addr, self.certs.clone(), user, user)
    }

    pub async fn client(&self, user: &str) -> (Client, Events) {
        Client::connect(self.config(user))
            .await
            .expect("client connects")
    }
}

/// The next event of any kind, within [`WAIT`].
pub async fn next(events: &mut Events) -> Event {
    next_within(events, WAIT).await
}

/// The next event of any kind, which must come within `limit`.
pub async fn next_within(events: &mut Events, limit: Duration) -> Event {
    tokio::time::timeout(limit, events.next())
        .await
        .unwrap_or_else(|_| panic!("no event within {limit:?}"))
        .expect("the event stream is open")
}
