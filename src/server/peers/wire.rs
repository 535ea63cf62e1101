//! What nodes say to each other over NATS (docs/CLUSTER.md). Postcard,
//! like the client protocol; every node of a cluster runs the same build,
//! so these messages carry no version of their own: `Heartbeat::build`
//! names it, and a node of another build is refused (see `mod.rs`).

use crate::party::InviteNotice;
use crate::protocol::{
    Command, ErrorBody, Event, ListedParty, PartyId, PartySearch, Presence, Reply, ResumedParty,
    SessionId, TicketRequest, UserStatus,
};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Control messages, on `pl.<tag>.ctl`: one subscription per node, handled
/// in the order they arrive (NATS keeps one publisher's order).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ControlMessage {
    /// A command for a party homed on the receiving node, from a session
    /// on node `from`; answered with `Reply { corr }` before any event it
    /// causes.
    Command {
        corr: u32,
        from: u32,
        caller: Presence,
        command: Command,
    },
    /// The answer to `Command { corr }`, exactly as a local command's.
    Reply {
        corr: u32,
        result: Result<Reply, ErrorBody>,
    },
    /// Party events for sessions on the receiving node: one message per
    /// change (per node), each event with the sessions that receive it.
    Events(Vec<RelayedEvent>),
    /// A session of the receiving node now holds (`held`) a seat or a join
    /// request in a party homed on the sender, or no longer does.
    Membership {
        session: SessionId,
        party_id: PartyId,
        held: bool,
    },
    /// A session of the sender lost its connection or came back: its
    /// parties on the receiving node mark its seats.
    Connection {
        session: SessionId,
        connected: bool,
        hand_over_now: bool,
    },
    /// A lost session's leader grace is over: leadership passes on.
    LeaderGraceOver { session: SessionId },
    /// A session of the sender ended: it leaves every party on the
    /// receiving node, as when a local session ends.
    SessionEnded { session: SessionId },
    /// To the cluster's matcher: a party ticket of the sender's (the
    /// party's home, also named by the id's high 32 bits), for its pool.
    /// Members with no node are the sender's own sessions.
    PoolTicket {
        ticket_id: u64,
        request: TicketRequest,
        submitter: SessionId,
        members: Vec<(Presence, Option<u32>)>,
    },
    /// To the matcher: that party ticket ended at its home.
    Unpool { ticket_id: u64 },
    /// From the matcher to the party's home: its ticket matched.
    PoolMatched { ticket_id: u64 },
    /// The matcher could not pool it (a member already in a ticket there).
    PoolRefused { ticket_id: u64 },
    /// A question for every other node (a gather), answered with
    /// `Answer { corr }`.
    Ask {
        corr: u32,
        from: u32,
        question: Question,
    },
    /// For every node (sent to each on its control subject): an invite
    /// or a status change.
    Broadcast {
        from: u32,
        message: BroadcastMessage,
    },
    /// One node's answer to `Ask { corr }`.
    Answer {
        corr: u32,
        from: u32,
        answer: Answer,
    },
}

/// What a node asks all the others.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Question {
    /// Which party has this join code (as typed)?
    FindCode(String),
    /// The visible sessions of these users, for a `Follow`.
    Statuses(Vec<String>),
    /// A page of the listed parties that match, after the cursor.
    Search(PartySearch),
    /// What a before-hook needs to know of a party homed on the node
    /// asked: would `caller` be seated by a join (not queued), and does
    /// `target` hold a seat (a `Remove` is a kick, not a rejection)?
    HookFacts {
        party_id: PartyId,
        caller: String,
        target: Option<String>,
    },
    /// For a session resumed from snapshots: its parties homed on the
    /// node asked.
    Snapshots {
        session: SessionId,
        party_ids: Vec<PartyId>,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Answer {
    Code(Option<PartyId>),
    Statuses(Vec<UserStatus>),
    /// Listed parties with their places, in place order; `more` when the
    /// node has more after the last.
    Search {
        parties: Vec<(u64, ListedParty)>,
        more: bool,
    },
    Snapshots {
        parties: Vec<ResumedParty>,
        waiting: Vec<PartyId>,
    },
    /// `None` when no such party lives there.
    HookFacts(Option<HookFacts>),
}

/// See `Question::HookFacts`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct HookFacts {
    pub(crate) would_seat: bool,
    pub(crate) target_seated: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum BroadcastMessage {
    /// An invite sent or gone: every node keeps the invitee's pending
    /// invites and tells its sessions.
    Invite(InviteNotice),
    /// A user's session went online, changed its status or went offline:
    /// for the followers on every node.
    Status { user_id: String, event: Event },
}

/// One event and who receives it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RelayedEvent {
    pub(crate) to: Vec<SessionId>,
    pub(crate) event: Event,
}

/// Party data, on `pl.<tag>.dg`: a subscription of its own, so a burst of
/// datagrams never delays a command's answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum DatagramMessage {
    /// A member on node `from` sent party data to a party homed on the
    /// receiving node, which checks the seat and fans it out.
    ToHome {
        party_id: PartyId,
        sender: SessionId,
        op_code: i64,
        payload: Bytes,
    },
    /// The home fanned it out: the datagram as the clients receive it
    /// (already encoded), for these sessions of the receiving node.
    ToMembers { to: Vec<SessionId>, datagram: Bytes },
}

/// On `pl.nodes`, every `heartbeat` interval, and once with `leaving` set
/// when a node stops.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Heartbeat {
    pub(crate) tag: u32,
    pub(crate) name: String,
    /// Random per start: a node that restarted under the same name is a
    /// new node, and whatever the old one homed is gone.
    pub(crate) incarnation: u64,
    /// The crate version: nodes of different builds do not mix.
    pub(crate) build: String,
    pub(crate) leaving: bool,
}

pub(crate) fn encode<T: Serialize>(message: &T) -> Option<Bytes> {
    match postcard::to_allocvec(message) {
        Ok(bytes) => Some(Bytes::from(bytes)),
        Err(error) => {
            tracing::error!(%error, "could not encode a cluster message");
            None
        }
    }
}
