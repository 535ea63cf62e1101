//! `partyline client`: every SDK command by hand at a prompt, or as JSON
//! lines (`--json`) for scripts, bots and tests in other languages. Both
//! front ends share one command table (`commands`) and the Rust SDK.
//!
//! Exit codes: 0 after `quit`, Ctrl-D or end of input; 1 when the client
//! cannot connect or the session ends on its own; 2 for bad arguments.
//!
//! A crate of its own, client side only (the SDK, never the server): the
//! `partyline` binary takes it through its default `cli` feature, so a game
//! backend that embeds the server compiles no line editor.

#![warn(missing_docs)]
// Nothing a server or another player sends may panic the client.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod commands;
mod interactive;
mod json;
mod known;
mod line;
mod render;
mod shown;

use clap::Args;
use partyline_client::protocol::MAX_NAME_BYTES;
use partyline_client::{load_certificates, resolve_server, Client, ClientConfig};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The flags of `partyline client` and `partyline-cli`: where the server
/// is, what to trust, who you are, and which front end.
#[derive(Args, Debug)]
pub struct ClientArgs {
    /// The server's UDP address, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:7350", value_parser = host_and_port)]
    server: String,
    /// PEM certificate(s) to trust: the dev certificate `partyline serve`
    /// writes on first run, or a CA's.
    #[arg(long, default_value = "certs/cert.pem")]
    cert: PathBuf,
    /// The name the server's certificate must carry (default: the host of
    /// --server).
    #[arg(long)]
    server_name: Option<String>,
    /// Dev identity: your user id (default: $USER, else player-<pid>).
    #[arg(long, conflicts_with_all = ["token", "token_file"], value_parser = identity_name)]
    user: Option<String>,
    /// Dev identity: the name others see (default: the user id).
    #[arg(long, conflicts_with_all = ["token", "token_file"], value_parser = identity_name)]
    name: Option<String>,
    /// A signed identity token (from the game's backend or `partyline
    /// token`), for a server that requires them. Visible in `ps`: prefer
    /// --token-file.
    #[arg(long, conflicts_with = "token_file")]
    token: Option<String>,
    /// A file holding the token; surrounding whitespace is ignored.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// JSON lines on stdin and stdout instead of a prompt: for scripts,
    /// bots and tests (docs/CLIENT.md has the schema).
    #[arg(long)]
    json: bool,
}

/// `--server` must at least look like HOST:PORT (resolving waits for run).
fn host_and_port(text: &str) -> Result<String, String> {
    match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(text.to_string())
        }
        _ => Err(format!(
            "expected HOST:PORT (like 127.0.0.1:7350), got {text:?}"
        )),
    }
}

/// A user id or name the server would take (else it refuses the Hello).
fn identity_name(text: &str) -> Result<String, String> {
    validate_name("it", text).map(|()| text.to_string())
}

/// The server's rule for user ids and names (its `auth::validate_name`),
/// said again here so that the client needs no server code: 1 to
/// [`MAX_NAME_BYTES`] bytes, no control characters.
fn validate_name(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > MAX_NAME_BYTES {
        return Err(format!(
            "{what} must be 1 to {MAX_NAME_BYTES} bytes, got {}",
            value.len()
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{what} must not contain control characters"));
    }
    Ok(())
}

/// The user id when none is given: the login name if the server would take
/// it, else one made up.
fn default_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|user| validate_name("user id", user).is_ok())
        .unwrap_or_else(|| format!("player-{}", std::process::id()))
}

fn client_config(args: &ClientArgs) -> Result<ClientConfig, String> {
    let certs = load_certificates(&args.cert).map_err(|error| {
        format!("{error}. Run `partyline serve` once to create the dev certificate, or pass --cert")
    })?;
    let addr = resolve_server(&args.server).map_err(|error| error.to_string())?;
    let token = match (&args.token, &args.token_file) {
        (Some(token), _) => Some(token.trim().to_string()),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .map_err(|error| format!("cannot read --token-file {}: {error}", path.display()))?
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    };
    let mut config = match token {
        Some(token) => ClientConfig::with_token(addr, certs, &token),
        None => {
            let user = args.user.clone().unwrap_or_else(default_user);
            let name = args.name.clone().unwrap_or_else(|| user.clone());
            ClientConfig::dev(addr, certs, &user, &name)
        }
    };
    // The host as given: what the dev certificate names (localhost,
    // 127.0.0.1, ::1, and any `serve --cert-name`).
    let host = args
        .server
        .rsplit_once(':')
        .map_or(args.server.as_str(), |(host, _)| host);
    config.server_name = args
        .server_name
        .clone()
        .unwrap_or_else(|| host.trim_matches(|c| c == '[' || c == ']').to_string());
    Ok(config)
}

/// Connects as `args` say and runs the prompt (or the JSON lines) until
/// `quit`, Ctrl-D, end of input or the session's end; the exit code is the
/// module's (above).
pub fn run(args: ClientArgs) -> ExitCode {
    let config = match client_config(&args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    // One worker carries the SDK; the main thread runs the prompt (or waits
    // on the JSON loop).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: could not start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    if !args.json {
        // The answer can take up to the idle timeout (10 s) when nothing
        // listens there: say what is happening meanwhile.
        eprintln!("connecting to {}...", shown::shown(&args.server));
    }
    let code = match runtime.block_on(Client::connect(config)) {
        Err(error) => {
            // The error may quote the server (a refused hello, a close reason).
            eprintln!(
                "error: cannot connect to {}: {}",
                shown::shown(&args.server),
                shown::shown(&error.to_string())
            );
            ExitCode::FAILURE
        }
        Ok((client, events)) if args.json => runtime.block_on(json::run(client, events)),
        Ok((client, events)) => interactive::run(&runtime, client, events, &args.server),
    };
    // Stdin and the printer have threads of their own; nothing to wait for.
    runtime.shutdown_timeout(Duration::from_millis(200));
    code
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn server_must_look_like_host_and_port() {
        assert!(host_and_port("127.0.0.1:7350").is_ok());
        assert!(host_and_port("[::1]:7350").is_ok());
        assert!(host_and_port("game.example:1").is_ok());
        assert!(host_and_port("127.0.0.1").is_err());
        assert!(host_and_port(":7350").is_err());
        assert!(host_and_port("host:http").is_err());
    }
}
