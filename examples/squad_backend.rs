//! A game backend, embedding partyline, that forms a party for a matched
//! squad.
//!
//! The backend's own matchmaker (here: you, typing on stdin) names the
//! users of a squad; the backend seats a connected session of each in a new
//! closed party, the first as leader, and greets them with a server
//! message. Every player's client hears `PartyJoined` with the party.
//!
//! ```text
//! cargo run --release --example squad_backend
//! # in other terminals: partyline client --user ana / --user bob / --user cy
//! # then type here:     ana bob cy
//! ```
//!
//! `tests/server_api.rs` runs `form_squad` itself.

use partyline::party::PartySettings;
use partyline::protocol::{InvitePolicy, KeyValues, PartySnapshot};
use partyline::server::{ApiError, Server, ServerApi, ServerConfig};
use tokio::io::{AsyncBufReadExt, BufReader};

/// The op code of the greeting (the game's own numbering).
pub const GREETING: i64 = 1;

/// Seats a connected session of each user (a user on two devices: one of
/// them) in a new closed party, the first user leading, and greets them.
/// Fails, forming nothing, when a user has no connected session. In a
/// cluster the users may be connected to any nodes: the party is homed on
/// the first user's.
pub async fn form_squad(api: &ServerApi, user_ids: &[&str]) -> Result<PartySnapshot, ApiError> {
    let mut sessions = Vec::with_capacity(user_ids.len());
    for user_id in user_ids {
        let connected = api
            .sessions_of(user_id)
            .await
            .into_iter()
            .find(|session| session.connected)
            .ok_or_else(|| {
                ApiError::Refused(partyline::protocol::ErrorBody::new(
                    partyline::protocol::ErrorCode::InvalidArgument,
                    format!("{user_id} is not online"),
                ))
            })?;
        sessions.push(connected.session_id);
    }
    let settings = PartySettings {
        open: false,
        max_size: u16::try_from(user_ids.len()).unwrap_or(u16::MAX),
        label: "squad".into(),
        invite_policy: InvitePolicy::default(),
        leader_policy: Default::default(),
    };
    let party = api
        .create_party(&sessions, settings, KeyValues::new())
        .await?;
    api.send_to_party(party.party_id, GREETING, "good luck, squad".into())
        .await?;
    Ok(party)
}

#[allow(dead_code)] // tests/server_api.rs includes this file for form_squad alone
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    partyline::init_logging("info", partyline::LogFormat::Text);
    let (tls, cert_pem, _) = partyline::certs::generate_dev_identity()?;
    std::fs::write("squad-backend-cert.pem", cert_pem)?;
    let server = Server::bind(ServerConfig::new("127.0.0.1:7350".parse()?, tls))?;
    let api = server.api();
    let running = tokio::spawn(server.run_until(async {
        let _ = tokio::signal::ctrl_c().await;
    }));
    println!("type the user ids of a squad on one line (clients trust squad-backend-cert.pem)");
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let users: Vec<&str> = line.split_whitespace().collect();
        if users.is_empty() {
            continue;
        }
        match form_squad(&api, &users).await {
            Ok(party) => println!("formed {} led by {}", party.party_id, party.leader.user_id),
            Err(error) => println!("not formed: {error}"),
        }
    }
    running.await?;
    Ok(())
}
