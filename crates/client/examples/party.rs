//! A minimal game client. Start a server (`cargo run --release -- serve`),
//! then in two more terminals:
//!
//! ```text
//! cargo run -p partyline-client --example party -- host
//! cargo run -p partyline-client --example party -- join <party-id>
//! ```
//!
//! Options: `--server HOST:PORT` (default 127.0.0.1:7350), `--cert PEM`
//! (default certs/cert.pem), `--user NAME` (a dev identity; default
//! player-<pid>), `--token TOKEN` (a signed identity instead of --user).

use partyline_client::{
    load_certificates, resolve_server, Client, ClientConfig, ClientError, Event, JoinOutcome,
    PartyId, PartySettings,
};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: party [--server HOST:PORT] [--cert PEM] [--user NAME | --token TOKEN] host | join <party-id>";

struct Options {
    server: String,
    cert: String,
    user: String,
    token: Option<String>,
    /// `host`, or `join <party-id>`.
    command: Vec<String>,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        server: "127.0.0.1:7350".into(),
        cert: "certs/cert.pem".into(),
        user: format!("player-{}", std::process::id()),
        token: None,
        command: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "--server" => options.server = value("--server")?,
            "--cert" => options.cert = value("--cert")?,
            "--user" => options.user = value("--user")?,
            "--token" => options.token = Some(value("--token")?),
            "--help" | "-h" => return Err(USAGE.into()),
            _ => options.command.push(arg),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let options = options()?;
    let certs = load_certificates(&options.cert).map_err(|e| {
        format!("{e}. Run `partyline serve` once to create the dev certificate, or pass --cert")
    })?;
    let addr = resolve_server(&options.server).map_err(|e| e.to_string())?;
    let mut config = match &options.token {
        Some(token) => ClientConfig::with_token(addr, certs, token),
        None => ClientConfig::dev(addr, certs, &options.user, &options.user),
    };
    // Name the server as it was given (a LAN address or host name the dev
    // certificate was made for with `serve --cert-name`).
    let host = options
        .server
        .rsplit_once(':')
        .map_or(options.server.as_str(), |(host, _)| host);
    config.server_name = host.trim_matches(|c| c == '[' || c == ']').to_string();
    let (client, mut events) = Client::connect(config).await.map_err(|e| e.to_string())?;
    let me = client.presence();
    println!(
        "connected to {addr} as {}, session {}",
        me.user_id, me.session_id
    );

    let party: PartyId = match options.command.first().map(String::as_str) {
        Some("join") => {
            let id = options.command.get(1).ok_or(USAGE)?;
            let id: PartyId = id
                .parse()
                .map_err(|_| format!("{id:?} is not a party id (copy it from the host)"))?;
            match client.join_party(id).await.map_err(|e| e.to_string())? {
                JoinOutcome::Joined(party) => println!(
                    "joined; members: {:?}",
                    party
                        .members
                        .iter()
                        .map(|m| &m.presence.username)
                        .collect::<Vec<_>>()
                ),
                JoinOutcome::Queued { .. } => println!("waiting for the leader to accept"),
            }
            id
        }
        Some("host") | None => {
            let party = client
                .create_party(PartySettings {
                    label: "example".into(),
                    ..PartySettings::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            println!("party created: {}", party.party_id);
            party.party_id
        }
        Some(other) => return Err(format!("unknown command {other:?}; {USAGE}")),
    };

    // A game loop: 10 ticks a second, sending state and draining events
    // without ever blocking on the network.
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for frame in 0u64..600 {
        tick.tick().await;
        if frame % 10 == 0 {
            let hello = format!("hello from {} at frame {frame}", me.username);
            match client.send_data(party, 1, hello.as_bytes()) {
                Ok(()) | Err(ClientError::Reconnecting) => {}
                Err(error) => return Err(error.to_string()),
            }
        }
        while let Some(event) = events.try_next() {
            match event {
                Event::Data(data) => println!(
                    "data op {} from {}: {}",
                    data.op_code,
                    data.sender.username,
                    String::from_utf8_lossy(&data.data)
                ),
                Event::MemberJoined { member, .. } => println!("{} joined", member.username),
                Event::MemberLeft { member, reason, .. } => {
                    println!("{} left ({reason:?})", member.username)
                }
                Event::Disconnected { reason } => {
                    println!("disconnected: {reason}");
                    return Ok(());
                }
                other => println!("{other:?}"),
            }
        }
    }
    client.leave_party(party).await.map_err(|e| e.to_string())?;
    client.close().await;
    Ok(())
}
