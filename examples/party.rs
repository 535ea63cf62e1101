//! A minimal game client. Start a server (`cargo run --release -- serve`),
//! then in two more terminals:
//!
//! ```text
//! cargo run --example party -- host            # creates a party, prints its id
//! cargo run --example party -- join <party-id> # joins it and says hello
//! ```

use partyline::certs::load_certs;
use partyline::client::{Client, ClientConfig, ClientEvent};
use partyline::protocol::{JoinOutcome, PartyId};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let certs = load_certs("certs/cert.pem".as_ref())?;
    let user = format!("player-{}", std::process::id());
    let config = ClientConfig::dev("127.0.0.1:7350".parse()?, certs, &user, &user);
    let (client, mut events) = Client::connect(config).await?;
    println!("connected as {user}, session {}", client.session_id());

    let party: PartyId = match args.first().map(String::as_str) {
        Some("join") => {
            let id: PartyId = args.get(1).ok_or("usage: join <party-id>")?.parse()?;
            match client.join_party(id).await? {
                JoinOutcome::Joined(snapshot) => {
                    println!("joined; members: {:?}", snapshot.members)
                }
                JoinOutcome::Queued { .. } => println!("waiting for the leader to accept"),
            }
            id
        }
        _ => {
            let snapshot = client.create_party(true, 4, "example").await?;
            println!("party created: {}", snapshot.party_id);
            snapshot.party_id
        }
    };

    // A game loop: 10 ticks a second, sending state and draining events
    // without ever blocking on the network.
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for frame in 0u64..600 {
        tick.tick().await;
        if frame % 10 == 0 {
            client.send_data(
                party,
                1,
                format!("hello from {user} at frame {frame}").as_bytes(),
            )?;
        }
        while let Some(event) = events.try_next() {
            match event {
                ClientEvent::Data(data) => {
                    println!(
                        "data op {} from {}: {}",
                        data.op_code,
                        data.sender,
                        String::from_utf8_lossy(&data.data)
                    )
                }
                ClientEvent::Disconnected(reason) => {
                    println!("disconnected: {reason:?}");
                    return Ok(());
                }
                other => println!("{other:?}"),
            }
        }
    }
    client.leave(party).await?;
    client.close().await;
    Ok(())
}
