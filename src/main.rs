//! The `partyline` command: `serve` runs the server, `token` mints a signed
//! identity token, `match-key` prints the key game servers check match
//! tokens with, `client` tries commands by hand (or as JSON lines): the
//! `partyline-cli` crate, present with the default `cli` feature.

#![deny(clippy::unwrap_used, clippy::expect_used)]

use clap::builder::{NonEmptyStringValueParser, RangedU64ValueParser};
use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use partyline::auth::mint_token_for;
use partyline::certs::{dev_cert_names, ensure_dev_cert_for, load_identity, BrowserCertificates};
use partyline::security::{self, Exposure, SecretRole, SecretSource};
use partyline::server::{AckFrequency, AdminToken, AuthMode, PlayerBudgets, Server, ServerConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "partyline",
    version,
    about = "A low-latency realtime party server for games, over QUIC"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Mint a signed identity token for a client (what a game backend does).
    Token(TokenArgs),
    /// Print the key match tokens are signed with, derived from the token
    /// secret, as 64 hex digits: what your game servers check match tokens
    /// with (PROTOCOL.md, "Match token"). Not needed with
    /// --match-secret-file: that file's secret is the key.
    MatchKey(MatchKeyArgs),
    /// A client at a prompt, to try every command by hand; with --json, a
    /// JSON-lines client for scripts and bots.
    #[cfg(feature = "cli")]
    Client(partyline_cli::ClientArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// UDP address to listen on.
    #[arg(long, env = "PARTYLINE_LISTEN", default_value = "127.0.0.1:7350")]
    listen: SocketAddr,
    /// PEM certificate chain. Without --cert/--key a development certificate
    /// for localhost is generated in --cert-dir on first run and reused.
    #[arg(long, env = "PARTYLINE_CERT", requires = "key")]
    cert: Option<PathBuf>,
    /// PEM private key matching --cert.
    #[arg(long, env = "PARTYLINE_KEY", requires = "cert")]
    key: Option<PathBuf>,
    /// Where the development certificate lives.
    #[arg(long, env = "PARTYLINE_CERT_DIR", default_value = "certs")]
    cert_dir: PathBuf,
    /// A host name or IP address the dev certificate must also be valid
    /// for, beside localhost: for play across a LAN (repeatable). A new
    /// certificate is made when the current one lacks a name.
    #[arg(
        long = "cert-name",
        env = "PARTYLINE_CERT_NAMES",
        value_delimiter = ','
    )]
    cert_names: Vec<String>,
    /// Log filter: error, warn, info, debug, trace, or a tracing directive.
    #[arg(long, env = "PARTYLINE_LOG_LEVEL", default_value = "info", value_parser = log_filter)]
    log_level: String,
    /// Log format, on stderr: text (coloured only on a terminal) or json
    /// (one object per line).
    #[arg(long, env = "PARTYLINE_LOG_FORMAT", value_enum, default_value_t = partyline::LogFormat::Text)]
    log_format: partyline::LogFormat,
    /// Require signed tokens with this HMAC secret, at least 32 bytes (dev
    /// identities refused). Any local user can read it in `ps`: prefer
    /// --token-secret-file.
    #[arg(
        long,
        env = "PARTYLINE_TOKEN_SECRET",
        hide_env_values = true,
        conflicts_with = "token_secret_file",
        value_parser = NonEmptyStringValueParser::new()
    )]
    token_secret: Option<String>,
    /// Require signed tokens with the HMAC secret in this file, which only
    /// its owner may access (chmod 600); a trailing newline is ignored. At
    /// least 32 bytes: `(umask 077; head -c 32 /dev/urandom | base64 >
    /// secret)`.
    #[arg(long, env = "PARTYLINE_TOKEN_SECRET_FILE")]
    token_secret_file: Option<PathBuf>,
    /// During a secret rotation: a file with the previous secret (at least
    /// 32 bytes). Tokens signed with it stay valid until they expire.
    #[arg(long, env = "PARTYLINE_TOKEN_SECRET_PREVIOUS_FILE")]
    token_secret_previous_file: Option<PathBuf>,
    /// Accept dev identities on a non-loopback address, where anyone who
    /// reaches the server can claim any user id (warned about every 10 min).
    #[arg(long, env = "PARTYLINE_ALLOW_DEV_IDENTITIES")]
    allow_dev_identities: bool,
    /// Accept --metrics on a non-loopback address, readable by anyone who
    /// reaches it.
    #[arg(long, env = "PARTYLINE_ALLOW_PUBLIC_METRICS")]
    allow_public_metrics: bool,
    /// Seconds a join request waits for the leader before it expires.
    #[arg(long, env = "PARTYLINE_JOIN_REQUEST_TTL", default_value = "300", value_name = "SECS", value_parser = seconds, allow_negative_numbers = true)]
    join_request_ttl: Duration,
    /// Largest datagram payload in bytes (announced to clients), 1 to 65535.
    #[arg(long, env = "PARTYLINE_MAX_DATAGRAM_DATA", default_value_t = partyline::protocol::DEFAULT_MAX_DATAGRAM_DATA,
          value_name = "BYTES", value_parser = clap::value_parser!(u32).range(1..=MAX_DATAGRAM_DATA), allow_negative_numbers = true)]
    max_datagram_data: u32,
    /// Party table shards (each behind its own lock), 1 to 65536.
    #[arg(long, env = "PARTYLINE_SHARDS", default_value_t = 64, value_parser = shard_count, allow_negative_numbers = true)]
    shards: usize,
    /// Seconds between the keep-alives the server sends each session (0:
    /// none); each connection's quality is sampled at the same visit
    /// (every 5 s with 0).
    #[arg(long, env = "PARTYLINE_KEEP_ALIVE", default_value = "5", value_name = "SECS", value_parser = seconds, allow_negative_numbers = true)]
    keep_alive: Duration,
    /// Seconds of silence after which a connection counts as lost.
    #[arg(long, env = "PARTYLINE_IDLE_TIMEOUT", default_value = "10", value_name = "SECS", value_parser = seconds, allow_negative_numbers = true)]
    idle_timeout: Duration,
    /// Seconds a lost session keeps its seats, waiting for a resume.
    #[arg(long, env = "PARTYLINE_GRACE", default_value = "15", value_name = "SECS", value_parser = seconds, allow_negative_numbers = true)]
    grace: Duration,
    /// Seconds a lost leader stays leader before a connected member takes over.
    #[arg(long, env = "PARTYLINE_LEADER_GRACE", default_value = "0", value_name = "SECS", value_parser = seconds, allow_negative_numbers = true)]
    leader_grace: Duration,
    /// Events kept per session for exact replay on resume.
    #[arg(
        long,
        env = "PARTYLINE_REPLAY_EVENTS",
        default_value_t = 1024,
        allow_negative_numbers = true
    )]
    replay_events: usize,
    /// Bytes of event frames kept per session for exact replay on resume,
    /// beside --replay-events (the oldest go when either is passed); a
    /// resume from before what is kept gets snapshots.
    #[arg(
        long,
        env = "PARTYLINE_REPLAY_BYTES",
        default_value_t = partyline::server::DEFAULT_REPLAY_BYTES,
        allow_negative_numbers = true
    )]
    replay_bytes: usize,
    /// UDP socket buffer in bytes (0: the system default; the kernel caps it
    /// at net.core.rmem_max).
    #[arg(long, env = "PARTYLINE_SOCKET_BUFFER", default_value_t = 4 * 1024 * 1024, allow_negative_numbers = true)]
    socket_buffer: usize,
    /// Seconds to wait, on Ctrl-C or SIGTERM, for sessions to receive their
    /// close before the process exits.
    #[arg(long, env = "PARTYLINE_DRAIN_TIMEOUT", default_value = "5", value_name = "SECS", value_parser = seconds, allow_negative_numbers = true)]
    drain_timeout: Duration,
    /// Most sessions at once (connected or in their grace window); beyond
    /// it new connections are closed with code 7 (ServerFull).
    #[arg(long, env = "PARTYLINE_MAX_SESSIONS", default_value_t = 100_000, value_parser = at_least_one, allow_negative_numbers = true)]
    max_sessions: usize,
    /// QUIC handshakes in progress at once; beyond it connections are refused.
    #[arg(long, env = "PARTYLINE_MAX_HANDSHAKES", default_value_t = 256, value_parser = at_least_one, allow_negative_numbers = true)]
    max_handshakes: usize,
    /// With more handshakes than this in progress, clients must prove their
    /// address first (QUIC Retry).
    #[arg(
        long,
        env = "PARTYLINE_RETRY_ABOVE",
        default_value_t = 32,
        allow_negative_numbers = true
    )]
    retry_above: usize,
    /// Control commands per second per connection (burst twice that); 0: no
    /// limit. PROTOCOL.md, "Rate limits", says when refusals cut it.
    #[arg(long, env = "PARTYLINE_COMMAND_RATE", default_value_t = 50.0, value_parser = partyline::parse_non_negative, allow_negative_numbers = true)]
    command_rate: f64,
    /// Party data messages per second per connection, datagrams and
    /// reliable each (burst twice that); 0: no limit.
    #[arg(long, env = "PARTYLINE_DATA_RATE", default_value_t = 500.0, value_parser = partyline::parse_non_negative, allow_negative_numbers = true)]
    data_rate: f64,
    /// Parties one session may be in at once (seats and join requests), 1
    /// to 24.
    #[arg(long, env = "PARTYLINE_MAX_PARTIES_PER_SESSION", default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(1..=partyline::protocol::MAX_PARTIES_PER_SESSION as u64))]
    max_parties_per_session: u64,
    /// Seconds an invite lasts unless used, declined or revoked.
    #[arg(long, env = "PARTYLINE_INVITE_TTL", default_value = "300", value_name = "SECS", value_parser = seconds, allow_negative_numbers = true)]
    invite_ttl: Duration,
    /// Invites one session may send per minute (0: no limit).
    #[arg(
        long,
        env = "PARTYLINE_INVITES_PER_MINUTE",
        default_value_t = 30,
        allow_negative_numbers = true
    )]
    invites_per_minute: u32,
    /// Join-code attempts one session may make per minute (0: no limit).
    #[arg(
        long,
        env = "PARTYLINE_JOIN_CODE_ATTEMPTS_PER_MINUTE",
        default_value_t = 10,
        allow_negative_numbers = true
    )]
    join_code_attempts_per_minute: u32,
    /// Users one session may follow.
    #[arg(
        long,
        env = "PARTYLINE_MAX_FOLLOWS",
        default_value_t = 256,
        allow_negative_numbers = true
    )]
    max_follows: u32,
    /// Matchmaking tickets one session may submit per minute (0: no limit).
    #[arg(
        long,
        env = "PARTYLINE_TICKETS_PER_MINUTE",
        default_value_t = 30,
        allow_negative_numbers = true
    )]
    tickets_per_minute: u32,
    /// Most sessions one user may have at once (0: no limit); beyond it
    /// Hello is refused with RateLimited.
    #[arg(
        long,
        env = "PARTYLINE_MAX_SESSIONS_PER_USER",
        default_value_t = 8,
        allow_negative_numbers = true
    )]
    max_sessions_per_user: usize,
    /// Most sessions from one source address at once (an IPv4 address or
    /// an IPv6 /64; 0: no limit); beyond it Hello is refused with
    /// RateLimited. Loopback is not counted unless --limit-loopback.
    #[arg(
        long,
        env = "PARTYLINE_MAX_SESSIONS_PER_ADDRESS",
        default_value_t = 256,
        allow_negative_numbers = true
    )]
    max_sessions_per_address: usize,
    /// Per-minute budgets of one user over all its sessions, key=N
    /// (comma-separated; keys not named keep their default; 0: no limit).
    /// Default: invites=60,follows=60,tickets=60,joins=60,searches=120,join-codes=20.
    #[arg(long, env = "PARTYLINE_USER_RATES", value_name = "LIST", value_parser = user_rates)]
    user_rates: Option<PlayerBudgets>,
    /// Per-minute budgets of one source address over all its sessions, as
    /// --user-rates. Default:
    /// invites=600,follows=600,tickets=600,joins=600,searches=1200,join-codes=200.
    #[arg(long, env = "PARTYLINE_ADDRESS_RATES", value_name = "LIST", value_parser = address_rates)]
    address_rates: Option<PlayerBudgets>,
    /// Join codes that name no party one user may try per hour, over all
    /// its sessions (0: no limit).
    #[arg(
        long,
        env = "PARTYLINE_JOIN_CODE_FAILURES_PER_USER",
        default_value_t = 20,
        allow_negative_numbers = true
    )]
    join_code_failures_per_user: u32,
    /// Join codes that name no party one source address may try per hour,
    /// over all its sessions (0: no limit).
    #[arg(
        long,
        env = "PARTYLINE_JOIN_CODE_FAILURES_PER_ADDRESS",
        default_value_t = 100,
        allow_negative_numbers = true
    )]
    join_code_failures_per_address: u32,
    /// Count loopback sources (127.0.0.0/8, ::1) in the per-address limits
    /// too (by default they are not: a local load generator or a proxy on
    /// this host).
    #[arg(long, env = "PARTYLINE_LIMIT_LOOPBACK")]
    limit_loopback: bool,
    /// Seconds between matchmaking rounds.
    #[arg(long, env = "PARTYLINE_MATCHMAKER_INTERVAL", default_value = "1", value_name = "SECS", value_parser = seconds, allow_negative_numbers = true)]
    matchmaker_interval: Duration,
    /// Seconds a ticket waits before its relaxed minimum applies.
    #[arg(long, env = "PARTYLINE_MATCHMAKER_RELAX_AFTER", default_value = "30", value_name = "SECS", value_parser = seconds, allow_negative_numbers = true)]
    matchmaker_relax_after: Duration,
    /// Seconds a match token stays valid.
    #[arg(long, env = "PARTYLINE_MATCH_TOKEN_TTL", default_value = "60", value_name = "SECS", value_parser = seconds, allow_negative_numbers = true)]
    match_token_ttl: Duration,
    /// A file holding the key match tokens are signed with, shared with
    /// game servers (at least 32 bytes, not a token secret). Default: a key
    /// derived from the token secret (`partyline match-key` prints it); in
    /// dev mode one derived from a public dev secret.
    #[arg(long, env = "PARTYLINE_MATCH_SECRET_FILE")]
    match_secret_file: Option<PathBuf>,
    /// A file (chmod 600) with the key stateless resets are derived from, at
    /// least 32 bytes: `(umask 077; head -c 32 /dev/urandom | base64 > reset-key)`. Give every
    /// node behind one address (a cluster, a load balancer, a restart) the
    /// same file: a node that gets packets of a connection it does not know
    /// ends it at once, and the client reconnects instead of waiting out its
    /// idle timeout. Default: a random key per start.
    #[arg(long, env = "PARTYLINE_RESET_KEY_FILE", value_name = "PATH")]
    reset_key_file: Option<PathBuf>,
    /// Browsers over WebTransport on the same port (ALPN h3, path
    /// /partyline): on or off.
    #[arg(long, env = "PARTYLINE_WEBTRANSPORT", default_value = "on", value_name = "on|off", value_parser = on_off)]
    webtransport: bool,
    /// An origin whose pages may open WebTransport sessions, as browsers
    /// send it: https://game.example or https://game.example:8443, or *
    /// for any page (repeatable). With dev identities, pages served from
    /// localhost are allowed too.
    #[arg(long = "allowed-origin", env = "PARTYLINE_ALLOWED_ORIGINS", value_delimiter = ',', value_name = "ORIGIN", value_parser = web_origin)]
    allowed_origins: Vec<String>,
    /// Serve the browser dev certificate's SHA-256 hashes over plain HTTP
    /// at this address (GET /certificate-hashes), for pages to pass to
    /// serverCertificateHashes. Keep it on loopback unless the page is
    /// elsewhere. Default: off.
    #[arg(long, env = "PARTYLINE_DEV_HTTP", value_name = "ADDR")]
    dev_http: Option<SocketAddr>,
    /// Serve the browser demo page (two tabs and a `partyline client` in
    /// one party) on --dev-http, 127.0.0.1:7351 when not given.
    #[arg(long, env = "PARTYLINE_DEV_PAGE")]
    dev_page: bool,
    /// Serve Prometheus text metrics over HTTP on this address (off by default).
    #[arg(long, env = "PARTYLINE_METRICS")]
    metrics: Option<SocketAddr>,
    /// Serve the admin HTTP API on this address (off by default; README.md,
    /// "Admin API"). It needs a bearer token: --admin-token-file, or the
    /// token itself in PARTYLINE_ADMIN_TOKEN. The --metrics address may be
    /// the same: /metrics then stays open, the rest needs the token.
    #[arg(long, env = "PARTYLINE_ADMIN")]
    admin: Option<SocketAddr>,
    /// The admin API's bearer token, in a file only its owner may access
    /// (chmod 600); a trailing newline is ignored. At least 16 characters:
    /// `openssl rand -hex 32 > admin-token`.
    #[arg(long, env = "PARTYLINE_ADMIN_TOKEN_FILE", requires = "admin")]
    admin_token_file: Option<PathBuf>,
    /// Accept --admin on a non-loopback address, where its token and
    /// answers cross the network in clear (plain HTTP).
    #[arg(long, env = "PARTYLINE_ALLOW_PUBLIC_ADMIN")]
    allow_public_admin: bool,
    /// Run as one node of a cluster over NATS (docs/CLUSTER.md), e.g.
    /// nats://127.0.0.1:4222 (several servers: comma-separated). Without
    /// it the server stands alone.
    #[arg(long, env = "PARTYLINE_CLUSTER", requires = "node")]
    cluster: Option<String>,
    /// This node's name in the cluster, unique among its nodes (letters,
    /// digits, '-', '_', '.'; at most 64): every party it creates carries
    /// it.
    #[arg(long, env = "PARTYLINE_NODE", requires = "cluster", value_parser = node_name)]
    node: Option<String>,
    /// Seconds without a heartbeat after which another node counts as
    /// lost, and the parties it homed end. A node heart-beats three times
    /// per timeout; give every node of a cluster the same value (at least
    /// 0.5).
    #[arg(long, env = "PARTYLINE_NODE_TIMEOUT", default_value = "3", value_name = "SECS", value_parser = node_timeout, allow_negative_numbers = true)]
    node_timeout: Duration,
    /// Worker threads: 0 for one per core, 1 for a single-threaded server
    /// (at most 1024).
    #[arg(long, env = "PARTYLINE_THREADS", default_value_t = 0,
          value_parser = RangedU64ValueParser::<usize>::new().range(0..=MAX_THREADS), allow_negative_numbers = true)]
    threads: usize,
    /// Ask clients to acknowledge every N packets (QUIC ACK frequency); 0
    /// keeps QUIC's default of every other packet.
    #[arg(
        long,
        env = "PARTYLINE_ACK_THRESHOLD",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    ack_threshold: u32,
    /// ...or after this many milliseconds, whichever comes first.
    #[arg(
        long,
        env = "PARTYLINE_MAX_ACK_DELAY",
        default_value_t = 50,
        allow_negative_numbers = true
    )]
    max_ack_delay: u64,
    /// Microseconds a recipient's party datagrams may wait so that those
    /// sent within the window leave in one packet (less server CPU per
    /// delivery, up to that much more latency); 0 sends each at once.
    /// The default keeps a party of 4's p99 under 1 ms (BENCHMARKS.md).
    /// At most 1000000 (1 s).
    #[arg(long, env = "PARTYLINE_COALESCE_US", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(0..=MAX_COALESCE_US), allow_negative_numbers = true)]
    coalesce_us: u64,
}

/// The longest duration a flag in seconds takes: a year. Longer is a slip
/// (milliseconds typed for seconds), and far longer would overflow the
/// clock when a deadline is set.
const MAX_FLAG_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

/// No QUIC datagram can carry more (a UDP datagram's length is 16 bits);
/// what a path carries is less (README.md, `--max-datagram-data`).
const MAX_DATAGRAM_DATA: i64 = 65_535;

/// More shards than this buy nothing but memory.
const MAX_SHARDS: usize = 65_536;

/// More worker threads than this is a typo, not a machine.
const MAX_THREADS: u64 = 1024;

/// A coalescing window longer than a second would hold game data back.
const MAX_COALESCE_US: u64 = 1_000_000;

/// The shortest --node-timeout: a third of it is the heartbeat.
const MIN_NODE_TIMEOUT: Duration = Duration::from_millis(500);

/// --user-rates: the per-user defaults with the rates the list names.
fn user_rates(text: &str) -> Result<PlayerBudgets, String> {
    PlayerBudgets::PER_USER.with_rates(text)
}

/// --address-rates: the per-address defaults with the rates the list names.
fn address_rates(text: &str) -> Result<PlayerBudgets, String> {
    PlayerBudgets::PER_ADDRESS.with_rates(text)
}

/// A count that must be at least 1.
fn at_least_one(text: &str) -> Result<usize, String> {
    count_in(text, 1, usize::MAX)
}

/// A count of shards: 1 to `MAX_SHARDS`.
fn shard_count(text: &str) -> Result<usize, String> {
    count_in(text, 1, MAX_SHARDS)
}

/// A whole number from `min` to `max`.
fn count_in(text: &str, min: usize, max: usize) -> Result<usize, String> {
    match text.trim().parse::<i128>() {
        Ok(value) if value < min as i128 => Err(format!("must be at least {min}, got {value}")),
        Ok(value) => usize::try_from(value)
            .ok()
            .filter(|value| *value <= max)
            .ok_or_else(|| format!("must be at most {max}, got {value}")),
        Err(error) => Err(format!("not a whole number: {error}")),
    }
}

/// A duration in seconds, fractions allowed (`2.5`): finite, 0 to a year.
fn seconds(text: &str) -> Result<Duration, String> {
    let value = partyline::parse_non_negative(text)?;
    if value > MAX_FLAG_SECONDS {
        return Err(format!(
            "must be at most {MAX_FLAG_SECONDS} seconds (a year), got {}",
            text.trim()
        ));
    }
    Ok(Duration::from_secs_f64(value))
}

/// The shared stateless reset key, if a file was given.
fn reset_key(path: Option<&Path>) -> Result<Option<partyline::server::ResetKey>, String> {
    let Some(path) = path else {
        return Ok(None);
    };
    let key = partyline::security::read_secret_file(path).map_err(|e| e.to_string())?;
    security::check_secret_length(SecretRole::Reset, &key).map_err(|e| e.to_string())?;
    partyline::server::ResetKey::new(key)
        .map(Some)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// `--node`: a name the cluster accepts.
fn node_name(text: &str) -> Result<String, String> {
    if partyline::server::valid_node_name(text) {
        Ok(text.to_string())
    } else {
        Err("a node name is 1 to 64 ASCII letters, digits, '-', '_' and '.'".into())
    }
}

/// `--node-timeout`: seconds, at least 0.5.
fn node_timeout(text: &str) -> Result<Duration, String> {
    let timeout = seconds(text)?;
    if timeout < MIN_NODE_TIMEOUT {
        return Err(format!(
            "must be at least {} seconds, got {}",
            MIN_NODE_TIMEOUT.as_secs_f64(),
            timeout.as_secs_f64()
        ));
    }
    Ok(timeout)
}

/// A tracing filter that parses (a typo is an error, not silently "info").
fn on_off(text: &str) -> Result<bool, String> {
    match text {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(format!("expected on or off, got {other:?}")),
    }
}

/// `scheme://host[:port]` as a browser's Origin header says it, `null`, or `*`.
fn web_origin(text: &str) -> Result<String, String> {
    let origin = text.trim().trim_end_matches('/');
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    match rest {
        _ if origin == "*" || origin == "null" => Ok(origin.to_string()),
        Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', '@', ' ']) => {
            Ok(origin.to_string())
        }
        _ => Err(format!(
            "an origin is scheme://host[:port] (https://game.example), null or *; got {text:?}"
        )),
    }
}

fn log_filter(text: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(text)
        .map(|_| text.to_string())
        .map_err(|error| {
            format!("not a log filter ({error}); try error, warn, info, debug or trace")
        })
}

/// A usage error of `partyline serve` found after parsing (flags that
/// disagree): said like clap's own, with exit code 2.
fn usage_error(kind: ErrorKind, message: impl std::fmt::Display) -> ! {
    subcommand_error("serve", kind, message)
}

#[derive(Args)]
struct TokenArgs {
    #[arg(long)]
    user_id: String,
    #[arg(long)]
    username: String,
    /// Seconds the token stays valid.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    #[command(flatten)]
    secret: SecretArgs,
}

#[derive(Args)]
struct MatchKeyArgs {
    #[command(flatten)]
    secret: SecretArgs,
}

/// The server's token secret, for `token` and `match-key`: one of the two.
#[derive(Args)]
#[group(required = true, multiple = false)]
struct SecretArgs {
    /// A file with the server's token secret, which only its owner may
    /// access (chmod 600), as `serve --token-secret-file` reads it.
    #[arg(long, env = "PARTYLINE_TOKEN_SECRET_FILE", value_name = "PATH")]
    secret_file: Option<PathBuf>,
    /// The server's token secret itself. Any local user can read it in
    /// `ps` (a warning says so): prefer --secret-file, or set
    /// PARTYLINE_TOKEN_SECRET.
    #[arg(long, env = "PARTYLINE_TOKEN_SECRET", hide_env_values = true,
          value_parser = NonEmptyStringValueParser::new())]
    secret: Option<String>,
}

/// The token secret `token` or `match-key` (`subcommand`) was given; a
/// secret in argv is warned about on stderr. `Err`: the exit code, the
/// reason said.
fn secret_of(
    args: &SecretArgs,
    matches: &clap::ArgMatches,
    subcommand: &str,
) -> Result<Vec<u8>, ExitCode> {
    let in_argv = matches
        .subcommand_matches(subcommand)
        .and_then(|sub| sub.value_source("secret"))
        == Some(ValueSource::CommandLine);
    let (secret, flag) = match (&args.secret, &args.secret_file) {
        (Some(text), _) => (text.clone().into_bytes(), "--secret".to_string()),
        (None, Some(path)) => match security::read_secret_file(path) {
            Ok(secret) => (secret, format!("--secret-file {}", path.display())),
            Err(error) => {
                eprintln!("error: --secret-file: {error}");
                return Err(ExitCode::FAILURE);
            }
        },
        // The group is required: clap has said so already.
        (None, None) => return Err(ExitCode::from(2)),
    };
    if let Err(short) = security::check_secret_length(SecretRole::Token, &secret) {
        if args.secret.is_some() {
            // A bad value, like any flag's: exit code 2. The message says
            // the length, never the secret.
            let message = format!(
                "{flag} (or PARTYLINE_TOKEN_SECRET): {short} Then pass --secret-file secret."
            );
            subcommand_error(subcommand, ErrorKind::ValueValidation, message);
        }
        eprintln!("error: {flag}: {short}");
        return Err(ExitCode::FAILURE);
    }
    if in_argv {
        let warning = security::Warning::SecretOnCommandLine {
            file_flag: "--secret-file",
        };
        eprintln!("warning: {warning}");
    }
    Ok(secret)
}

/// A usage error of a subcommand, said like clap's own: exit code 2.
fn subcommand_error(name: &str, kind: ErrorKind, message: impl std::fmt::Display) -> ! {
    let mut command = Cli::command();
    command.build();
    let mut sub = command.find_subcommand(name).cloned().unwrap_or(command);
    sub.error(kind, message).exit()
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    match cli.command {
        Command::Serve(args) => {
            // Where --token-secret came from decides whether to warn about argv.
            let source = matches
                .subcommand_matches("serve")
                .and_then(|serve| serve.value_source("token_secret"));
            serve(*args, source == Some(ValueSource::CommandLine))
        }
        Command::Token(args) => {
            for (what, value) in [("user id", &args.user_id), ("username", &args.username)] {
                if let Err(message) = partyline::auth::validate_name(what, value) {
                    subcommand_error("token", ErrorKind::ValueValidation, message);
                }
            }
            let secret = match secret_of(&args.secret, &matches, "token") {
                Ok(secret) => secret,
                Err(code) => return code,
            };
            let ttl = Duration::from_secs(args.ttl);
            println!(
                "{}",
                mint_token_for(&secret, &args.user_id, &args.username, ttl)
            );
            ExitCode::SUCCESS
        }
        Command::MatchKey(args) => match secret_of(&args.secret, &matches, "match-key") {
            Ok(secret) => {
                let key = partyline::matchmaker::derive_match_key(&secret);
                let hex: String = key.iter().map(|byte| format!("{byte:02x}")).collect();
                println!("{hex}");
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        #[cfg(feature = "cli")]
        Command::Client(args) => partyline_cli::run(args),
    }
}

/// The secrets `partyline serve` was given.
struct Secrets {
    /// The token secret (`None`: dev identities).
    current: Option<Vec<u8>>,
    /// A rotation's previous token secret.
    previous: Option<Vec<u8>>,
    /// Where `current` came from.
    source: SecretSource,
    /// `--match-secret-file`'s.
    match_secret: Option<Vec<u8>>,
}

/// Reads the secret files and checks every secret (each at least 32 bytes,
/// the match secret no token secret), or says what is wrong. A short
/// `--token-secret` was refused before, as a bad flag value.
fn read_secrets(args: &ServeArgs, secret_in_argv: bool) -> Result<Secrets, String> {
    let read = |flag: &str, role: SecretRole, path: &PathBuf| {
        let in_file = |error: &dyn std::fmt::Display| format!("{flag} {}: {error}", path.display());
        let secret = security::read_secret_file(path).map_err(|e| in_file(&e))?;
        security::check_secret_length(role, &secret).map_err(|e| in_file(&e))?;
        Ok::<_, String>(secret)
    };
    let previous = args
        .token_secret_previous_file
        .as_ref()
        .map(|path| {
            read(
                "--token-secret-previous-file",
                SecretRole::PreviousToken,
                path,
            )
        })
        .transpose()?;
    let (current, source) = match (&args.token_secret, &args.token_secret_file) {
        (Some(secret), _) => {
            let source = if secret_in_argv {
                SecretSource::CommandLine
            } else {
                SecretSource::Environment
            };
            (Some(secret.clone().into_bytes()), source)
        }
        (None, Some(path)) => (
            Some(read("--token-secret-file", SecretRole::Token, path)?),
            SecretSource::File,
        ),
        (None, None) => (None, SecretSource::None),
    };
    let match_secret = args
        .match_secret_file
        .as_ref()
        .map(|path| read("--match-secret-file", SecretRole::Match, path))
        .transpose()?;
    security::check_secrets(
        current.as_deref(),
        previous.as_deref(),
        match_secret.as_deref(),
    )
    .map_err(|refusal| refusal.to_string())?;
    Ok(Secrets {
        current,
        previous,
        source,
        match_secret,
    })
}

/// Where the admin token comes from (the token itself in the variable).
const ADMIN_TOKEN_VARIABLE: &str = "PARTYLINE_ADMIN_TOKEN";

/// The admin token, from --admin-token-file or `PARTYLINE_ADMIN_TOKEN`
/// (`None` when neither is given), or a sentence saying what is wrong.
fn admin_token(args: &ServeArgs) -> Result<Option<AdminToken>, String> {
    let from_env = match std::env::var(ADMIN_TOKEN_VARIABLE) {
        Ok(token) if token.is_empty() => {
            return Err(format!("{ADMIN_TOKEN_VARIABLE} must not be empty"))
        }
        Ok(token) => Some(token),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(format!("{ADMIN_TOKEN_VARIABLE} is not valid UTF-8"))
        }
    };
    match (&args.admin_token_file, from_env) {
        (Some(_), Some(_)) => Err(format!(
            "the admin token is given twice, by --admin-token-file and by \
             {ADMIN_TOKEN_VARIABLE}: keep one"
        )),
        (Some(path), None) => {
            let token = security::read_secret_file(path)
                .map_err(|error| format!("--admin-token-file: {error}"))?;
            String::from_utf8(token)
                .map(|token| Some(AdminToken::new(token)))
                .map_err(|_| format!("--admin-token-file: {} is not UTF-8 text", path.display()))
        }
        (None, token) => Ok(token.map(AdminToken::new)),
    }
}

fn serve(args: ServeArgs, secret_in_argv: bool) -> ExitCode {
    // Usage errors, like a missing flag: said before anything is logged.
    if args.admin.is_some()
        && args.admin_token_file.is_none()
        && std::env::var_os(ADMIN_TOKEN_VARIABLE).is_none()
    {
        usage_error(
            ErrorKind::MissingRequiredArgument,
            format!(
                "--admin needs a bearer token: pass --admin-token-file PATH (a file only \
                 the server's user can read), or set {ADMIN_TOKEN_VARIABLE}"
            ),
        );
    }
    if args.idle_timeout.is_zero() || args.idle_timeout <= args.keep_alive {
        usage_error(
            ErrorKind::ArgumentConflict,
            format!(
                "--idle-timeout ({}s) must be above 0 and longer than --keep-alive ({}s)",
                args.idle_timeout.as_secs_f64(),
                args.keep_alive.as_secs_f64()
            ),
        );
    }
    if let Some(secret) = &args.token_secret {
        if let Err(short) = security::check_secret_length(SecretRole::Token, secret.as_bytes()) {
            // The message says the length, never the secret (clap's own
            // would quote the value, from the environment too).
            usage_error(
                ErrorKind::ValueValidation,
                format!(
                    "--token-secret (or PARTYLINE_TOKEN_SECRET): {short} Then pass \
                     --token-secret-file secret."
                ),
            );
        }
    }
    partyline::init_logging(&args.log_level, args.log_format);

    let secrets = match read_secrets(&args, secret_in_argv) {
        Ok(secrets) => secrets,
        Err(message) => {
            tracing::error!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let admin_token = match args.admin.map(|_| admin_token(&args)).transpose() {
        Ok(token) => token.flatten(),
        Err(message) => {
            tracing::error!("{message}");
            return ExitCode::FAILURE;
        }
    };
    // Before anything is written or bound: a refused config does nothing.
    let exposure = Exposure {
        listen: args.listen,
        metrics: args.metrics,
        secret: secrets.source,
        previous_secret: secrets.previous.is_some(),
        allow_dev_identities: args.allow_dev_identities,
        allow_public_metrics: args.allow_public_metrics,
        admin: args.admin,
        allow_public_admin: args.allow_public_admin,
        dev_certificate: args.cert.is_none(),
    };
    match security::check(&exposure) {
        Ok(warnings) => {
            for warning in warnings {
                tracing::warn!("{warning}");
            }
        }
        Err(refusal) => {
            tracing::error!("{refusal}");
            return ExitCode::FAILURE;
        }
    }

    let dev_certificate = args.cert.is_none();
    let (cert, key) = match (args.cert, args.key) {
        (Some(cert), Some(key)) => (cert, key),
        _ => match ensure_dev_cert_for(&args.cert_dir, &args.cert_names) {
            Ok((cert, key, created)) => {
                if created {
                    let names = dev_cert_names(&args.cert_names).join(", ");
                    tracing::info!(cert = %cert.display(), %names, "wrote a new development certificate");
                } else {
                    tracing::info!(cert = %cert.display(), "using the development certificate");
                }
                (cert, key)
            }
            Err(error) => {
                tracing::error!(%error, "no certificate");
                return ExitCode::FAILURE;
            }
        },
    };
    let tls = match load_identity(&cert, &key) {
        Ok(tls) => tls,
        Err(error) => {
            tracing::error!(%error, "could not load the certificate");
            return ExitCode::FAILURE;
        }
    };
    let mut config = ServerConfig::new(args.listen, tls);
    config.drain_timeout = args.drain_timeout;
    config.invite_ttl = args.invite_ttl;
    config.matchmaker_interval = args.matchmaker_interval;
    config.matchmaker_relax_after = args.matchmaker_relax_after;
    config.match_token_ttl = args.match_token_ttl;
    config.keep_alive = args.keep_alive;
    config.idle_timeout = args.idle_timeout;
    config.grace = args.grace;
    config.leader_grace = args.leader_grace;
    config.replay_events = args.replay_events;
    config.replay_bytes = args.replay_bytes;
    config.socket_buffer = args.socket_buffer;
    config.max_sessions = args.max_sessions;
    config.max_handshakes = args.max_handshakes;
    config.retry_above = args.retry_above;
    config.command_rate = args.command_rate.max(0.0);
    config.max_parties_per_session = args.max_parties_per_session as usize;
    config.invites_per_minute = args.invites_per_minute;
    config.join_code_attempts_per_minute = args.join_code_attempts_per_minute;
    config.max_follows = args.max_follows as usize;
    config.tickets_per_minute = args.tickets_per_minute;
    config.max_sessions_per_user = args.max_sessions_per_user;
    config.max_sessions_per_address = args.max_sessions_per_address;
    config.per_user = PlayerBudgets {
        join_code_failures: args.join_code_failures_per_user,
        ..args.user_rates.unwrap_or(PlayerBudgets::PER_USER)
    };
    config.per_address = PlayerBudgets {
        join_code_failures: args.join_code_failures_per_address,
        ..args.address_rates.unwrap_or(PlayerBudgets::PER_ADDRESS)
    };
    config.limit_loopback = args.limit_loopback;
    config.match_secret = secrets.match_secret;
    if let (Some(url), Some(node)) = (&args.cluster, &args.node) {
        let mut cluster = partyline::server::ClusterConfig::new(url, node);
        // Three heartbeats per timeout: one lost beat is no loss.
        cluster.node_timeout = args.node_timeout;
        cluster.heartbeat = args.node_timeout / 3;
        config.cluster = Some(cluster);
    }
    match reset_key(args.reset_key_file.as_deref()) {
        Ok(key) => config.reset_key = key,
        Err(error) => {
            tracing::error!(%error, "--reset-key-file");
            return ExitCode::FAILURE;
        }
    }
    if config.cluster.is_some() && config.reset_key.is_none() {
        tracing::warn!(
            "no --reset-key-file: when a node dies, its clients notice only at their idle \
             timeout, not when a live node gets their packets (docs/CLUSTER.md)"
        );
    }
    config.metrics = args.metrics;
    config.admin = args.admin;
    config.admin_token = admin_token;
    config.data_rate = args.data_rate.max(0.0);
    config.ack_frequency = (args.ack_threshold > 0).then(|| AckFrequency {
        threshold: args.ack_threshold,
        max_delay: Duration::from_millis(args.max_ack_delay),
    });
    config.coalesce = Duration::from_micros(args.coalesce_us);
    config.join_request_ttl = args.join_request_ttl;
    config.max_datagram_data = args.max_datagram_data;
    config.shards = args.shards;
    if args.webtransport {
        let browser_certificates = match dev_certificate {
            // Browsers take no certificate without a CA but by its hash,
            // and only an ECDSA P-256 one valid at most 14 days.
            true => match BrowserCertificates::new(
                dev_cert_names(&args.cert_names),
                std::time::SystemTime::now(),
            ) {
                Ok(certificates) => {
                    let [sha256, next] = certificates.hashes_hex();
                    tracing::info!(%sha256, %next, "browser dev certificate (serverCertificateHashes: sha-256)");
                    Some(std::sync::Arc::new(certificates))
                }
                Err(error) => {
                    tracing::error!(%error, "no browser certificate");
                    return ExitCode::FAILURE;
                }
            },
            false => None,
        };
        config.webtransport = Some(partyline::server::WebTransportConfig {
            allowed_origins: args.allowed_origins.clone(),
            browser_certificates,
            dev_http: args.dev_http.or(args
                .dev_page
                .then(|| SocketAddr::from(([127, 0, 0, 1], 7351)))),
            dev_page: args.dev_page,
        });
    }
    if let Some(secret) = secrets.current {
        config.auth = AuthMode::Token {
            secret,
            previous: secrets.previous,
        };
    }
    let auth = match config.auth {
        AuthMode::Dev => "dev identities",
        AuthMode::Token { .. } => "signed tokens",
    };

    let webtransport = config.webtransport.is_some();
    let webtransport_page = config.webtransport.as_ref().is_some_and(|web| web.dev_page);
    let Some(runtime) = partyline::runtime_with(args.threads) else {
        return ExitCode::FAILURE;
    };
    runtime.block_on(async move {
        let server = match Server::bind(config) {
            Ok(server) => server,
            Err(error) => {
                tracing::error!(%error, "could not start");
                return ExitCode::FAILURE;
            }
        };
        match server.local_addr() {
            Ok(addr) if webtransport => tracing::info!(
                %addr, auth,
                "partyline listening (QUIC, ALPN partyline/1; browsers: WebTransport at https://{addr}{})",
                partyline::server::WEBTRANSPORT_PATH
            ),
            Ok(addr) => tracing::info!(%addr, auth, "partyline listening (QUIC, ALPN partyline/1)"),
            Err(error) => tracing::warn!(%error, "listening on an unknown address"),
        }
        if let Some(dev_http) = server.dev_http_addr() {
            tracing::info!(%dev_http, "serving the browser certificate hashes over HTTP at /certificate-hashes");
            if webtransport_page {
                tracing::info!("the browser demo page: http://{dev_http}/");
            }
        }
        if let Some(metrics) = server.metrics_addr() {
            tracing::info!(%metrics, "serving Prometheus metrics over HTTP");
        }
        if let Some(admin) = server.admin_addr() {
            tracing::info!(%admin, "serving the admin API over HTTP");
        }
        if let Err(error) = server.join_cluster().await {
            tracing::error!(%error, "could not start");
            return ExitCode::FAILURE;
        }
        server.run_until(shutdown_signal()).await;
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}

/// Ctrl-C or SIGTERM (what service managers and orchestrators send).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C received"),
                    _ = terminate.recv() => tracing::info!("SIGTERM received"),
                }
                return;
            }
            Err(error) => tracing::warn!(%error, "cannot listen for SIGTERM; Ctrl-C only"),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("Ctrl-C received");
}
