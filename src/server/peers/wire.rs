//! What nodes say to each other (docs/CLUSTER.md), through any adapter.
//! Postcard, like the client protocol; every node of a cluster runs the
//! same build, so these messages carry no version of their own:
//! `Heartbeat::build` names it, and a node of another build is refused
//! (see `route`).
//!
//! Every control message crosses behind a [`Header`]: the sender and its
//! incarnation, and the incarnation of the receiver it was meant for. A
//! node takes a message only when both are the ones it knows now, so
//! nothing of an incarnation judged lost (nor meant for this node's own
//! previous one) is ever acted on.

use crate::party::{InviteNotice, PartySettings};
use crate::protocol::{
    Command, ErrorBody, Event, InvitePolicy, KeyValues, LeaderPolicy, ListedParty, PartyId,
    PartyInvite, PartySearch, PartySnapshot, Presence, Reply, ResumedParty, SessionId,
    TicketRequest, UserStatus,
};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// What precedes every control message: who sent it, as which
/// incarnation, to which incarnation of the receiver. Postcard writes a
/// struct's fields one after the other, so a header followed by a message
/// is one encoded `(Header, ControlMessage)`: the message is encoded once
/// for many receivers, each with its own header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Header {
    pub(crate) from: u32,
    pub(crate) from_incarnation: u64,
    pub(crate) to_incarnation: u64,
}

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
    /// A session of the sender measured a new connection score (sent only
    /// when it moved enough, or to a new seat's home): its seats and
    /// requests on the receiving node keep it.
    Quality { session: SessionId, score: u32 },
    /// The block list of a session of the sender, for its seats in
    /// parties homed on the receiving node (sent when it changes, and when
    /// a party there seats the session or queues its request).
    Blocks {
        session: SessionId,
        user_ids: Vec<String>,
    },
    /// A session of the sender ended: it leaves every party on the
    /// receiving node, as when a local session ends.
    SessionEnded { session: SessionId },
    /// To the matcher: a ticket of its *home* (the node that made it, named
    /// by the id's high 32 bits: a party's home, or a solo player's node),
    /// for its pool; sent by the home, or passed on by a node that held it
    /// and is no longer the matcher. Members with no node are the home's
    /// own sessions. `waited_ms`: how long it has waited already (its count
    /// relaxes by it). A node that is not the matcher passes it on to the
    /// one it knows; the one that pools it answers the home `Pooled`.
    PoolTicket {
        ticket_id: u64,
        request: TicketRequest,
        submitter: SessionId,
        members: Vec<(Presence, Option<u32>)>,
        waited_ms: u64,
    },
    /// To a ticket's home: the sender pooled it (the home's `Unpool` goes
    /// there from now on; from a home that no longer has it, `Unpool`
    /// back).
    Pooled { ticket_id: u64 },
    /// To the pool that holds it: that ticket ended at its home.
    Unpool { ticket_id: u64 },
    /// From the matcher to the ticket's home: it matched.
    PoolMatched { ticket_id: u64 },
    /// The matcher could not pool it (a member already in a ticket there).
    PoolRefused { ticket_id: u64 },
    /// To the pool that holds it, from the node that keeps the ticket or
    /// its shadow: member `session`, which lived on node `from`, now lives
    /// on node `to` (it resumed there), so its `Matched` goes there. A node
    /// that no longer holds it passes it on to the matcher it knows, as a
    /// `PoolTicket`, in order behind the ticket.
    PoolRepoint {
        ticket_id: u64,
        session: SessionId,
        from: u32,
        to: u32,
    },
    /// A question for every other node (a gather), answered with
    /// `Answer { corr }`.
    Ask {
        corr: u32,
        from: u32,
        question: Question,
    },
    /// Presence and invites, by the user's owner (docs/CLUSTER.md,
    /// "Presence and invites: the user's owner").
    Directory(DirectoryMessage),
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
    /// To their owner: the asking node follows these users (it is told
    /// of every change from now on); what each node said of them.
    Follow(Vec<String>),
    /// To its owner: the user's pending invites.
    Invites(String),
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
    /// For the server-side API (and the admin API through it).
    Api(ApiQuestion),
    /// To the node a resume token names, from the node the client resumed
    /// on (`to`): hand session `session` of `user_id` over if `secret` is
    /// its current resume secret. Answered `HandedOver`.
    HandOver {
        session: SessionId,
        user_id: String,
        secret: uuid::Uuid,
        to: u32,
    },
    /// To the owner of the session's user, from node `to`, where a client
    /// resumed with a token of node `from`, which `to` judged lost: may
    /// `to` take the session over? The first node to claim it gets it.
    /// Answered `Claimed`.
    Claim {
        session: SessionId,
        from: u32,
        to: u32,
    },
    /// To a party's home: session `session` of `user_id`, which sat here
    /// through node `from`, now lives on node `to`: its seats and requests
    /// there follow it. Answered `Snapshots` of what followed.
    Repoint {
        session: SessionId,
        user_id: String,
        from: u32,
        to: u32,
    },
}

/// What a node hands over of a session that resumed on another node.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct HandOverFacts {
    /// The number of the next event it would have sent.
    pub(crate) next_event_seq: u64,
    /// The session's status text and visibility, and whom it follows.
    pub(crate) status: String,
    pub(crate) visible: bool,
    pub(crate) follows: Vec<String>,
    /// Its block list.
    pub(crate) blocks: Vec<String>,
    /// Its parties homed on the node that handed it over, now pointed at
    /// the new node: their snapshots (seats), and the requests waiting.
    pub(crate) parties: Vec<ResumedParty>,
    pub(crate) waiting: Vec<PartyId>,
    /// Its seats and requests in parties homed on other nodes (the new
    /// node asks their homes to repoint them).
    pub(crate) elsewhere: Vec<PartyId>,
    /// The tickets it waits in (its own, its parties'): they wait on, and
    /// the new node notes them (for `NodeLost` should their node be lost,
    /// and so that the session's end reaches them).
    pub(crate) tickets: Vec<u64>,
}

/// What the server-side API (`ServerApi`) asks of another node: what it
/// holds, or an action on it, done there as it would be done locally.
/// Answered with `Answer::Api`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum ApiQuestion {
    /// A page of the live sessions there (one user's, or everyone's), in
    /// (user id, session id) order, after `after`.
    Sessions {
        user_id: Option<String>,
        after: Option<(String, SessionId)>,
        limit: u32,
    },
    /// Those of these sessions that live there.
    Find(Vec<SessionId>),
    /// The parties homed there that a session of this user leads.
    PartiesLedBy(String),
    /// A page of the parties homed there whose label contains `label`, in
    /// (label, party id) order, after `after`.
    Parties {
        label: String,
        after: Option<(String, PartyId)>,
        limit: u32,
    },
    /// A party homed there, with its waiting join requests.
    Party(PartyId),
    /// The server takes `user_id`'s seat in a party homed there.
    Kick { party_id: PartyId, user_id: String },
    /// The server closes a party homed there.
    Close(PartyId),
    /// Reliable data from the server to the members of a party homed there.
    Send {
        party_id: PartyId,
        op_code: i64,
        data: Bytes,
    },
    /// The session ends now, if it lives there: closed with code 9.
    Disconnect { session: SessionId, reason: String },
    /// The server seats `member`, a session of node `node`, in a party
    /// homed there (a proxy of it when `node` is another node).
    Seat {
        party_id: PartyId,
        member: Presence,
        node: u32,
    },
    /// The server takes a session's seat in a party homed there, as if it
    /// had left.
    Leave {
        party_id: PartyId,
        session: SessionId,
    },
    /// The block list of every live session of `user_id` there is now
    /// `user_ids` (checked already). Answered `BlocksSet`.
    SetBlocks {
        user_id: String,
        user_ids: Vec<String>,
    },
    /// The server creates a party there, led by the first member (a
    /// session of the node asked), the others seated after it; each
    /// member with its node.
    Create {
        members: Vec<(Presence, u32)>,
        settings: SettingsOnWire,
        state: KeyValues,
    },
}

/// `PartySettings` (pure party rules, no serde) as it crosses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SettingsOnWire {
    open: bool,
    max_size: u16,
    label: String,
    invite_policy: InvitePolicy,
    leader_policy: LeaderPolicy,
}

impl From<PartySettings> for SettingsOnWire {
    fn from(settings: PartySettings) -> Self {
        SettingsOnWire {
            open: settings.open,
            max_size: settings.max_size,
            label: settings.label,
            invite_policy: settings.invite_policy,
            leader_policy: settings.leader_policy,
        }
    }
}

impl From<SettingsOnWire> for PartySettings {
    fn from(settings: SettingsOnWire) -> Self {
        PartySettings {
            open: settings.open,
            max_size: settings.max_size,
            label: settings.label,
            invite_policy: settings.invite_policy,
            leader_policy: settings.leader_policy,
        }
    }
}

/// Why a node refused an action of the server-side API (`ApiError`, as it
/// crosses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Refusal {
    /// A party rule refused.
    Rule(ErrorBody),
    /// No live session there has that id.
    SessionNotFound(SessionId),
}

impl From<ErrorBody> for Refusal {
    fn from(body: ErrorBody) -> Self {
        Refusal::Rule(body)
    }
}

impl From<crate::party::PartyError> for Refusal {
    fn from(error: crate::party::PartyError) -> Self {
        Refusal::Rule(error.into())
    }
}

/// A node's answer to an `ApiQuestion`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ApiAnswer {
    Sessions(Page<SessionFacts>),
    Found(Vec<SessionFacts>),
    PartyIds(Vec<PartyId>),
    Parties(Page<PartySnapshot>),
    /// The party and its waiting join requests, or the rule's refusal
    /// (boxed: a snapshot is large beside the other answers).
    Party(Result<Box<(PartySnapshot, Vec<Presence>)>, ErrorBody>),
    /// An action done, or why not.
    Done(Result<(), Refusal>),
    /// A party created, as it is once every member is seated.
    Created(Result<Box<PartySnapshot>, Refusal>),
    /// Whether the session lived there (it has ended now).
    Disconnected(bool),
    /// How many sessions there got the block list.
    BlocksSet(u32),
}

/// One node's page of a list, in the list's order.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Page<T> {
    pub(crate) items: Vec<T>,
    /// More match after the last item.
    pub(crate) more: bool,
    /// How many match there in all, before and after this page.
    pub(crate) matched: u64,
    /// How many (sessions, parties) are alive there, matching or not.
    pub(crate) alive: u64,
}

/// A live session, as the node it lives on describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SessionFacts {
    pub(crate) presence: Presence,
    pub(crate) connected: bool,
    pub(crate) remote: Option<SocketAddr>,
    /// Parties where it has a seat or a join request, sorted.
    pub(crate) parties: Vec<PartyId>,
    /// The node it lives on.
    pub(crate) node: u32,
    /// Its connection's score now (see `SessionInfo::quality_score`).
    pub(crate) quality_score: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Answer {
    Code(Option<PartyId>),
    /// What each node said of the users followed (`Question::Follow`).
    Presence(Vec<NodePresence>),
    Invites(Vec<PartyInvite>),
    /// Listed parties with their places, in place order; `more` when the
    /// node has more after the last.
    Search {
        parties: Vec<(u64, ListedParty)>,
        more: bool,
    },
    Snapshots {
        parties: Vec<ResumedParty>,
        waiting: Vec<PartyId>,
        /// A `Repoint`'s answer: the session's block list as the home's
        /// proxy of it held it (for a session whose node was lost, which
        /// took its own copy along); empty otherwise.
        blocks: Vec<String>,
    },
    /// `None` when no such party lives there.
    HookFacts(Option<HookFacts>),
    Api(ApiAnswer),
    /// `None`: no such session there, another user's, or the secret is
    /// not its current one.
    HandedOver(Option<Box<HandOverFacts>>),
    Claimed(Claimed),
}

/// The answer to `Question::Claim`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Claimed {
    /// The session is the asker's to take over.
    Granted,
    /// Another node (or the asker, before) claimed it first.
    Taken,
    /// The node asked still hears the token's node: not lost to it (yet).
    NotLost,
}

/// See `Question::HookFacts`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct HookFacts {
    pub(crate) would_seat: bool,
    pub(crate) target_seated: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum DirectoryMessage {
    /// A node's sessions of a user now: to the user's owner, which passes
    /// it on to the nodes with followers of the user.
    Presence(NodePresence),
    /// From the owner to a node with followers of the user: what a node
    /// said (`Presence`).
    Told(NodePresence),
    /// To the owner: the sender has no followers of these users any more.
    Unfollow(Vec<String>),
    /// An invite sent or gone: to the invitee's owner, which keeps it and
    /// passes it on to the nodes with sessions of the invitee.
    Invite(InviteNotice),
    /// From the owner to a node with sessions of the invitee: the invite
    /// sent or gone, for them.
    InviteTold(InviteNotice),
    /// From a party's home to a user's new owner, after the live nodes
    /// changed: the pending invites of the home's parties to the users
    /// whose owner the receiver now is (each with its invitee), kept and
    /// told to no one. The home's word, not the sessions': an invite that
    /// ended unheard elsewhere is not in it.
    HomeInvites(Vec<(String, PartyInvite)>),
}

/// What node `node` has of user `user_id`: how many live sessions, and
/// the visible ones as its followers see them. `seq` grows with each
/// message of that node: an older word never replaces a newer one,
/// whatever path each took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NodePresence {
    pub(crate) user_id: String,
    pub(crate) node: u32,
    pub(crate) seq: u64,
    pub(crate) sessions: u32,
    pub(crate) visible: Vec<Shown>,
}

/// A visible session as followers may see it: its status, and the users
/// it hides from (its block list, sorted; empty for most): a follower
/// whose user is on it, or who blocks its user, does not see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Shown {
    pub(crate) status: UserStatus,
    pub(crate) blocks: Vec<String>,
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
    /// Random per start, and new again when the node learns it was judged
    /// lost: a node heard under a new incarnation is a new node, and
    /// whatever tied the others to the old one is gone.
    pub(crate) incarnation: u64,
    /// The crate version: nodes of different builds do not mix.
    pub(crate) build: String,
    pub(crate) leaving: bool,
    /// Incarnations (tag, incarnation) this node judged lost and still
    /// tells of: the node named learns from it that it was judged lost.
    pub(crate) judged_lost: Vec<(u32, u64)>,
    /// The matcher as this node sees it (the lowest tag it hears): a pool
    /// matches only while every node it hears names its node.
    pub(crate) matcher: u32,
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
