//! Presence and invites across nodes, through each user's *owner*
//! (docs/CLUSTER.md, "Presence and invites: the user's owner"): the live
//! node of highest rendezvous weight for the user id (`Route::owner_of`).
//!
//! - A node with sessions of a user tells the owner what they are now
//!   (`NodePresence`, after each connect, visible change and end); the
//!   owner passes it on to the nodes with followers of the user.
//! - A node whose session follows a user not followed there yet asks the
//!   owner (`Question::Follow`), which notes the node as a follower and
//!   answers what every node said, on the same ordered lane as what it
//!   passes on later; when no one there follows the user any more, it
//!   tells the owner (`Unfollow`).
//! - An invite sent or gone goes from the party's home to the invitee's
//!   owner, which keeps it (for `ListInvites`, asked of it) and passes it
//!   on to the nodes with sessions of the invitee.
//! - When the live nodes change, each node tells the new owners what it
//!   holds of the users whose owner changed (`reregister`).
//!
//! Alone, the owner is this node and nothing is sent.

use super::peers::{Answer, ControlMessage, DirectoryMessage, NodeId, NodePresence, Question};
use super::route::Route;
use super::session::SessionRef;
use super::users::Users;
use crate::party::InviteNotice;
use crate::protocol::PartyInvite;
use std::collections::{HashMap, HashSet};

/// How long a node's word that its sessions of a user ended is kept, and
/// an owner's book of a user it no longer owns: past the time in which
/// every node learns of a change of the live nodes.
fn keep_for(route: &Route) -> std::time::Duration {
    route.timings.node_timeout * 2
}

/// A session started here.
pub(crate) fn session_started(users: &Users, route: &Route, session: &SessionRef) {
    let owner = route.owner_of(&session.presence.user_id);
    let presence = users.session_started(session, route.me, owner);
    to_owner(users, route, owner, presence);
}

/// A session here ended.
pub(crate) fn session_ended(users: &Users, route: &Route, session: &SessionRef) {
    let (presence, unfollowed) = users.session_ended(session, route.me);
    if let Some(presence) = presence {
        let owner = route.owner_of(&presence.user_id);
        to_owner(users, route, owner, presence);
    }
    unfollow(users, route, unfollowed);
}

/// A session here changed what it shows.
pub(crate) fn set_status(
    users: &Users,
    route: &Route,
    session: &SessionRef,
    status: String,
    visible: bool,
) {
    if let Some(presence) = users.set_status(session, status, visible, route.me) {
        let owner = route.owner_of(&presence.user_id);
        to_owner(users, route, owner, presence);
    }
}

/// A session here has a new block list: what each side sees changes
/// here, and the owner passes the session's new list on to the follower
/// nodes (which hide or show it to their followers).
pub(crate) fn set_blocks(
    users: &Users,
    route: &Route,
    session: &SessionRef,
    blocks: super::session::BlockSet,
) {
    if let Some(presence) = users.set_blocks(session, blocks, route.me) {
        let owner = route.owner_of(&presence.user_id);
        to_owner(users, route, owner, presence);
    }
}

fn to_owner(users: &Users, route: &Route, owner: NodeId, presence: NodePresence) {
    if !route.clustered() {
        return;
    }
    match owner == route.me {
        true => owned_presence(users, route, presence),
        false => route.send_to(
            owner,
            &ControlMessage::Directory(DirectoryMessage::Presence(presence)),
        ),
    }
}

/// What a node said of its sessions of a user, at the owner (or at a node
/// that was it): kept, told to the follower nodes, and passed on to the
/// owner this node knows when that is another.
fn owned_presence(users: &Users, route: &Route, presence: NodePresence) {
    let Some(followers) = users.directory().presence(&presence) else {
        return;
    };
    for node in followers {
        match node == route.me {
            true => users.remote_presence(&presence),
            false => route.send_to(
                node,
                &ControlMessage::Directory(DirectoryMessage::Told(presence.clone())),
            ),
        }
    }
    let owner = route.owner_of(&presence.user_id);
    if owner != route.me && owner != presence.node {
        let pass_on = DirectoryMessage::Presence(presence);
        route.send_to(owner, &ControlMessage::Directory(pass_on));
    }
}

/// The users no one here follows any more: their owners hear it.
pub(crate) fn unfollow(users: &Users, route: &Route, user_ids: Vec<String>) {
    if !route.clustered() || user_ids.is_empty() {
        return;
    }
    for (owner, user_ids) in by_owner(route, user_ids) {
        match owner == route.me {
            true => users.directory().unfollow(route.me, &user_ids),
            false => route.send_to(
                owner,
                &ControlMessage::Directory(DirectoryMessage::Unfollow(user_ids)),
            ),
        }
    }
}

fn by_owner(route: &Route, user_ids: Vec<String>) -> HashMap<NodeId, Vec<String>> {
    let mut by_owner: HashMap<NodeId, Vec<String>> = HashMap::new();
    for user_id in user_ids {
        by_owner
            .entry(route.owner_of(&user_id))
            .or_default()
            .push(user_id);
    }
    by_owner
}

/// Users followed here for the first time: each owner is asked once (the
/// answers are noted by the node task, in order with what each owner
/// passes on); waits for them, at most the request timeout.
pub(crate) async fn follow(users: &Users, route: &Route, user_ids: Vec<String>) {
    let by_owner = by_owner(route, user_ids);
    let mut asked = HashSet::new();
    for (owner, user_ids) in &by_owner {
        users.told_follows(user_ids, *owner);
        match *owner == route.me {
            true => follow_here(users, route, user_ids),
            false => {
                asked.insert(*owner);
            }
        }
    }
    let question = |owner| Question::Follow(by_owner.get(&owner).cloned().unwrap_or_default());
    route.ask_each(asked, question).await;
}

/// A session taken over from another node follows here what it followed
/// there: the owners of users not followed here yet are asked, as for a
/// `Follow` (waits for their answers, at most the request timeout). The
/// old node told the owners it stopped, if no one else follows there.
pub(crate) async fn follows_moved(
    users: &Users,
    route: &Route,
    session: &SessionRef,
    follows: &[String],
) {
    if follows.is_empty() {
        return;
    }
    // Within the limit: the old node held it to it.
    if let Ok((_, first)) = users.follow(session, follows.to_vec(), usize::MAX) {
        follow(users, route, first).await;
    }
}

/// This node follows users it owns: what every node said of them.
fn follow_here(users: &Users, route: &Route, user_ids: &[String]) {
    let known = users.directory().follow(route.me, user_ids);
    for presence in &known {
        users.remote_presence(presence);
    }
}

/// Another node (`from`) follows these users, at their owner: what every
/// node said of them.
pub(crate) fn followed_by(users: &Users, from: NodeId, user_ids: &[String]) -> Answer {
    Answer::Presence(users.directory().follow(from, user_ids))
}

/// What an owner answered a follow: for the followers here.
pub(crate) fn note_answer(users: &Users, answer: &Answer) {
    if let Answer::Presence(known) = answer {
        for presence in known {
            users.remote_presence(presence);
        }
    }
}

/// An invite sent or gone, at the party's home: to the invitee's owner.
pub(crate) fn invite(users: &Users, route: &Route, notice: InviteNotice) {
    let owner = match route.clustered() {
        true => route.owner_of(notice_user(&notice)),
        false => route.me,
    };
    match owner == route.me {
        true => owned_invite(users, route, notice),
        false => route.send_to(
            owner,
            &ControlMessage::Directory(DirectoryMessage::Invite(notice)),
        ),
    }
}

fn notice_user(notice: &InviteNotice) -> &str {
    match notice {
        InviteNotice::Sent { user_id, .. } | InviteNotice::Gone { user_id, .. } => user_id,
    }
}

/// An invite sent or gone, at the invitee's owner: kept, and told to the
/// nodes with sessions of the invitee (this one's own sessions included).
fn owned_invite(users: &Users, route: &Route, notice: InviteNotice) {
    let mut nodes = users.directory().invite(&notice);
    if !route.clustered() {
        nodes = vec![route.me];
    }
    for node in nodes {
        match node == route.me {
            true => users.notice(notice.clone()),
            false => route.send_to(
                node,
                &ControlMessage::Directory(DirectoryMessage::InviteTold(notice.clone())),
            ),
        }
    }
}

/// The user's pending invites: kept by its owner (asked when another).
pub(crate) async fn invites(
    users: &Users,
    route: &Route,
    user_id: &str,
    now_ms: u64,
) -> Vec<PartyInvite> {
    let owner = route.owner_of(user_id);
    if owner == route.me || !route.clustered() {
        return users.directory().invites(user_id, now_ms);
    }
    match route
        .ask_node(owner, Question::Invites(user_id.to_string()))
        .await
    {
        Some(Answer::Invites(invites)) => invites,
        _ => Vec::new(),
    }
}

/// A directory message from node `from`.
pub(crate) fn on_message(users: &Users, route: &Route, from: NodeId, message: DirectoryMessage) {
    match message {
        DirectoryMessage::Presence(presence) => owned_presence(users, route, presence),
        DirectoryMessage::Told(presence) => users.remote_presence(&presence),
        DirectoryMessage::Unfollow(user_ids) => users.directory().unfollow(from, &user_ids),
        DirectoryMessage::Invite(notice) => owned_invite(users, route, notice),
        DirectoryMessage::InviteTold(notice) => users.notice(notice),
        DirectoryMessage::HomeInvites(invites) => users.directory().home_invites(invites),
    }
}

/// The live nodes changed: the new owners hear what this node holds of
/// the users whose owner changed (its sessions, its follows). The
/// follows' answers are noted as they arrive. Invites: `invites_moved`.
pub(crate) fn reregister(users: &Users, route: &Route) {
    if !route.clustered() {
        return;
    }
    let mut follows: HashMap<NodeId, Vec<String>> = HashMap::new();
    for told in users.reregister(route.me, |user_id| route.owner_of(user_id)) {
        if let Some(presence) = told.presence {
            to_owner(users, route, told.owner, presence);
        }
        if told.follows {
            follows.entry(told.owner).or_default().push(told.user_id);
        }
    }
    for (owner, user_ids) in follows {
        match owner == route.me {
            true => follow_here(users, route, &user_ids),
            false => route.ask_no_wait(owner, Question::Follow(user_ids)),
        }
    }
}

/// The live nodes changed (`before`: the other nodes whose books this node
/// relied on before; a node lost or restarted in this change is not among
/// them). As the home of parties, this node sends each new owner the
/// pending invites (`pending`, of the parties homed here) of the users it
/// now owns; as an owner, it drops the invites of the users it no longer
/// owns. So an owner holds exactly what the homes hold: an invite whose
/// owner was lost is sent again, one that ended where only the lost owner
/// heard of it is not.
pub(crate) fn invites_moved(
    users: &Users,
    route: &Route,
    before: &[NodeId],
    pending: impl FnOnce() -> Vec<(String, PartyInvite)>,
) {
    if !route.clustered() {
        return;
    }
    let owner_before = |user_id: &str| route.owner_among(user_id, before);
    let me = route.me;
    users
        .directory()
        .release_invites(|user_id| owner_before(user_id) == me && route.owner_of(user_id) != me);
    let mut by_owner: HashMap<NodeId, Vec<(String, PartyInvite)>> = HashMap::new();
    for (user_id, invite) in pending() {
        let owner = route.owner_of(&user_id);
        if owner != owner_before(&user_id) {
            by_owner.entry(owner).or_default().push((user_id, invite));
        }
    }
    for (owner, invites) in by_owner {
        match owner == me {
            true => users.directory().home_invites(invites),
            false => route.send_to(
                owner,
                &ControlMessage::Directory(DirectoryMessage::HomeInvites(invites)),
            ),
        }
    }
}

/// Node `tag` is lost: its sessions go offline for the followers here, and
/// what it said is out of this node's books.
pub(crate) fn node_lost(users: &Users, tag: NodeId) {
    users.node_lost(tag);
    users.directory().node_lost(tag);
}

/// Every heartbeat: forgets what has served its time.
pub(crate) fn tidy(users: &Users, route: &Route, now_ms: u64) {
    let keep_for = keep_for(route);
    users.tidy(keep_for);
    let owned = |user_id: &str| route.owner_of(user_id) == route.me;
    users.directory().tidy(keep_for, now_ms, owned);
}
