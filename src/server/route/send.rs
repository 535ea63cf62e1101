//! Everything sent to a member, by where it lives: a session of this node
//! gets it on its connection; a proxy's goes to the member's node, once
//! per node and change (events) or per node and datagram (party data).

use super::Route;
use crate::party::{Delivery, Link};
use crate::protocol::{Event, PartyId, Presence, SessionId};
use crate::server::peers::{ControlMessage, DatagramMessage, NodeId, Outlet, RelayedEvent};
use crate::server::session::{Outbound, SessionLink, SessionRef};
use bytes::Bytes;
use std::sync::Arc;

impl SessionLink {
    /// Numbers, logs and queues an event for this member: on its
    /// connection here, or to its node.
    pub(crate) fn push_event(&self, event: Event) {
        match &self.remote {
            None => self.queue_event(event),
            Some(at) => {
                let to = vec![self.session_id()];
                let events = vec![RelayedEvent { to, event }];
                at.outlet.control(at.node, &ControlMessage::Events(events));
            }
        }
    }

    /// Queues a response or frame error: a forwarded command's answer goes
    /// to the caller's node, under the correlation id it ran with.
    pub(crate) fn push(&self, message: Outbound) {
        match &self.remote {
            None => self.queue(message),
            Some(at) => {
                if let Outbound::Response { id, result } = message {
                    let reply = ControlMessage::Reply { corr: id, result };
                    at.outlet.control(at.node, &reply);
                }
            }
        }
    }

    /// The node this member lives on, when not this one: how a message to
    /// another node names it.
    pub(crate) fn remote_node(&self) -> Option<NodeId> {
        self.remote.as_ref().map(|at| at.node)
    }

    /// A proxy's seat or request changed: its own node keeps the session's
    /// set of parties (for its limit, its end, and a lost home).
    fn tell_membership(&self, party_id: PartyId, held: bool) {
        if let Some(at) = &self.remote {
            let message = ControlMessage::Membership {
                session: self.session_id(),
                party_id,
                held,
            };
            at.outlet.control(at.node, &message);
        }
    }
}

impl Link for SessionRef {
    fn session_id(&self) -> SessionId {
        self.presence.session_id
    }

    fn attach(&self, party: PartyId) {
        self.note_party(party, true);
        self.tell_membership(party, true);
    }

    fn detach(&self, party: PartyId) {
        self.note_party(party, false);
        self.tell_membership(party, false);
    }
}

/// Events for members on other nodes, gathered per node so that one change
/// crosses to each node once.
#[derive(Default)]
pub(crate) struct EventBatches {
    batches: Vec<(NodeId, Arc<Outlet>, Vec<RelayedEvent>)>,
}

impl EventBatches {
    /// Sends `event` to `member`: at once when it lives here, else into
    /// its node's batch.
    pub(crate) fn push(&mut self, member: &SessionLink, event: Event) {
        let Some(at) = &member.remote else {
            return member.queue_event(event);
        };
        let at_index = match self
            .batches
            .iter()
            .position(|(node, _, _)| *node == at.node)
        {
            Some(index) => index,
            None => {
                self.batches.push((at.node, at.outlet.clone(), Vec::new()));
                self.batches.len() - 1
            }
        };
        let batch = &mut self.batches[at_index].2;
        let session = member.session_id();
        match batch.last_mut() {
            // The same event to several members there: named once.
            Some(last) if last.event == event => last.to.push(session),
            _ => batch.push(RelayedEvent {
                to: vec![session],
                event,
            }),
        }
    }

    /// Sends each node its batch.
    pub(crate) fn send(self) {
        for (node, outlet, events) in self.batches {
            outlet.control(node, &ControlMessage::Events(events));
        }
    }
}

impl Route {
    /// Hands each event to its recipient: one batch per other node.
    pub(crate) fn send_events(&self, deliveries: Vec<Delivery<SessionRef>>) {
        let mut batches = EventBatches::default();
        for delivery in deliveries {
            batches.push(&delivery.to, delivery.event);
        }
        batches.send();
    }

    /// Reliable party data to each recipient, from `sender`.
    pub(crate) fn send_data(
        &self,
        recipients: Vec<SessionRef>,
        party_id: PartyId,
        sender: &Presence,
        op_code: i64,
        data: &Bytes,
    ) {
        let mut batches = EventBatches::default();
        for recipient in recipients {
            let event = Event::Data {
                party_id,
                sender: sender.clone(),
                op_code,
                data: data.clone(),
            };
            batches.push(&recipient, event);
        }
        batches.send();
    }

    /// A datagram to a session of this node: at once, or through the
    /// coalescer.
    fn send_here(&self, session: SessionRef, datagram: Bytes) {
        match &self.coalescer {
            None => session.send_datagram_here(datagram),
            Some(coalescer) => coalescer.queue(session, datagram),
        }
    }

    /// Party data that another node fanned out, for sessions here.
    pub(crate) fn datagram_for(&self, sessions: Vec<SessionRef>, datagram: Bytes) {
        self.metrics.datagrams_out.inc_by(sessions.len() as u64);
        for session in sessions {
            self.send_here(session, datagram.clone());
        }
    }

    /// Sends `outgoing` to every recipient: sessions here directly (or
    /// through the coalescer), members on other nodes in one message per
    /// node. Drains `recipients`.
    pub(crate) fn fan_out(&self, recipients: &mut Vec<SessionRef>, outgoing: Bytes) {
        fan_out_datagram(self, recipients, outgoing)
    }

    /// Party data from a session here for a party homed elsewhere:
    /// checked against the seats its node knows of, then sent to the home
    /// once. `Ok(false)` when the party is homed here (the caller fans it
    /// out).
    pub(crate) fn datagram_to_home(
        &self,
        session: &SessionRef,
        party_id: PartyId,
        op_code: i64,
        payload: &Bytes,
    ) -> Result<bool, ()> {
        if self.is_here(party_id) {
            return Ok(false);
        }
        if !session.holds(party_id) {
            return Err(());
        }
        self.outlet.datagram(
            crate::server::peers::home_of(party_id),
            &DatagramMessage::ToHome {
                party_id,
                sender: session.session_id(),
                op_code,
                payload: payload.clone(),
            },
        );
        Ok(true)
    }
}

/// See [`Route::fan_out`].
pub(crate) fn fan_out_datagram(route: &Route, recipients: &mut Vec<SessionRef>, outgoing: Bytes) {
    let mut remote: Vec<(NodeId, Vec<SessionId>, Arc<Outlet>)> = Vec::new();
    let mut here = 0;
    for recipient in recipients.drain(..) {
        match &recipient.remote {
            None => {
                here += 1;
                route.send_here(recipient, outgoing.clone());
            }
            Some(at) => match remote.iter_mut().find(|(node, _, _)| *node == at.node) {
                Some((_, to, _)) => to.push(recipient.session_id()),
                None => remote.push((at.node, vec![recipient.session_id()], at.outlet.clone())),
            },
        }
    }
    route.metrics.datagrams_out.inc_by(here);
    for (node, to, outlet) in remote {
        outlet.datagram(
            node,
            &DatagramMessage::ToMembers {
                to,
                datagram: outgoing.clone(),
            },
        );
    }
}
