//! A server hook that lets each user lead at most one party at a time.
//!
//! Run it like `partyline serve` (dev certificate and all):
//!
//! ```text
//! cargo run --release --example one_party_per_leader
//! ```
//!
//! A user who already leads a party and asks to create another, or who is
//! about to be promoted in a second party, is refused with `Denied` and a
//! message saying why. The hook also logs the after-events, as an analytics
//! sink would. `tests/hooks.rs` runs this very hook.

use partyline::server::{
    AfterEvent, BeforeCall, Decision, HookFuture, HookPoint, Hooks, Server, ServerConfig,
};

/// The rule. Two creates by the same user in the same instant (from two
/// devices) could both pass: the check reads the table, and the second
/// create is not in it yet. A stricter rule would reserve in the hook.
pub struct OnePartyPerLeader;

impl Hooks for OnePartyPerLeader {
    fn before<'a>(&'a self, call: &'a BeforeCall) -> HookFuture<'a, Decision> {
        Box::pin(async move {
            let would_lead = match (&call.point, &call.command) {
                (HookPoint::CreateParty, _) => Some(call.caller.user_id.clone()),
                (HookPoint::Promote, partyline::protocol::Command::Promote { user_id, .. }) => {
                    Some(user_id.clone())
                }
                _ => None,
            };
            let Some(user_id) = would_lead else {
                return Decision::Allow;
            };
            // On every node of a cluster: the user may lead a party
            // homed elsewhere.
            match call.server.parties_led_by(&user_id).await.first() {
                Some(party_id) => Decision::deny(format!(
                    "{user_id} already leads party {party_id}: one party at a time"
                )),
                None => Decision::Allow,
            }
        })
    }

    fn after<'a>(&'a self, event: &'a AfterEvent) -> HookFuture<'a, ()> {
        Box::pin(async move {
            tracing::info!(?event, "party analytics");
        })
    }
}

#[allow(dead_code)] // tests/hooks.rs includes this file for the hook alone
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    partyline::init_logging("info", partyline::LogFormat::Text);
    let (tls, cert_pem, _) = partyline::certs::generate_dev_identity()?;
    std::fs::write("one-party-per-leader-cert.pem", cert_pem)?;
    let listen = "127.0.0.1:7350".parse()?;
    let server = Server::builder(ServerConfig::new(listen, tls))
        .hooks(OnePartyPerLeader)
        .build()?;
    tracing::info!(
        addr = %server.local_addr()?,
        "serving with one party per leader; clients trust one-party-per-leader-cert.pem"
    );
    server
        .run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    Ok(())
}
