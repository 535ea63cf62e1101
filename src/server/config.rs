use crate::certs::{BrowserCertificates, TlsIdentity};
use crate::protocol::DEFAULT_MAX_DATAGRAM_DATA;
use crate::protocol::{
    Limits, MAX_ATTRIBUTE_BYTES, MAX_ATTRIBUTE_ENTRIES, MAX_BANS, MAX_FRAME_SIZE, MAX_LABEL_BYTES,
    MAX_PARTY_SIZE, MAX_PROPERTY_BYTES, MAX_PROPERTY_ENTRIES, MAX_RELIABLE_DATA,
    MAX_SEARCH_RESULTS, MAX_STATE_BYTES, MAX_STATE_ENTRIES, MAX_STATUS_BYTES,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How sessions prove who they are.
#[derive(Clone)]
pub enum AuthMode {
    /// Clients name their own user id and username (local play, tests).
    Dev,
    /// Clients must present a token signed with `secret` (see `crate::auth`),
    /// or, during a rotation, with `previous`.
    Token {
        secret: Vec<u8>,
        previous: Option<Vec<u8>>,
    },
}

// By hand, so that logging a config never prints a secret.
impl std::fmt::Debug for AuthMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthMode::Dev => f.write_str("Dev"),
            AuthMode::Token { previous, .. } => f
                .debug_struct("Token")
                .field("secret", &"<redacted>")
                .field("previous", &previous.as_ref().map(|_| "<redacted>"))
                .finish(),
        }
    }
}

/// The admin API's bearer token. A type of its own so that logging a
/// config never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    pub fn new(token: impl Into<String>) -> Self {
        AdminToken(token.into())
    }

    /// The token itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for AdminToken {
    fn from(token: String) -> Self {
        AdminToken(token)
    }
}

impl From<&str> for AdminToken {
    fn from(token: &str) -> Self {
        AdminToken(token.to_string())
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// The key stateless resets are derived from (HMAC-SHA256 of a connection
/// id). Nodes that share it can end each other's connections: a node that
/// gets a packet of a connection it does not know (its node died, or a load
/// balancer moved the flow) answers with a reset the client accepts, and
/// the client reconnects at once instead of waiting out its idle timeout.
#[derive(Clone)]
pub struct ResetKey(Vec<u8>);

/// Shortest accepted reset key: a shorter one could be guessed offline from
/// resets seen on the network, and then used to end anyone's connection.
pub const MIN_RESET_KEY_BYTES: usize = 32;

impl ResetKey {
    /// `key` of at least [`MIN_RESET_KEY_BYTES`] bytes.
    pub fn new(key: Vec<u8>) -> Result<Self, String> {
        if key.len() < MIN_RESET_KEY_BYTES {
            return Err(format!(
                "the reset key is {} bytes; it needs at least {MIN_RESET_KEY_BYTES}. Make one \
                 with: head -c 32 /dev/urandom > reset-key && chmod 600 reset-key",
                key.len()
            ));
        }
        Ok(ResetKey(key))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for ResetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResetKey(<redacted>)")
    }
}

/// The default send coalescing window (`ServerConfig::coalesce`).
pub const DEFAULT_COALESCE: Duration = Duration::from_micros(500);

/// Everything the server needs; `ServerConfig::new` fills sane defaults.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// UDP address to listen on. Default in the CLI: 127.0.0.1:7350.
    pub listen: SocketAddr,
    pub tls: TlsIdentity,
    pub auth: AuthMode,
    /// How long a join request waits for the leader. Default 5 minutes.
    pub join_request_ttl: Duration,
    /// Party table shards. Default 64: plenty to keep 2-16 cores from
    /// contending, small enough to sweep quickly.
    pub shards: usize,
    /// Control-stream messages queued per session before it is cut off as a
    /// slow consumer. Default 1024.
    pub outbox_capacity: usize,
    /// Largest datagram payload accepted and announced. Default 1100 bytes.
    pub max_datagram_data: u32,
    /// How often the server sends each session a keep-alive (an empty
    /// datagram, in batches: see `keepalive`). Default 5 s; zero sends none.
    pub keep_alive: Duration,
    /// A connection silent this long is lost. Default 10 s.
    pub idle_timeout: Duration,
    /// Time allowed from the first packet to a complete Hello. Default 5 s.
    pub hello_timeout: Duration,
    /// Time a hook (`ServerBuilder::hooks`) has to answer before its
    /// command fails with `HookFailed`. Default 1 s.
    pub hook_timeout: Duration,
    /// Time the server waits for connections to close on shutdown. Default 2 s
    /// (the CLI's `--drain-timeout`: 5 s).
    pub drain_timeout: Duration,
    /// How long a session whose connection was lost keeps its seats and
    /// waits for a resume. Default 15 s.
    pub grace: Duration,
    /// How long a lost leader stays leader before a connected member takes
    /// over. Default 0 (at once).
    pub leader_grace: Duration,
    /// Events kept per session for exact replay on resume. Default 1024.
    pub replay_events: usize,
    /// How often clients are asked to acknowledge (QUIC ACK-frequency
    /// extension). Default `None`, QUIC's every other packet: delaying the
    /// clients' ACKs starves the server's congestion window on the heavy
    /// server-to-client direction, and measured worse (BENCHMARKS.md).
    pub ack_frequency: Option<AckFrequency>,
    /// UDP socket receive and send buffer, bytes (0: the system default).
    /// Default 4 MiB: the 208 KiB Linux default drops datagrams in bursts.
    pub socket_buffer: usize,
    /// Most sessions at once, connected or in their grace window. Checked
    /// when a connection arrives; beyond it the connection is closed with
    /// `CloseCode::ServerFull`. Default 100,000.
    pub max_sessions: usize,
    /// QUIC handshakes in progress at once; beyond it new connections are
    /// refused outright (CONNECTION_REFUSED). A handshake costs ~0.7 ms of
    /// CPU, so a reconnect storm is CPU-bound. Default 256.
    pub max_handshakes: usize,
    /// With more handshakes than this in progress, a client must first prove
    /// its address (QUIC Retry, one extra round trip): a flood of Initials
    /// from spoofed addresses then costs a stateless reply each. Default 32.
    pub retry_above: usize,
    /// Control commands per second per session (burst: twice that); over
    /// it, commands are answered `RateLimited`. 0: unlimited. Default 50.
    pub command_rate: f64,
    /// Party data messages per second per session, datagrams and reliable
    /// data each (burst: twice that); over it, datagrams are dropped and
    /// reliable data is refused. 0: unlimited. Default 500.
    pub data_rate: f64,
    /// Parties one session may be in at once, seats and waiting join
    /// requests together. Default 16.
    pub max_parties_per_session: usize,
    /// Serve Prometheus text metrics over HTTP on this address. Default off.
    pub metrics: Option<SocketAddr>,
    /// Serve the admin HTTP API on this address (`super::admin`). Default
    /// off. The same address as `metrics` serves both on one listener,
    /// `/metrics` without the token.
    pub admin: Option<SocketAddr>,
    /// The bearer token the admin API requires: at least 16 visible ASCII
    /// characters. Required with `admin`.
    pub admin_token: Option<AdminToken>,
    /// Run as one node of a cluster over NATS (`super::peers::nats`). Default
    /// `None`: a single server.
    pub cluster: Option<ClusterConfig>,
    /// Per-recipient send coalescing window for party datagrams: a
    /// recipient's datagrams wait up to about this long and leave together,
    /// several to a packet, and one timer wake-up serves every recipient,
    /// trading that much latency for less server CPU per delivery. Zero
    /// relays each datagram at once. At most 64 wait per recipient; beyond
    /// that the oldest is dropped, as quinn's own send buffer does.
    /// Default 500 µs, chosen from the curve in BENCHMARKS.md: it keeps
    /// cell S's p99 under 1 ms and cuts server CPU per delivery by about
    /// 30-45% in every cell; wide parties gain more from 1000 µs.
    pub coalesce: Duration,
    /// How long an invite lasts unless used, declined or revoked. Default
    /// 5 minutes.
    pub invite_ttl: Duration,
    /// Invites one session may send per minute (0: unlimited). Default 30.
    pub invites_per_minute: u32,
    /// `JoinByCode` attempts one session may make per minute (0:
    /// unlimited). Default 10: with 100,000 live codes among 887 million,
    /// a session guesses one in about 15 hours.
    pub join_code_attempts_per_minute: u32,
    /// Users one session may follow. Default 256.
    pub max_follows: usize,
    /// Matchmaking tickets one session may submit per minute (0: no
    /// limit). Default 30.
    pub tickets_per_minute: u32,
    /// How often the matchmaker runs a round. Default 1 s.
    pub matchmaker_interval: Duration,
    /// After this long waiting, a ticket's relaxed minimum applies.
    /// Default 30 s.
    pub matchmaker_relax_after: Duration,
    /// How long a match token stays valid. Default 60 s.
    pub match_token_ttl: Duration,
    /// The secret match tokens are signed with, shared with game servers.
    /// Default: the token secret in token mode; in dev mode a fixed,
    /// public dev secret (`DEV_MATCH_SECRET`).
    pub match_secret: Option<Vec<u8>>,
    /// Stateless resets are derived from this key, shared by every node
    /// behind one address (see [`ResetKey`]). Default `None`: a random key
    /// per start, so only this process can end its own connections.
    pub reset_key: Option<ResetKey>,
    /// Browsers over WebTransport on the same port (`super::web`): ALPN
    /// `h3` beside partyline's own, path `/partyline`. Default on, with no
    /// origin allowed but, with dev identities, pages on this machine.
    /// `None` offers only partyline's ALPN.
    pub webtransport: Option<WebTransportConfig>,
}

/// Browser sessions (WebTransport) on the server's endpoint.
#[derive(Clone, Debug, Default)]
pub struct WebTransportConfig {
    /// Origins whose pages may connect, as browsers send them
    /// (`https://game.example`, or `https://game.example:8443`); `*` allows
    /// every page. With dev identities, pages from localhost are allowed too.
    pub allowed_origins: Vec<String>,
    /// Without a CA-signed certificate: the rotating ECDSA P-256
    /// certificates browsers accept by hash, shown to browsers (ALPN h3)
    /// while native clients keep `tls`. `None`: browsers get `tls` too.
    pub browser_certificates: Option<Arc<BrowserCertificates>>,
    /// Serve the browser certificate's hashes over HTTP here
    /// (`super::devhttp`). Default off; the CLI's `--dev-http`.
    pub dev_http: Option<SocketAddr>,
    /// On `dev_http`, also the demo page and the TypeScript client.
    pub dev_page: bool,
}

/// The match-token secret of a dev server: public, for local play only.
pub const DEV_MATCH_SECRET: &[u8] = b"partyline-dev-match-secret";

impl ServerConfig {
    /// What a server with this configuration announces in `Welcome` and
    /// holds its sessions to.
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            max_frame_size: MAX_FRAME_SIZE,
            max_datagram_data: self.max_datagram_data,
            max_reliable_data: MAX_RELIABLE_DATA,
            max_party_size: MAX_PARTY_SIZE,
            max_label_bytes: MAX_LABEL_BYTES as u32,
            join_request_ttl_ms: u64::try_from(self.join_request_ttl.as_millis())
                .unwrap_or(u64::MAX),
            max_status_bytes: MAX_STATUS_BYTES as u32,
            max_follows: u32::try_from(self.max_follows).unwrap_or(u32::MAX),
            invite_ttl_ms: u64::try_from(self.invite_ttl.as_millis()).unwrap_or(u64::MAX),
            invites_per_minute: self.invites_per_minute,
            join_code_attempts_per_minute: self.join_code_attempts_per_minute,
            max_search_results: MAX_SEARCH_RESULTS,
            max_state_entries: MAX_STATE_ENTRIES as u32,
            max_state_bytes: MAX_STATE_BYTES as u32,
            max_attribute_entries: MAX_ATTRIBUTE_ENTRIES as u32,
            max_attribute_bytes: MAX_ATTRIBUTE_BYTES as u32,
            max_property_entries: MAX_PROPERTY_ENTRIES as u32,
            max_property_bytes: MAX_PROPERTY_BYTES as u32,
            max_bans: MAX_BANS as u32,
            matchmaker_interval_ms: u64::try_from(self.matchmaker_interval.as_millis())
                .unwrap_or(u64::MAX),
            matchmaker_relax_after_ms: u64::try_from(self.matchmaker_relax_after.as_millis())
                .unwrap_or(u64::MAX),
        }
    }

    /// The secret match tokens are signed with (see `match_secret`).
    pub fn match_secret(&self) -> Vec<u8> {
        match (&self.match_secret, &self.auth) {
            (Some(secret), _) => secret.clone(),
            (None, AuthMode::Token { secret, .. }) => secret.clone(),
            (None, AuthMode::Dev) => DEV_MATCH_SECRET.to_vec(),
        }
    }
}

pub use crate::protocol::AckFrequency;

/// QUIC's form of an [`AckFrequency`].
pub(crate) fn quinn_ack_frequency(frequency: AckFrequency) -> quinn::AckFrequencyConfig {
    let mut config = quinn::AckFrequencyConfig::default();
    config
        .ack_eliciting_threshold(quinn::VarInt::from_u32(frequency.threshold))
        .max_ack_delay(Some(frequency.max_delay));
    config
}

impl ServerConfig {
    pub fn new(listen: SocketAddr, tls: TlsIdentity) -> Self {
        ServerConfig {
            listen,
            tls,
            auth: AuthMode::Dev,
            join_request_ttl: Duration::from_secs(300),
            shards: 64,
            outbox_capacity: 1024,
            max_datagram_data: DEFAULT_MAX_DATAGRAM_DATA,
            keep_alive: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(10),
            hello_timeout: Duration::from_secs(5),
            hook_timeout: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(2),
            grace: Duration::from_secs(15),
            leader_grace: Duration::ZERO,
            replay_events: 1024,
            ack_frequency: None,
            socket_buffer: 4 * 1024 * 1024,
            max_sessions: 100_000,
            max_handshakes: 256,
            retry_above: 32,
            command_rate: 50.0,
            data_rate: 500.0,
            max_parties_per_session: 16,
            metrics: None,
            admin: None,
            admin_token: None,
            cluster: None,
            coalesce: DEFAULT_COALESCE,
            invite_ttl: Duration::from_secs(300),
            invites_per_minute: 30,
            join_code_attempts_per_minute: 10,
            max_follows: 256,
            tickets_per_minute: 30,
            matchmaker_interval: Duration::from_secs(1),
            matchmaker_relax_after: Duration::from_secs(30),
            match_token_ttl: Duration::from_secs(60),
            match_secret: None,
            reset_key: None,
            webtransport: Some(WebTransportConfig::default()),
        }
    }
}

/// How a node joins a cluster (`partyline serve --cluster URL --node NAME`).
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// The NATS server(s), e.g. `nats://127.0.0.1:4222` (comma-separated
    /// for several).
    pub url: String,
    /// This node's name, unique in the cluster. Its tag (the first 4 bytes
    /// of SHA-256 of it) is in every party id it mints.
    pub node: String,
    /// How often the node announces itself. Default 1 s.
    pub heartbeat: Duration,
    /// A node not heard from for this long is lost, and its parties end.
    /// Default 3 s.
    pub node_timeout: Duration,
    /// How long a forwarded command waits for its home's answer before it
    /// fails with `Unavailable`. Default 2 s.
    pub request_timeout: Duration,
    /// Party data messages waiting to be published; beyond it, new ones are
    /// dropped and counted (datagrams stay unreliable). Default 16,384.
    pub datagram_queue: usize,
    /// Control messages (replies, events, membership) waiting to be
    /// published; beyond it they are dropped and counted. Default 65,536.
    pub control_queue: usize,
}

impl ClusterConfig {
    pub fn new(url: impl Into<String>, node: impl Into<String>) -> Self {
        ClusterConfig {
            url: url.into(),
            node: node.into(),
            heartbeat: Duration::from_secs(1),
            node_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(2),
            datagram_queue: 16_384,
            control_queue: 65_536,
        }
    }
}
