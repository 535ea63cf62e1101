//! `partyline-loadtest`: drives a partyline server with many client
//! sessions and reports latency, delivery, throughput and cost; with
//! `--bare-reference`, runs the same load through a bare quinn relay (the
//! hidden `bare-relay` subcommand) to show what the transport alone costs.

#![deny(clippy::unwrap_used, clippy::expect_used)]

use clap::{Args, Parser, Subcommand};
use partyline::certs::{ensure_dev_cert, load_identity};
use partyline::server::ServerConfig;
use partyline_client::AckFrequency;
use partyline_loadtest::cluster::{ClusterProbe, Named};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "partyline-loadtest",
    version,
    about = "Drive a partyline server with many client sessions and report latency, delivery, throughput and cost",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    load: LoadtestArgs,
}

#[derive(Subcommand)]
enum Command {
    /// A bare quinn datagram relay (no party logic): the transport reference
    /// `--bare-reference` measures against.
    #[command(hide = true)]
    BareRelay(BareRelayArgs),
    /// A long run of steady parties, churn, resumes and flooders against a
    /// server started here, with its RSS and gauges sampled (see
    /// scripts/soak.sh and BENCHMARKS.md, "Soak"). Exits 1 unless RSS at
    /// the end is within 10% of RSS after the warm-up and the server's
    /// session, party, listing, ticket and join-code gauges read zero once
    /// everyone has left.
    Soak(SoakArgs),
}

#[derive(Args)]
struct SoakArgs {
    /// The `partyline` binary to start. Default: the one beside this executable.
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// An argument for the `partyline serve` started here, e.g.
    /// `--server-arg=--grace=15`. Repeatable. Its --idle-timeout and
    /// --grace are read too, to time resumes and the final check.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// Seconds of load, warm-up included.
    #[arg(long, default_value_t = 1800.0, value_parser = positive, allow_negative_numbers = true)]
    duration: f64,
    /// Seconds of warm-up, after which RSS is the reference. Default: 120,
    /// or a fifth of a shorter --duration below 600 s.
    #[arg(long, value_parser = partyline::parse_non_negative, allow_negative_numbers = true)]
    warmup: Option<f64>,
    /// Seconds whose samples' median is RSS after the warm-up (the window
    /// after it) and at the end (the last window). Default: 60, or a fifth
    /// of a --duration below 300 s.
    #[arg(long, value_parser = positive, allow_negative_numbers = true)]
    rss_window: Option<f64>,
    /// Seconds between samples. Default: 10, or a third of a shorter --rss-window.
    #[arg(long, value_parser = positive, allow_negative_numbers = true)]
    sample_interval: Option<f64>,
    /// Steady parties.
    #[arg(long, default_value_t = 50)]
    parties: usize,
    #[arg(long, default_value_t = 4, value_parser = party_size, allow_negative_numbers = true)]
    party_size: usize,
    /// Datagrams per steady member per second.
    #[arg(long, default_value_t = 10.0, value_parser = positive, allow_negative_numbers = true)]
    rate: f64,
    /// Seconds between a steady member's reliable messages.
    #[arg(long, default_value_t = 5.0, value_parser = positive, allow_negative_numbers = true)]
    reliable_every: f64,
    /// Churn pairs (two sessions each) started per second.
    #[arg(long, default_value_t = 1.5, value_parser = partyline::parse_non_negative, allow_negative_numbers = true)]
    churn_rate: f64,
    /// Longest stay of a churn pair, seconds.
    #[arg(long, default_value_t = 8.0, value_parser = positive, allow_negative_numbers = true)]
    churn_hold_max: f64,
    /// Sessions that lose their connection and resume (each with a partner).
    #[arg(long, default_value_t = 8)]
    resumers: usize,
    /// Seconds between a resumer's losses, on average.
    #[arg(long, default_value_t = 30.0, value_parser = positive, allow_negative_numbers = true)]
    resume_every: f64,
    /// Longest time away before resuming, seconds. Default: 20, or 3 s
    /// short of the server's idle timeout plus grace window.
    #[arg(long, value_parser = positive, allow_negative_numbers = true)]
    resume_delay_max: Option<f64>,
    /// Seconds between flooders (datagram, command and garbage in turn; 0: none).
    #[arg(long, default_value_t = 60.0, value_parser = partyline::parse_non_negative, allow_negative_numbers = true)]
    flood_every: f64,
    /// Append each sample and the summary as JSON lines to this file.
    #[arg(long)]
    samples: Option<PathBuf>,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// No line per sample on stderr.
    #[arg(long)]
    quiet: bool,
    /// Generator runtime threads (0: one per core).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Seed of the run's random choices.
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
}

#[derive(Args)]
struct LoadtestArgs {
    /// Server to drive. Without it, the load generator starts `partyline
    /// serve` itself (and so can measure its CPU and memory).
    #[arg(long, conflicts_with = "servers")]
    server: Option<SocketAddr>,
    /// Nodes of one cluster to drive, comma-separated: member j of party p
    /// connects to node (p + j) % n, so every node holds members of every
    /// party and the parties' leaders (their homes) rotate over the nodes.
    /// One address is the same as --server.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    servers: Vec<SocketAddr>,
    /// The `partyline` binary to start when --server is not given. Default:
    /// the one beside this executable (cargo builds both into one folder).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Certificate to trust for --server.
    #[arg(long, default_value = "certs/cert.pem")]
    cert: PathBuf,
    /// PID of the --server process, to report its CPU and memory, as
    /// `PID` or `NAME=PID`. Repeatable: the first is the report's `server`;
    /// with more, the report's `cluster` part has each one's CPU and the
    /// total per delivered message.
    #[arg(long, value_parser = named_pid)]
    server_pid: Vec<Named<u32>>,
    /// Another process whose CPU counts (e.g. `nats=PID`), reported with
    /// the servers' in the `cluster` part and added to the total. Repeatable.
    #[arg(long, value_parser = named_pid)]
    extra_pid: Vec<Named<u32>>,
    /// A node's metrics address (its --metrics), `ADDR` or `NAME=ADDR`, to
    /// report its cluster counters (messages and bytes published to NATS)
    /// and QUIC counters over the window. Repeatable.
    #[arg(long, value_parser = named_addr)]
    node_metrics: Vec<Named<SocketAddr>>,
    /// The NATS server's monitoring address (`nats-server -m PORT`), to
    /// report its messages and bytes per second over the window (/varz).
    #[arg(long)]
    nats_monitor: Option<SocketAddr>,
    /// The --server process's metrics address (its --metrics), to report
    /// its QUIC counters: packets lost, congestion events.
    #[arg(long)]
    server_metrics: Option<SocketAddr>,
    /// Milliseconds between reads of the server's QUIC counters inside the
    /// window (0: only at its edges).
    #[arg(long, default_value_t = 1000)]
    server_metrics_interval_ms: u64,
    #[arg(long, default_value_t = 100)]
    parties: usize,
    /// Members per party, leader included.
    #[arg(long, default_value_t = 4, value_parser = party_size, allow_negative_numbers = true)]
    party_size: usize,
    /// Messages per member per second (0: sessions stay quiet).
    #[arg(long, default_value_t = 20.0, value_parser = partyline::parse_non_negative, allow_negative_numbers = true)]
    rate: f64,
    /// Payload bytes per message (at least 16: send time and sequence).
    #[arg(long, default_value_t = 64, value_parser = payload_size, allow_negative_numbers = true)]
    payload: usize,
    /// Seconds of measured data, after the warm-up.
    #[arg(long, default_value_t = 20.0, value_parser = positive, allow_negative_numbers = true)]
    duration: f64,
    /// Seconds of sending before the measured window (not measured).
    #[arg(long, default_value_t = 2.0, value_parser = partyline::parse_non_negative, allow_negative_numbers = true)]
    warmup: f64,
    /// Send party data on the reliable stream instead of as datagrams.
    #[arg(long)]
    reliable: bool,
    /// New sessions per second while connecting.
    #[arg(long, default_value_t = 500.0, value_parser = positive, allow_negative_numbers = true)]
    connect_rate: f64,
    /// Connect this many sessions that join no party and stay idle (memory per session).
    #[arg(long, default_value_t = 0)]
    idle_sessions: usize,
    /// Client endpoints (UDP sockets) to share the sessions; default one per core.
    #[arg(long)]
    endpoints: Option<usize>,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Write the latency distribution as an SVG plot.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Also run the same load through a bare quinn relay and report the CPU ratio.
    #[arg(long)]
    bare_reference: bool,
    /// Generator runtime threads (1: single-threaded, 0: one per core).
    /// Default 1: on a machine shared with the server, a generator held to
    /// one core leaves the server the other (see BENCHMARKS.md).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Worker threads of the server the generator starts itself (and of the
    /// bare reference relay). Default 1, for the same reason.
    #[arg(long, default_value_t = 1)]
    server_threads: usize,
    /// Ask the server to acknowledge every N packets (0: QUIC's default).
    #[arg(long, default_value_t = 0)]
    ack_threshold: u32,
    /// The sessions' QUIC keep-alive interval in milliseconds (default:
    /// the SDK's, 7000). With the server's `--keep-alive`, what an idle
    /// session costs in packets.
    #[arg(long)]
    keep_alive_ms: Option<u64>,
    /// The sessions' QUIC idle timeout in milliseconds (default: the
    /// SDK's). QUIC uses the shorter of the two sides' timeouts.
    #[arg(long)]
    idle_timeout_ms: Option<u64>,
    /// ...or after this many milliseconds.
    #[arg(long, default_value_t = 50)]
    max_ack_delay: u64,
    /// Put the server (and the bare relay) on CPU 0 and this generator on
    /// the last CPU, so neither preempts the other (`taskset -c 0` for the
    /// child; needs util-linux and at least 2 CPUs).
    #[arg(long)]
    pin: bool,
    /// An argument for the `partyline serve` started here, e.g.
    /// `--server-arg=--coalesce-us=250`. Repeatable.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// The server's token secret, to mint a token per session (for a server
    /// in token mode; it refuses dev identities). The one started here gets
    /// it too. Prefer --token-secret-file: argv is visible in `ps`.
    #[arg(long, conflicts_with = "token_secret_file")]
    token_secret: Option<String>,
    /// A file holding the token secret (as `partyline serve --token-secret-file`).
    #[arg(long)]
    token_secret_file: Option<PathBuf>,
}

fn named_pid(text: &str) -> Result<Named<u32>, String> {
    partyline_loadtest::cluster::parse_named(text, "")
}

fn named_addr(text: &str) -> Result<Named<SocketAddr>, String> {
    partyline_loadtest::cluster::parse_named(text, "")
}

/// Names the unnamed: `PREFIX` and its place in the list.
fn name_unnamed<T>(list: Vec<Named<T>>, prefix: &str) -> Vec<Named<T>> {
    list.into_iter()
        .enumerate()
        .map(|(i, named)| Named {
            name: if named.name.is_empty() {
                format!("{prefix}{i}")
            } else {
                named.name
            },
            value: named.value,
        })
        .collect()
}

/// A finite number above 0.
fn positive(text: &str) -> Result<f64, String> {
    match partyline::parse_non_negative(text)? {
        value if value > 0.0 => Ok(value),
        value => Err(format!("must be above 0, got {value}")),
    }
}

fn party_size(text: &str) -> Result<usize, String> {
    match text.trim().parse::<i64>() {
        Ok(size @ 1..=256) => Ok(size as usize),
        Ok(size) => Err(format!("must be 1 to 256, got {size}")),
        Err(error) => Err(format!("not a whole number: {error}")),
    }
}

fn payload_size(text: &str) -> Result<usize, String> {
    let least = partyline_loadtest::MIN_PAYLOAD;
    match text.trim().parse::<i64>() {
        Ok(bytes) if bytes >= least as i64 => Ok(bytes as usize),
        Ok(bytes) => Err(format!("must be at least {least} bytes (send time, sender and sequence ride in it), got {bytes}")),
        Err(error) => Err(format!("not a whole number: {error}")),
    }
}

#[derive(Args)]
struct BareRelayArgs {
    #[arg(long, default_value = "127.0.0.1:7351")]
    listen: SocketAddr,
    #[arg(long, default_value = "certs")]
    cert_dir: PathBuf,
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Connections per group (1: echo to the sender).
    #[arg(long, default_value_t = 4)]
    group_size: usize,
    /// Runtime worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::BareRelay(args)) => bare_relay(args),
        Some(Command::Soak(args)) => soak(args),
        None => loadtest(cli.load),
    }
}

/// The value of a `--metrics` among the server's arguments, in either the
/// `--metrics=ADDR` or the `--metrics ADDR` form.
fn metrics_arg(server_args: &[String]) -> Option<&str> {
    server_arg(server_args, "--metrics")
}

/// The value of `flag` among the server's arguments, in either the
/// `--flag=VALUE` or the `--flag VALUE` form.
fn server_arg<'a>(server_args: &'a [String], flag: &str) -> Option<&'a str> {
    server_args
        .iter()
        .enumerate()
        .find_map(|(i, arg)| match arg.strip_prefix(flag) {
            Some(rest) if rest.starts_with('=') => Some(&rest[1..]),
            Some("") => server_args.get(i + 1).map(String::as_str),
            _ => None,
        })
}

/// CPUs for (server, generator) under --pin: the first and the last.
fn pin_cpus(pin: bool) -> Result<Option<(usize, usize)>, String> {
    if !pin {
        return Ok(None);
    }
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let (Some(first), Some(last)) = (cores.first(), cores.last()) else {
        return Err("--pin: cannot read this process's CPUs".into());
    };
    if first.id == last.id {
        return Err("--pin needs at least 2 CPUs".into());
    }
    // Before the runtime starts: every thread it makes inherits this.
    if !core_affinity::set_for_current(*last) {
        return Err(format!(
            "--pin: cannot pin the generator to CPU {}",
            last.id
        ));
    }
    Ok(Some((first.id, last.id)))
}

fn loadtest(args: LoadtestArgs) -> ExitCode {
    use partyline_loadtest::{bare, run, scrape, spawn, LoadtestConfig, ProgressMode};
    use std::io::IsTerminal;
    let seconds = |value: f64, flag: &str| {
        Duration::try_from_secs_f64(value)
            .map_err(|_| format!("{flag} must be a number of seconds >= 0"))
    };
    let (duration, warmup) = match (
        seconds(args.duration, "--duration"),
        seconds(args.warmup, "--warmup"),
    ) {
        (Ok(duration), Ok(warmup)) => (duration, warmup),
        (Err(error), _) | (_, Err(error)) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Everything about the run is checked before a server is started.
    if args.parties == 0 && args.idle_sessions == 0 {
        eprintln!("error: no sessions: give --parties and --party-size, or --idle-sessions");
        return ExitCode::from(2);
    }
    let token_secret = match (&args.token_secret, &args.token_secret_file) {
        (Some(secret), _) => Some(secret.as_bytes().to_vec()),
        (None, Some(path)) => match partyline::security::read_secret_file(path) {
            Ok(secret) => Some(secret),
            Err(error) => {
                eprintln!("error: --token-secret-file: {error}");
                return ExitCode::from(2);
            }
        },
        (None, None) => None,
    };
    let pinned = match pin_cpus(args.pin) {
        Ok(pinned) => pinned,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let server_cpu = pinned.map(|(server, _)| server);
    let Some(runtime) = partyline::runtime_with(args.threads) else {
        return ExitCode::FAILURE;
    };
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let generator_threads = if args.threads == 0 {
        cores
    } else {
        args.threads
    };
    let server_threads = if args.server_threads == 0 {
        cores
    } else {
        args.server_threads
    };
    let progress = if std::io::stderr().is_terminal() {
        ProgressMode::Bar
    } else {
        ProgressMode::Lines
    };
    let endpoints = args.endpoints.unwrap_or(cores);
    let server_pids = name_unnamed(args.server_pid.clone(), "server");
    let extra_pids = name_unnamed(args.extra_pid.clone(), "extra");
    let node_metrics = name_unnamed(args.node_metrics.clone(), "node");
    let given_server = args.server.or(args.servers.first().copied());
    let first_pid = server_pids.first().map(|pid| pid.value);
    runtime.block_on(async move {
        // The server under test: given, or started here.
        let (spawned, server, certs, server_pid, server_metrics) = match given_server {
            Some(server) => match partyline_client::load_certificates(&args.cert) {
                Ok(certs) => (None, server, certs, first_pid, args.server_metrics),
                Err(error) => {
                    eprintln!("error: {error}");
                    return ExitCode::FAILURE;
                }
            },
            None => {
                let mut serve_args = vec!["--threads".to_string(), args.server_threads.to_string()];
                // The server started here shares the secret the sessions' tokens use.
                match (&args.token_secret_file, &args.token_secret) {
                    (Some(path), _) => {
                        serve_args.push("--token-secret-file".into());
                        serve_args.push(path.display().to_string());
                    }
                    (None, Some(secret)) => {
                        serve_args.push("--token-secret".into());
                        serve_args.push(secret.clone());
                    }
                    (None, None) => {}
                }
                serve_args.extend(args.server_args.iter().cloned());
                // The server's QUIC counters come from its metrics endpoint:
                // open one unless the caller chose its own.
                let metrics = match metrics_arg(&args.server_args) {
                    Some(given) => given.parse().ok(),
                    None => {
                        let free = scrape::free_loopback_addr();
                        if let Some(addr) = free {
                            serve_args.extend(["--metrics".to_string(), addr.to_string()]);
                        }
                        free
                    }
                };
                match spawn::spawn(
                    &spawn::server_binary(args.server_bin.as_deref()),
                    "serve",
                    &serve_args,
                    server_cpu,
                ) {
                    Ok(spawned) => {
                        let (addr, certs, pid) =
                            (spawned.addr, spawned.certs.clone(), spawned.pid());
                        eprintln!("started partyline serve on {addr} (pid {pid})");
                        (Some(spawned), addr, certs, Some(pid), metrics)
                    }
                    Err(error) => {
                        eprintln!("error: {error}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        };
        // A cluster run: every process given, each node's counters, NATS.
        let mut probe = ClusterProbe::default();
        if args.servers.len() > 1
            || server_pids.len() > 1
            || !extra_pids.is_empty()
            || !node_metrics.is_empty()
            || args.nats_monitor.is_some()
        {
            probe.processes = match (&spawned, server_pid) {
                (Some(_), Some(pid)) => vec![Named {
                    name: "server0".to_string(),
                    value: pid,
                }],
                _ => server_pids.clone(),
            };
            probe.servers = probe.processes.len();
            probe.processes.extend(extra_pids.iter().cloned());
            probe.node_metrics = node_metrics.clone();
            probe.nats_monitor = args.nats_monitor;
        }
        let config = LoadtestConfig {
            server,
            servers: if spawned.is_some() {
                Vec::new()
            } else {
                args.servers.clone()
            },
            cluster: probe,
            certs,
            parties: args.parties,
            party_size: args.party_size,
            rate_hz: args.rate,
            payload: args.payload,
            warmup,
            duration,
            reliable: args.reliable,
            connect_rate: args.connect_rate,
            idle_sessions: args.idle_sessions,
            server_pid,
            server_metrics,
            server_metrics_interval: Duration::from_millis(args.server_metrics_interval_ms),
            server_threads,
            generator_threads,
            endpoints,
            progress,
            ack_frequency: (args.ack_threshold > 0).then(|| AckFrequency {
                threshold: args.ack_threshold,
                max_delay: Duration::from_millis(args.max_ack_delay),
            }),
            token_secret,
            keep_alive: args.keep_alive_ms.map(Duration::from_millis),
            idle_timeout: args.idle_timeout_ms.map(Duration::from_millis),
        };
        let mut report = match run(config).await {
            Ok(report) => report,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        };
        report.server_args = args.server_args.clone();
        report.pinned = pinned.is_some();
        drop(spawned);
        if args.bare_reference && args.idle_sessions == 0 {
            let relay_args = [
                "--group-size".to_string(),
                args.party_size.to_string(),
                "--threads".to_string(),
                args.server_threads.to_string(),
            ];
            match spawn::spawn(&spawn::own_binary(), "bare-relay", &relay_args, server_cpu) {
                Ok(relay) => {
                    eprintln!(
                        "running the same load through a bare quinn relay (pid {})",
                        relay.pid()
                    );
                    let load = bare::BareLoad {
                        server: relay.addr,
                        certs: relay.certs.clone(),
                        sessions: report.load.sessions,
                        group_size: args.party_size,
                        rate_hz: args.rate,
                        payload: args.payload,
                        warmup,
                        duration,
                        endpoints,
                        server_pid: Some(relay.pid()),
                        server_threads,
                        generator_threads,
                    };
                    match bare::measure(load).await {
                        Ok(figures) => {
                            report.transport_ratio = match (
                                report.server_figures.cpu_per_delivered_us,
                                figures.cpu_per_delivered_us,
                            ) {
                                (Some(ours), Some(bare)) if bare > 0.0 => Some(ours / bare),
                                _ => None,
                            };
                            report.bare = Some(figures);
                        }
                        Err(error) => eprintln!("warning: bare reference failed: {error}"),
                    }
                }
                Err(error) => eprintln!("warning: could not start the bare relay: {error}"),
            }
        }
        if let Some(path) = &args.plot {
            if let Err(error) = std::fs::write(path, report.to_svg()) {
                eprintln!("error: writing {}: {error}", path.display());
                return ExitCode::FAILURE;
            }
        }
        if args.json {
            println!("{}", report.to_json());
        } else {
            print!("{}", report.to_text());
        }
        ExitCode::SUCCESS
    })
}

/// A server flag in seconds, or the server's default when not given.
fn server_seconds(server_args: &[String], flag: &str, default: f64) -> Result<Duration, String> {
    let seconds = match server_arg(server_args, flag) {
        Some(text) => partyline::parse_non_negative(text).map_err(|e| format!("{flag}: {e}"))?,
        None => default,
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{flag}: {e}"))
}

fn soak(args: SoakArgs) -> ExitCode {
    use partyline_loadtest::soak::{run, SoakConfig};
    use partyline_loadtest::{scrape, spawn};
    let secs = Duration::from_secs_f64;
    let duration = args.duration;
    let warmup = args.warmup.unwrap_or(if duration < 600.0 {
        duration / 5.0
    } else {
        120.0
    });
    let rss_window = args.rss_window.unwrap_or(if duration < 300.0 {
        duration / 5.0
    } else {
        60.0
    });
    let sample_interval = args.sample_interval.unwrap_or((rss_window / 3.0).min(10.0));
    // The server's defaults, as `partyline serve --help` gives them.
    let (idle_timeout, grace) = match (
        server_seconds(&args.server_args, "--idle-timeout", 10.0),
        server_seconds(&args.server_args, "--grace", 15.0),
    ) {
        (Ok(idle_timeout), Ok(grace)) => (idle_timeout, grace),
        (Err(error), _) | (_, Err(error)) => {
            eprintln!("error: --server-arg {error}");
            return ExitCode::from(2);
        }
    };
    let resume_delay_max = match args.resume_delay_max {
        Some(seconds) => secs(seconds),
        None => (idle_timeout + grace)
            .saturating_sub(Duration::from_secs(3))
            .min(Duration::from_secs(20)),
    };
    let Some(metrics) = (match metrics_arg(&args.server_args) {
        Some(given) => given.parse().ok(),
        None => scrape::free_loopback_addr(),
    }) else {
        eprintln!("error: no address for the server's metrics");
        return ExitCode::FAILURE;
    };
    // Filled in once the server runs; everything else is checked before.
    let unstarted = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut config = SoakConfig::new(unstarted, Vec::new(), metrics);
    config.server_idle_timeout = idle_timeout;
    config.server_grace = grace;
    config.duration = secs(duration);
    config.warmup = secs(warmup);
    config.rss_window = secs(rss_window);
    config.sample_interval = secs(sample_interval);
    config.parties = args.parties;
    config.party_size = args.party_size;
    config.rate_hz = args.rate;
    config.reliable_every = secs(args.reliable_every);
    config.churn_per_s = args.churn_rate;
    config.churn_hold_max = secs(args.churn_hold_max);
    config.resumers = args.resumers;
    config.resume_every = secs(args.resume_every);
    config.resume_delay_max = resume_delay_max;
    config.flood_every = secs(args.flood_every);
    config.endpoints = std::thread::available_parallelism().map_or(2, |n| n.get());
    config.verbose = !args.quiet;
    config.seed = args.seed;
    if let Err(error) = config.validate() {
        eprintln!("error: {error}");
        return ExitCode::from(2);
    }
    let mut samples = match &args.samples {
        None => None,
        Some(path) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(file) => {
                Some(Box::new(std::io::BufWriter::new(file)) as Box<dyn std::io::Write + Send>)
            }
            Err(error) => {
                eprintln!("error: {}: {error}", path.display());
                return ExitCode::from(2);
            }
        },
    };
    let Some(runtime) = partyline::runtime_with(args.threads) else {
        return ExitCode::FAILURE;
    };
    runtime.block_on(async move {
        let mut serve_args = args.server_args.clone();
        if metrics_arg(&args.server_args).is_none() {
            serve_args.extend(["--metrics".to_string(), metrics.to_string()]);
        }
        let spawned = match spawn::spawn(
            &spawn::server_binary(args.server_bin.as_deref()),
            "serve",
            &serve_args,
            None,
        ) {
            Ok(spawned) => spawned,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        };
        eprintln!(
            "started partyline serve on {} (pid {}), metrics on {metrics}",
            spawned.addr,
            spawned.pid()
        );
        config.server = spawned.addr;
        config.certs = spawned.certs.clone();
        config.server_pid = Some(spawned.pid());
        let report = match run(config, samples.take()).await {
            Ok(report) => report,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        };
        drop(spawned);
        if args.json {
            println!("{}", report.to_json());
        } else {
            print!("{}", report.to_text());
        }
        if report.pass {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}

fn bare_relay(args: BareRelayArgs) -> ExitCode {
    partyline::init_logging(&args.log_level, partyline::LogFormat::Text);
    let tls = match ensure_dev_cert(&args.cert_dir)
        .and_then(|(cert, key, _)| load_identity(&cert, &key))
    {
        Ok(tls) => tls,
        Err(error) => {
            tracing::error!(%error, "no certificate");
            return ExitCode::FAILURE;
        }
    };
    let Some(runtime) = partyline::runtime_with(args.threads) else {
        return ExitCode::FAILURE;
    };
    let config = ServerConfig::new(args.listen, tls);
    let served = runtime.block_on(async {
        let endpoint = partyline_loadtest::bare::bind_bare_relay(&config)?;
        partyline_loadtest::bare::serve_bare_relay(endpoint, args.group_size).await;
        Ok::<_, partyline::server::ServerError>(())
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "bare relay failed");
            ExitCode::FAILURE
        }
    }
}
