use crate::protocol::{Identity, Resume};
use crate::server::AckFrequency;
use rustls::pki_types::CertificateDer;
use std::net::SocketAddr;
use std::time::Duration;

/// Where to connect, whom to trust, and who to be.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub server_addr: SocketAddr,
    /// The name the server's certificate must carry. Default "localhost".
    pub server_name: String,
    /// Certificates to trust (the dev certificate, or a CA's).
    pub trusted_certs: Vec<CertificateDer<'static>>,
    pub identity: Identity,
    /// Events buffered for the application. Default 4096. When full, the
    /// control stream stops being read and datagrams are dropped.
    pub event_capacity: usize,
    /// Default 1 s: keeps the connection alive while the game is quiet.
    pub keep_alive: Duration,
    /// Default 5 s: a silent server is given up after this long.
    pub idle_timeout: Duration,
    /// Take back an earlier session (from `Client::resume_ticket`) instead
    /// of starting a new one. Default none.
    pub resume: Option<Resume>,
    /// On a network loss, reconnect and resume by itself. Default true; turn
    /// it off to drive reconnection with `resume_ticket` yourself.
    pub auto_reconnect: bool,
    /// How long to keep trying to reconnect before `ReconnectFailed`.
    /// Default 30 s (longer than the server's default 15 s grace window, so
    /// a comeback after it ends still gets a new session).
    pub reconnect_for: Duration,
    /// How often the server is asked to acknowledge; default `None`, QUIC's
    /// own (measured no worse than asking for less, BENCHMARKS.md).
    pub ack_frequency: Option<AckFrequency>,
}

impl ClientConfig {
    pub fn new(
        server_addr: SocketAddr,
        trusted_certs: Vec<CertificateDer<'static>>,
        identity: Identity,
    ) -> Self {
        ClientConfig {
            server_addr,
            server_name: "localhost".to_string(),
            trusted_certs,
            identity,
            event_capacity: 4096,
            keep_alive: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(5),
            resume: None,
            auto_reconnect: true,
            reconnect_for: Duration::from_secs(30),
            ack_frequency: None,
        }
    }

    /// A development identity: the client names itself.
    pub fn dev(
        server_addr: SocketAddr,
        trusted_certs: Vec<CertificateDer<'static>>,
        user_id: &str,
        username: &str,
    ) -> Self {
        let identity = Identity::Dev {
            user_id: user_id.to_string(),
            username: username.to_string(),
        };
        Self::new(server_addr, trusted_certs, identity)
    }

    /// A signed-token identity (see `crate::auth::mint_token`).
    pub fn with_token(
        server_addr: SocketAddr,
        trusted_certs: Vec<CertificateDer<'static>>,
        token: &str,
    ) -> Self {
        let identity = Identity::Token {
            token: token.to_string(),
        };
        Self::new(server_addr, trusted_certs, identity)
    }
}
