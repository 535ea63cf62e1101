//! Reads the server's QUIC counters from its Prometheus endpoint
//! (`partyline serve --metrics ADDR`), so a run can say whether the
//! server-to-client direction lost packets or cut its congestion window.

use serde::Serialize;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The server's transport counters at one instant, or their change over
/// an interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServerTransport {
    pub packets_sent: u64,
    pub packets_lost: u64,
    pub congestion_events: u64,
    pub udp_datagrams_sent: u64,
    /// Datagrams the server handed to quinn.
    pub datagrams_handed: u64,
    /// DATAGRAM frames quinn sent. `datagrams_handed` minus these were
    /// waiting in quinn's queue at the edges, or dropped when it
    /// overflowed: over a whole window, in practice, dropped.
    pub datagram_frames_sent: u64,
}

impl ServerTransport {
    pub fn since(self, earlier: ServerTransport) -> ServerTransport {
        ServerTransport {
            packets_sent: self.packets_sent.saturating_sub(earlier.packets_sent),
            packets_lost: self.packets_lost.saturating_sub(earlier.packets_lost),
            congestion_events: self
                .congestion_events
                .saturating_sub(earlier.congestion_events),
            udp_datagrams_sent: self
                .udp_datagrams_sent
                .saturating_sub(earlier.udp_datagrams_sent),
            datagrams_handed: self
                .datagrams_handed
                .saturating_sub(earlier.datagrams_handed),
            datagram_frames_sent: self
                .datagram_frames_sent
                .saturating_sub(earlier.datagram_frames_sent),
        }
    }

    /// Parses the exposition text; `None` when a series is missing (an
    /// older server, or not partyline).
    pub fn parse(text: &str) -> Option<ServerTransport> {
        let value = |name: &str| series(text, name);
        Some(ServerTransport {
            packets_sent: value("partyline_transport_packets_sent_total")?,
            packets_lost: value("partyline_transport_packets_lost_total")?,
            congestion_events: value("partyline_transport_congestion_events_total")?,
            udp_datagrams_sent: value(
                "partyline_transport_udp_datagrams_total{direction=\"out\"}",
            )?,
            datagrams_handed: value("partyline_transport_datagrams_handed_total")?,
            datagram_frames_sent: value("partyline_transport_datagram_frames_sent_total")?,
        })
    }
}

/// One blocking scrape; `None` on any failure (the run goes on without).
pub fn server_transport(addr: SocketAddr) -> Option<ServerTransport> {
    ServerTransport::parse(&metrics_text(addr)?)
}

/// The whole exposition text, in one blocking request; `None` on any failure.
pub fn metrics_text(addr: SocketAddr) -> Option<String> {
    let limit = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr, limit).ok()?;
    stream.set_read_timeout(Some(limit)).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: partyline\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

/// The value of one series (name and labels exactly as exposed, e.g.
/// `partyline_sessions` or `partyline_sessions_total{kind="new"}`).
pub fn series(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        line.strip_prefix(name)
            .filter(|rest| rest.starts_with(' '))
            .and_then(|rest| rest.trim().parse::<u64>().ok())
    })
}

/// A free TCP port on loopback for the server's metrics listener. The port
/// is released before the server binds it: another process could take it
/// in between, and then the run simply has no server transport figures.
pub fn free_loopback_addr() -> Option<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
    listener.local_addr().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_servers_series_and_ignores_longer_names() {
        let text = "\
partyline_transport_datagrams_handed_total 40
partyline_transport_packets_sent_total 100
partyline_transport_packets_lost_total 3
partyline_transport_congestion_events_total 1
partyline_transport_udp_datagrams_total{direction=\"out\"} 101
partyline_transport_udp_datagrams_total{direction=\"in\"} 7
partyline_transport_datagram_frames_sent_total 38
";
        let parsed = ServerTransport::parse(text).expect("all series present");
        assert_eq!(
            parsed,
            ServerTransport {
                packets_sent: 100,
                packets_lost: 3,
                congestion_events: 1,
                udp_datagrams_sent: 101,
                datagrams_handed: 40,
                datagram_frames_sent: 38,
            }
        );
        let later = ServerTransport {
            packets_lost: 5,
            ..parsed
        };
        assert_eq!(later.since(parsed).packets_lost, 2);
        assert_eq!(ServerTransport::parse("partyline_sessions 1\n"), None);
    }
}
