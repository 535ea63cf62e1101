use crate::connection::hello_frame;
use crate::protocol::{AckFrequency, Identity, Resume};
use crate::ClientError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

/// Reads the certificates to trust from a PEM file: the server's dev
/// certificate (`certs/cert.pem` where `partyline serve` runs) or a CA's.
pub fn load_certificates(
    path: impl AsRef<Path>,
) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let path = path.as_ref();
    let pem = std::fs::read(path).map_err(|e| {
        ClientError::Config(format!(
            "cannot read the certificate file {}: {e}",
            path.display()
        ))
    })?;
    parse_pem(&pem).map_err(|e| ClientError::Config(format!("{}: {e}", path.display())))
}

/// Parses the certificates to trust from PEM text already in memory.
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    parse_pem(pem).map_err(ClientError::Config)
}

fn parse_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    if certs.is_empty() {
        return Err(
            "no certificate found in the PEM text (expected -----BEGIN CERTIFICATE-----)".into(),
        );
    }
    Ok(certs)
}

/// Resolves "host:port" (a name or an address) to the first address found.
pub fn resolve_server(address: &str) -> Result<SocketAddr, ClientError> {
    address
        .to_socket_addrs()
        .map_err(|e| ClientError::Config(format!("cannot resolve server address {address:?}: {e} (expected host:port, like 127.0.0.1:7350)")))?
        .next()
        .ok_or_else(|| ClientError::Config(format!("server address {address:?} resolves to nothing")))
}

/// Where to connect, whom to trust, and who to be.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The server's UDP address (see [`resolve_server`] for names).
    pub server_addr: SocketAddr,
    /// The name the server's certificate must carry. Default "localhost".
    pub server_name: String,
    /// Certificates to trust (the dev certificate, or a CA's).
    pub trusted_certs: Vec<CertificateDer<'static>>,
    /// Who this client is: a dev identity or a signed token.
    pub identity: Identity,
    /// Events buffered for the application. Default 4096. When full, the
    /// control stream stops being read and datagrams are dropped.
    pub event_capacity: usize,
    /// QUIC PING interval. Default 7 s: the server's keep-alives (every 5 s)
    /// reset it, so it fires only when they stop, and keeps a connection
    /// alive to a server that sends none.
    pub keep_alive: Duration,
    /// Default 10 s, the server's: a silent server is given up after this
    /// long (QUIC uses the shorter of the two sides').
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
    /// How long one reconnection attempt waits for the QUIC handshake
    /// before it gives up and, after a pause, tries again. Default 1.5 s:
    /// QUIC resends its first packet only after 1 s, then 3 s, then 7 s,
    /// so without a limit a network that comes back mid-attempt is not
    /// tried again for seconds (README, "Network loss and resume", has the
    /// worst case). Above the round trip of the slowest network to serve.
    pub reconnect_attempt_timeout: Duration,
    /// How often the server is asked to acknowledge; default `None`, QUIC's
    /// own (measured no worse than asking for less, BENCHMARKS.md).
    pub ack_frequency: Option<AckFrequency>,
}

impl ClientConfig {
    /// A configuration with every default; see the fields for what they are.
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
            keep_alive: Duration::from_secs(7),
            idle_timeout: Duration::from_secs(10),
            resume: None,
            auto_reconnect: true,
            reconnect_for: Duration::from_secs(30),
            reconnect_attempt_timeout: Duration::from_millis(1500),
            ack_frequency: None,
        }
    }

    /// Checks before connecting what could never be sent, so that it is
    /// told at once and in its own words (`Client::connect` calls it): a
    /// Hello over the protocol's frame limit (a huge token or dev name) is
    /// `Refused` with `PayloadTooLarge`, naming the frame limit (and the
    /// server's name rule, 1 to `protocol::MAX_NAME_BYTES` bytes, when a
    /// dev name is what is too large). Other name rules are the server's to
    /// judge: it refuses the Hello with `Unauthenticated`.
    pub fn validate(&self) -> Result<(), ClientError> {
        hello_frame(self, self.resume.clone()).map(drop)
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

    /// A signed-token identity, minted by the game's backend (or
    /// `partyline token` for a try) with the server's secret.
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
