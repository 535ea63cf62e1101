//! The domain: one party's rules ([`Party`]) and the sharded table that
//! holds them all ([`PartyTable`]). Plain Rust: no async, no sockets, no
//! clock of its own (time comes in as an argument). An operation returns
//! [`Effects`]: the events to deliver, and to whom.

pub mod directory;
mod error;
#[allow(clippy::module_inception)]
mod party;
pub mod quality;
mod table;

pub use error::PartyError;
pub use party::{
    validate_key_values, Ban, BlockList, Delivery, Effects, Invite, InviteNotice, JoinRequest,
    Party, PartySettings, PartyUpdate, Seat, Sender,
};
pub use table::{Link, PartyTable};
