//! The command table: per command, where it runs, which hook it meets and
//! which rate budget it spends. One line per command; the dispatcher
//! (`super::run`), routing (`super::handle`) and the hooks read it.

use crate::protocol::{Command, PartyId};
use crate::server::hook_events::HookPoint;

/// Where a command runs in a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RunsAt {
    /// The caller's own node.
    Session,
    /// The party's home.
    Home(PartyId),
    /// The ticket's home, which made it (named by the id's high bits).
    TicketPool(u64),
}

/// The before-hook a command meets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hook {
    /// None: reads, and what concerns no party's rules.
    None,
    /// Always this point.
    At(HookPoint),
    /// `Join` when the caller would be seated (open party, live invite),
    /// `JoinRequest` when it would wait: the party's home tells.
    Join,
    /// `Kick` for a member, `Reject` for a requester: the home tells.
    Remove,
}

/// Which rate limits a command spends, beyond the per-connection budget
/// of its kind (`data`: reliable party data, counted with datagrams). The
/// budgets named here are also its user's and its address's
/// (`super::super::player_limits`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Budget {
    Commands,
    Data,
    /// Also one of the session's invites a minute.
    Invites,
    /// Also one of the session's tickets a minute.
    Tickets,
    /// Also one of the session's join-code attempts a minute, and one of
    /// its user's and address's wrong codes an hour until found.
    JoinCodes,
    /// Also one of the user's and the address's follows a minute.
    Follows,
    /// Also one of the user's and the address's joins a minute.
    JoinRequests,
    /// Also one of the user's and the address's searches a minute.
    Searches,
}

/// One row of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Spec {
    pub(crate) runs_at: RunsAt,
    pub(crate) hook: Hook,
    pub(crate) budget: Budget,
    /// Adds a seat or a request: counts against the parties limit.
    pub(crate) takes_a_seat: bool,
}

const fn spec(runs_at: RunsAt, hook: Hook, budget: Budget) -> Spec {
    Spec {
        runs_at,
        hook,
        budget,
        takes_a_seat: false,
    }
}

const fn seat(runs_at: RunsAt, hook: Hook, budget: Budget) -> Spec {
    Spec {
        takes_a_seat: true,
        ..spec(runs_at, hook, budget)
    }
}

/// The table: one line per command (kept so by hand).
#[rustfmt::skip]
pub(crate) fn spec_of(command: &Command) -> Spec {
    use Budget::{Commands, Data, Follows, Invites, JoinCodes, JoinRequests, Searches, Tickets};
    use Hook::{At, Join, Remove};
    use HookPoint as P;
    use RunsAt::{Home, Session, TicketPool};
    match command {
        // Parties (party.rs)
        Command::CreateParty { .. } => seat(Session, At(P::CreateParty), Commands),
        Command::GetParty { party_id } => spec(Home(*party_id), Hook::None, Commands),
        Command::Update { party_id, .. } => spec(Home(*party_id), At(P::Update), Commands),
        Command::Leave { party_id } => spec(Home(*party_id), Hook::None, Commands),
        Command::Close { party_id } => spec(Home(*party_id), At(P::Close), Commands),
        Command::Promote { party_id, .. } => spec(Home(*party_id), At(P::Promote), Commands),
        Command::Kick { party_id, .. } => spec(Home(*party_id), At(P::Kick), Commands),
        Command::Ban { party_id, .. } => spec(Home(*party_id), Hook::None, Commands),
        Command::Unban { party_id, .. } => spec(Home(*party_id), Hook::None, Commands),
        Command::ListBans { party_id } => spec(Home(*party_id), Hook::None, Commands),
        // Join requests and invites (requests.rs)
        Command::JoinParty { party_id } => seat(Home(*party_id), Join, JoinRequests),
        Command::ListJoinRequests { party_id } => spec(Home(*party_id), Hook::None, Commands),
        Command::AcceptJoinRequest { party_id, .. } => spec(Home(*party_id), At(P::Accept), Commands),
        Command::Reject { party_id, .. } => spec(Home(*party_id), At(P::Reject), Commands),
        Command::Remove { party_id, .. } => spec(Home(*party_id), Remove, Commands),
        Command::Invite { party_id, .. } => spec(Home(*party_id), At(P::Invite), Invites),
        Command::DeclineInvite { party_id } => spec(Home(*party_id), Hook::None, Commands),
        Command::RevokeInvite { party_id, .. } => spec(Home(*party_id), Hook::None, Commands),
        Command::ListInvites => spec(Session, Hook::None, Commands),
        // Status and follows (social.rs)
        Command::SetStatus { .. } => spec(Session, Hook::None, Commands),
        Command::Follow { .. } => spec(Session, Hook::None, Follows),
        Command::Unfollow { .. } => spec(Session, Hook::None, Commands),
        // Join codes and the listing (codes.rs)
        Command::CreateJoinCode { party_id } => spec(Home(*party_id), Hook::None, Commands),
        Command::ClearJoinCode { party_id } => spec(Home(*party_id), Hook::None, Commands),
        Command::JoinByCode { .. } => seat(Session, Join, JoinCodes),
        Command::ListParty { party_id, .. } => spec(Home(*party_id), Hook::None, Commands),
        Command::UnlistParty { party_id } => spec(Home(*party_id), Hook::None, Commands),
        Command::SearchParties(_) => spec(Session, Hook::None, Searches),
        // Matchmaking (tickets.rs)
        Command::SubmitTicket(request) => match request.party_id {
            Some(party_id) => spec(Home(party_id), At(P::Matchmaking), Tickets),
            // Made here; this node pools it at the matcher.
            None => spec(Session, At(P::Matchmaking), Tickets),
        },
        Command::CancelTicket { ticket_id } => spec(TicketPool(*ticket_id), Hook::None, Commands),
        // Party data, state and attributes (data.rs)
        Command::SendData { party_id, .. } => spec(Home(*party_id), At(P::ReliableData), Data),
        Command::SetPartyState { party_id, .. } => spec(Home(*party_id), Hook::None, Commands),
        Command::SetMemberAttributes { party_id, .. } => {
            spec(Home(*party_id), Hook::None, Commands)
        }
        // Ready checks (ready.rs)
        Command::StartReadyCheck { party_id, .. } => spec(Home(*party_id), At(P::ReadyCheck), Commands),
        Command::AnswerReadyCheck { party_id, .. } => spec(Home(*party_id), Hook::None, Commands),
        Command::CancelReadyCheck { party_id } => spec(Home(*party_id), Hook::None, Commands),
        // Mutes and blocks (quiet.rs)
        Command::Mute { party_id, .. } => spec(Home(*party_id), At(P::Mute), Commands),
        Command::Unmute { party_id, .. } => spec(Home(*party_id), Hook::None, Commands),
        Command::Block { .. } => spec(Session, At(P::Block), Commands),
        Command::Unblock { .. } => spec(Session, At(P::Block), Commands),
        Command::ListBlocks => spec(Session, Hook::None, Commands),
    }
}

impl Spec {
    /// The party the command names, if any (what a hook is told).
    pub(crate) fn party(&self) -> Option<PartyId> {
        match self.runs_at {
            RunsAt::Home(party_id) => Some(party_id),
            _ => None,
        }
    }
}
