//! What needs other nodes: deferred answers (a forwarded command, a join
//! code, a follow, a search gathered from every node), the answers this
//! node gives to the others' questions, and the facts a before-hook needs
//! from a party's home.

use super::fitting;
use super::table::Hook;
use crate::auth::unix_now_ms;
use crate::party::PartyError;
use crate::protocol::{Command, ErrorBody, PartyId, PartySearch, Presence, Reply, ResumedParty};
use crate::server::hook_events::HookPoint;
use crate::server::peers::{Answer, HookFacts, Question};
use crate::server::presence;
use crate::server::route::Forwarding;
use crate::server::session::{Outbound, SessionRef};
use crate::server::state::Shared;
use std::time::Instant;

/// Which hook a command meets, and the party it names; `None` for the
/// commands no hook is asked about. Joins and removals ask the party's
/// home (this node, or the one it lives on) whether the caller would be
/// seated and whether the one removed holds a seat; the answer may be
/// stale by the time the command runs, and the rules decide then as
/// always. A party nobody can find meets the hook as a plain `Join` (or
/// `Kick`): the command then fails on its own.
pub(crate) async fn hook_point(
    shared: &Shared,
    caller: &Presence,
    command: &Command,
) -> Option<(HookPoint, Option<PartyId>)> {
    let spec = super::spec_of(command);
    let point = match spec.hook {
        Hook::None => return None,
        Hook::At(point) => point,
        Hook::Join => {
            let party_id = match command {
                // An unknown code fails on its own (and counts as a guess).
                Command::JoinByCode { code } => party_of_code(shared, code).await?,
                _ => spec.party()?,
            };
            let facts = facts(shared, party_id, caller, None).await;
            return Some((join_point(facts), Some(party_id)));
        }
        Hook::Remove => {
            let target = match command {
                Command::Remove { user_id, .. } => Some(user_id),
                _ => None,
            };
            let party_id = spec.party()?;
            let seated = facts(shared, party_id, caller, target)
                .await
                .is_none_or(|facts| facts.target_seated);
            match seated {
                true => HookPoint::Kick,
                false => HookPoint::Reject,
            }
        }
    };
    let party_id = match command {
        Command::SubmitTicket(request) => request.party_id,
        _ => spec.party(),
    };
    Some((point, party_id))
}

/// A join seats the caller (open party, live invite) or queues a request.
fn join_point(facts: Option<HookFacts>) -> HookPoint {
    match facts {
        Some(HookFacts {
            would_seat: false, ..
        }) => HookPoint::JoinRequest,
        _ => HookPoint::Join,
    }
}

/// What the party's home says of `party_id` for this caller.
async fn facts(
    shared: &Shared,
    party_id: PartyId,
    caller: &Presence,
    target: Option<&String>,
) -> Option<HookFacts> {
    let question = Question::HookFacts {
        party_id,
        caller: caller.user_id.clone(),
        target: target.cloned(),
    };
    let answer = shared
        .route()
        .ask_home(party_id, question, |question| answer(shared, question))
        .await;
    match answer {
        Ok(Answer::HookFacts(facts)) => facts,
        _ => None,
    }
}

/// The party a join code leads to: here, or on any other node.
async fn party_of_code(shared: &Shared, code: &str) -> Option<PartyId> {
    if let Ok(party_id) = shared.table.party_of_code(code) {
        return Some(party_id);
    }
    shared
        .route()
        .ask_all(Question::FindCode(code.to_string()))
        .await
        .into_iter()
        .find_map(|(_, answer)| match answer {
            Answer::Code(found) => found,
            _ => None,
        })
}

/// A command whose answer needs other nodes: awaited by the session's
/// control loop before its next command (`complete`).
pub(crate) enum Deferred {
    /// Sent to the node that runs it.
    Forwarded(Forwarding),
    /// A join code this node does not know: asked of every other node.
    FindCode(String),
    /// A `Follow`: the followed users' sessions here and on the others,
    /// answered once the owners of those not followed here before (`ask`)
    /// did.
    Follow {
        user_ids: Vec<String>,
        ask: Vec<String>,
    },
    /// `ListInvites`: kept by the user's owner.
    ListInvites,
    /// A search: every node's page, merged in listing order.
    Search(PartySearch),
}

/// Finishes a deferred command: its answer is queued when this returns.
pub(crate) async fn complete(shared: &Shared, session: &SessionRef, id: u32, deferred: Deferred) {
    let route = shared.route();
    let answer = |result: Result<Reply, ErrorBody>| {
        session.push(Outbound::Response { id, result });
    };
    match deferred {
        Deferred::Forwarded(forwarding) => route.finish(forwarding).await,
        Deferred::FindCode(code) => {
            let found = route
                .ask_all(Question::FindCode(code))
                .await
                .into_iter()
                .find_map(|(_, answer)| match answer {
                    Answer::Code(found) => found,
                    _ => None,
                });
            match found {
                Some(party_id) => {
                    if let Some(Deferred::Forwarded(forwarding)) =
                        super::handle_code_join(shared, session, id, party_id)
                    {
                        route.finish(forwarding).await;
                    }
                }
                None => {
                    super::code_missed(shared);
                    answer(Err(PartyError::JoinCodeNotFound.into()))
                }
            }
        }
        Deferred::Follow { user_ids, ask } => {
            // Each owner's answer is noted as it comes, in order with what
            // it passes on, by the node task (`super::super::nodes`): once
            // they answered, the reply is what this node knows.
            presence::follow(&shared.users, route, ask).await;
            shared.users.answer_follow(session, id, user_ids, fitting);
        }
        Deferred::ListInvites => {
            let user_id = &session.presence.user_id;
            let mut invites = presence::invites(&shared.users, route, user_id, unix_now_ms()).await;
            // An invite from a user this session blocks never shows.
            invites.retain(|invite| !session.blocks_user(&invite.inviter.user_id));
            // The oldest that fit in one reply; the rest stay pending.
            invites.truncate(fitting(&invites));
            answer(Ok(Reply::Invites(invites)));
        }
        Deferred::Search(query) => {
            let max = shared.limits.max_search_results;
            let local = match shared.table.search_placed(&query, max) {
                Ok(local) => local,
                Err(error) => return answer(Err(error.into())),
            };
            let mut pages = vec![(local.0, local.1 != 0)];
            for (_, reply) in route.ask_all(Question::Search(query.clone())).await {
                if let Answer::Search { parties, more } = reply {
                    pages.push((parties, more));
                }
            }
            let limit = usize::from(query.limit.min(max));
            let (parties, next_cursor) = merge_pages(pages, limit);
            answer(Ok(Reply::Parties {
                parties,
                next_cursor,
            }));
        }
    }
}

/// Merges the nodes' pages of a search (each in place order) into the
/// first `limit` parties of the cluster's listing order, and the cursor of
/// the next page: the place of the last one given when any node has more.
fn merge_pages(
    pages: Vec<(Vec<(u64, crate::protocol::ListedParty)>, bool)>,
    limit: usize,
) -> (Vec<crate::protocol::ListedParty>, u64) {
    let mut more = pages.iter().any(|(_, more)| *more);
    let mut merged: Vec<(u64, crate::protocol::ListedParty)> =
        pages.into_iter().flat_map(|(parties, _)| parties).collect();
    merged.sort_by_key(|(place, _)| *place);
    if merged.len() > limit {
        merged.truncate(limit);
        more = true;
    }
    // Long labels and properties: a shorter page, so it fits one frame.
    let parties: Vec<_> = merged.iter().map(|(_, party)| party.clone()).collect();
    let fit = fitting(&parties).max(1).min(parties.len());
    if fit < merged.len() {
        merged.truncate(fit);
        more = true;
    }
    let next = match (more, merged.last()) {
        (true, Some((place, _))) => *place,
        _ => 0,
    };
    (merged.into_iter().map(|(_, party)| party).collect(), next)
}

/// This node's answer to a question about what it holds: another node's,
/// or its own (`Route::ask_home` for a party homed here).
pub(crate) fn answer(shared: &Shared, question: Question) -> Answer {
    match question {
        Question::FindCode(code) => Answer::Code(shared.table.party_of_code(&code).ok()),
        // Asked by another node through `super::super::nodes`, which
        // names the asker; here, this node asks itself.
        Question::Follow(user_ids) => {
            presence::followed_by(&shared.users, shared.route().me, &user_ids)
        }
        Question::Invites(user_id) => {
            Answer::Invites(shared.users.directory().invites(&user_id, unix_now_ms()))
        }
        Question::Snapshots { session, party_ids } => {
            let (parties, waiting) = snapshots_of(shared, session, party_ids);
            let blocks = Vec::new();
            Answer::Snapshots {
                parties,
                waiting,
                blocks,
            }
        }
        Question::Search(query) => {
            let max = shared.limits.max_search_results;
            let (parties, next) = shared.table.search_placed(&query, max).unwrap_or_default();
            Answer::Search {
                parties,
                more: next != 0,
            }
        }
        Question::Api(question) => Answer::Api(super::server_api::answer(shared, question)),
        Question::HandOver {
            session,
            user_id,
            secret,
            to,
        } => super::resume::hand_over(shared, session, &user_id, secret, to),
        Question::Repoint {
            session,
            user_id,
            from,
            to,
        } => super::resume::repoint(shared, session, &user_id, from, to),
        Question::Claim { session, from, to } => super::resume::claim(shared, session, from, to),
        Question::HookFacts {
            party_id,
            caller,
            target,
        } => {
            let facts = shared.table.read(party_id, |party| {
                let target_seated = target.as_ref().is_some_and(|user_id| {
                    party
                        .members()
                        .iter()
                        .any(|seat| seat.presence.user_id == *user_id)
                });
                Ok(HookFacts {
                    would_seat: party.would_seat(&caller, Instant::now()),
                    target_seated,
                })
            });
            Answer::HookFacts(facts.ok())
        }
    }
}

/// Snapshots of the parties among `party_ids` here where session `me` has
/// a seat, and the ones where its request waits (a resume from snapshots;
/// in a cluster, also asked of a party's home for a session elsewhere).
pub(crate) fn snapshots_of(
    shared: &Shared,
    me: crate::protocol::SessionId,
    party_ids: Vec<crate::protocol::PartyId>,
) -> (Vec<ResumedParty>, Vec<crate::protocol::PartyId>) {
    let mut parties = Vec::new();
    let mut waiting = Vec::new();
    for party_id in party_ids {
        let _ = shared.table.read(party_id, |party| {
            if party.is_member(me) {
                let leads = party.leader().is_some_and(|l| l.presence.session_id == me);
                let requests = if leads {
                    party.join_requests(me)?
                } else {
                    Vec::new()
                };
                parties.push(ResumedParty {
                    // Its own view: with its mutes.
                    snapshot: party.snapshot_for(me),
                    requests,
                });
            } else {
                waiting.push(party_id);
            }
            Ok(())
        });
    }
    (parties, waiting)
}
