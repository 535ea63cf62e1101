//! A real server on 127.0.0.1:0 with a fresh certificate, in the test
//! process, for the client under test to talk to over QUIC.
#![allow(dead_code)]

use partyline::certs::generate_dev_identity;
use partyline::server::{Server, ServerConfig, ServerHandle};
use partyline_client::{Client, ClientConfig, Events};
use rustls::pki_types::CertificateDer;
use std::net::SocketAddr;
use std::time::Duration;

/// Long enough for a loaded CI machine; only reached when something is wrong.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub addr: SocketAddr,
    pub certs: Vec<CertificateDer<'static>>,
    pub handle: ServerHandle,
}

pub async fn start() -> TestServer {
    let (tls, _, _) = generate_dev_identity().expect("dev certificate");
    let certs = tls.chain.clone();
    let config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), tls);
    let server = Server::bind(config).expect("server binds");
    let addr = server.local_addr().expect("local addr");
    TestServer {
        addr,
        certs,
        handle: server.spawn(),
    }
}

impl TestServer {
    /// A connected SDK client whose user id is `user` and name `user-name`.
    pub async fn client(&self, user: &str) -> (Client, Events) {
        self.client_named(user, &format!("{user}-name")).await
    }

    pub async fn client_named(&self, user: &str, name: &str) -> (Client, Events) {
        Client::connect(ClientConfig::dev(self.addr, self.certs.clone(), user, name))
            .await
            .expect("client connects")
    }
}
