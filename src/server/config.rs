use crate::certs::{BrowserCertificates, TlsIdentity};
use crate::matchmaker::derive_match_key;
use crate::protocol::DEFAULT_MAX_DATAGRAM_DATA;
use crate::protocol::{
    Limits, MAX_ATTRIBUTE_BYTES, MAX_ATTRIBUTE_ENTRIES, MAX_BANS, MAX_FRAME_SIZE, MAX_LABEL_BYTES,
    MAX_PARTY_SIZE, MAX_PROPERTY_BYTES, MAX_PROPERTY_ENTRIES, MAX_RELIABLE_DATA,
    MAX_SEARCH_RESULTS, MAX_STATE_BYTES, MAX_STATE_ENTRIES, MAX_STATUS_BYTES,
};
use crate::security::{check_secrets, SecretRefusal};
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
                 with: (umask 077; head -c 32 /dev/urandom | base64 > reset-key)",
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

/// The default byte budget of a session's replay log
/// (`ServerConfig::replay_bytes`, `--replay-bytes`). Chosen from a
/// measurement: BENCHMARKS.md, "Replay log: bytes per event".
pub const DEFAULT_REPLAY_BYTES: usize = 16 * 1024;

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
    /// datagram, in batches: see `keepalive`), and samples its
    /// connection's quality at the same visit (`quality`; every 5 s when
    /// this is zero). Default 5 s; zero sends none.
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
    /// Bytes of event frames kept per session for exact replay on resume,
    /// beside `replay_events`: the oldest go when either is passed. A
    /// resume from before what is kept gets snapshots. Default
    /// [`DEFAULT_REPLAY_BYTES`].
    pub replay_bytes: usize,
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
    /// Serve the admin HTTP API on this address (the admin module). Default
    /// off. The same address as `metrics` serves both on one listener,
    /// `/metrics` without the token.
    pub admin: Option<SocketAddr>,
    /// The bearer token the admin API requires: at least 16 visible ASCII
    /// characters. Required with `admin`.
    pub admin_token: Option<AdminToken>,
    /// Run as one node of a cluster over NATS (the NATS adapter of the routing seam). Default
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
    /// Most sessions one user may have at once on this node, connected or
    /// in their grace window (a resume takes its own session back and
    /// does not count again); beyond it Hello is refused with
    /// `RateLimited`. 0: no limit. Default 8: a player's devices and game
    /// clients at once, with room for sessions still in their grace
    /// window after a reconnect that did not resume.
    pub max_sessions_per_user: usize,
    /// Most sessions from one source address at once on this node (an
    /// IPv4 address, or an IPv6 /64); beyond it Hello is refused with
    /// `RateLimited`. 0: no limit. Default 256: a LAN party, a campus or
    /// a carrier-grade NAT puts many players behind one IPv4 address
    /// (a CGNAT shares one among tens to hundreds of subscribers), and
    /// their sessions all count here.
    pub max_sessions_per_address: usize,
    /// Budgets of one user, all its sessions on this node together,
    /// beside each session's own. Defaults: [`PlayerBudgets::PER_USER`].
    pub per_user: PlayerBudgets,
    /// Budgets of one source address (IPv4 address, IPv6 /64), all its
    /// users' sessions on this node together. Defaults:
    /// [`PlayerBudgets::PER_ADDRESS`].
    pub per_address: PlayerBudgets,
    /// Whether the per-address limits (sessions and budgets) count
    /// loopback sources (127.0.0.0/8, ::1) too. Default false: a loopback
    /// source is this host itself (a local load generator, a test, or a
    /// proxy on the same host, behind which every player shares one
    /// address), and no packet from the network can claim one. The
    /// per-user limits hold for every source.
    pub limit_loopback: bool,
    /// How often the matchmaker runs a round. Default 1 s.
    pub matchmaker_interval: Duration,
    /// After this long waiting, a ticket's relaxed minimum applies.
    /// Default 30 s.
    pub matchmaker_relax_after: Duration,
    /// How long a match token stays valid. Default 60 s.
    pub match_token_ttl: Duration,
    /// The key match tokens are signed with, shared with game servers, as
    /// it is (at least 32 bytes, and not a token secret). Default `None`:
    /// the key is derived from the token secret (see [`Self::match_key`]).
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

/// What one user, or one source address, may do on one node, summed over
/// its sessions: each a token bucket that holds its whole allowance and
/// refills at that rate. 0: no limit. Every command spends one, refused or
/// not, except that a refusal by these budgets spends none of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlayerBudgets {
    /// `Invite` commands a minute.
    pub invites: u32,
    /// `Follow` commands a minute.
    pub follows: u32,
    /// `SubmitTicket` commands a minute.
    pub tickets: u32,
    /// `JoinParty` commands a minute (a seat or a join request).
    pub join_requests: u32,
    /// `SearchParties` commands a minute.
    pub searches: u32,
    /// `JoinByCode` commands a minute, found or not.
    pub join_code_attempts: u32,
    /// `JoinByCode` commands an **hour** that name no live party: the
    /// guessing budget. An attempt is refused `RateLimited` while it is
    /// spent, whatever the code (README.md, "Join codes": how the default
    /// follows from the time a guesser needs).
    pub join_code_failures: u32,
}

impl PlayerBudgets {
    /// The defaults per user: about two sessions' worth of each
    /// per-session budget (invites, tickets, join-code attempts), and of
    /// what a player does by hand; 20 wrong codes an hour.
    pub const PER_USER: PlayerBudgets = PlayerBudgets {
        invites: 60,
        follows: 60,
        tickets: 60,
        join_requests: 60,
        searches: 120,
        join_code_attempts: 20,
        join_code_failures: 20,
    };

    /// The defaults per address: ten users' worth (many players share an
    /// IPv4 address behind a NAT), and 100 wrong codes an hour.
    pub const PER_ADDRESS: PlayerBudgets = PlayerBudgets {
        invites: 600,
        follows: 600,
        tickets: 600,
        join_requests: 600,
        searches: 1200,
        join_code_attempts: 200,
        join_code_failures: 100,
    };

    /// The keys of [`with_rates`](Self::with_rates), in the order they
    /// are listed.
    pub const RATE_KEYS: [&'static str; 6] = [
        "invites",
        "follows",
        "tickets",
        "joins",
        "searches",
        "join-codes",
    ];

    /// These budgets with the per-minute rates `list` names instead: `key=N`
    /// entries, comma-separated, of the keys `invites`, `follows`,
    /// `tickets`, `joins` (`join_requests`), `searches` and `join-codes`
    /// (`join_code_attempts`); N a whole number, 0 for no limit. What the
    /// CLI's `--user-rates` and `--address-rates` take.
    pub fn with_rates(mut self, list: &str) -> Result<PlayerBudgets, String> {
        for entry in list.split(',').map(str::trim) {
            let Some((key, value)) = entry.split_once('=') else {
                return Err(format!(
                    "{entry:?} is not key=N (keys: {})",
                    Self::RATE_KEYS.join(", ")
                ));
            };
            let value: u32 = value
                .trim()
                .parse()
                .map_err(|error| format!("{entry:?}: not a whole number from 0: {error}"))?;
            let field = match key.trim() {
                "invites" => &mut self.invites,
                "follows" => &mut self.follows,
                "tickets" => &mut self.tickets,
                "joins" => &mut self.join_requests,
                "searches" => &mut self.searches,
                "join-codes" => &mut self.join_code_attempts,
                other => {
                    return Err(format!(
                        "unknown key {other:?} (keys: {})",
                        Self::RATE_KEYS.join(", ")
                    ))
                }
            };
            *field = value;
        }
        Ok(self)
    }

    /// No limit on anything.
    pub const UNLIMITED: PlayerBudgets = PlayerBudgets {
        invites: 0,
        follows: 0,
        tickets: 0,
        join_requests: 0,
        searches: 0,
        join_code_attempts: 0,
        join_code_failures: 0,
    };
}

/// What a dev server derives its match key from: public, so its match
/// tokens prove nothing (local play only).
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

    /// The key match tokens are signed with: `match_secret` if set; else
    /// derived one way from the current token secret
    /// ([`derive_match_key`]), never the token secret itself, so a game
    /// server holding it cannot mint identity tokens; else, on a dev
    /// server, derived the same way from the public [`DEV_MATCH_SECRET`].
    pub fn match_key(&self) -> Vec<u8> {
        match (&self.match_secret, &self.auth) {
            (Some(secret), _) => secret.clone(),
            (None, AuthMode::Token { secret, .. }) => derive_match_key(secret).to_vec(),
            (None, AuthMode::Dev) => derive_match_key(DEV_MATCH_SECRET).to_vec(),
        }
    }

    /// Refuses secrets short enough to guess (`MIN_SECRET_BYTES`), and a
    /// match secret that is a token secret: whoever checks match tokens
    /// must not be able to mint identities.
    pub(crate) fn check_secrets(&self) -> Result<(), SecretRefusal> {
        let (token, previous) = match &self.auth {
            AuthMode::Dev => (None, None),
            AuthMode::Token { secret, previous } => (Some(&secret[..]), previous.as_deref()),
        };
        check_secrets(token, previous, self.match_secret.as_deref())
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
            replay_bytes: DEFAULT_REPLAY_BYTES,
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
            max_sessions_per_user: 8,
            max_sessions_per_address: 256,
            per_user: PlayerBudgets::PER_USER,
            per_address: PlayerBudgets::PER_ADDRESS,
            limit_loopback: false,
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
    /// How often the node announces itself. Default 1 s; keep it at most
    /// a third of `node_timeout` (`--node-timeout` sets it so): a node
    /// judges the others only while its own heartbeats come back, and a
    /// gap in them must show before another node's silence reaches the
    /// timeout.
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

#[cfg(test)]
mod tests {
    use super::PlayerBudgets;

    #[test]
    fn rate_lists_replace_what_they_name() {
        let budgets = PlayerBudgets::PER_USER
            .with_rates("invites=5, join-codes = 0,joins=7")
            .unwrap();
        assert_eq!(
            budgets,
            PlayerBudgets {
                invites: 5,
                join_code_attempts: 0,
                join_requests: 7,
                ..PlayerBudgets::PER_USER
            }
        );
        for bad in [
            "",
            "invites",
            "invites=-1",
            "invites=x",
            "guesses=3",
            "invites=5,",
        ] {
            assert!(
                PlayerBudgets::PER_USER.with_rates(bad).is_err(),
                "{bad:?} accepted"
            );
        }
    }
}
