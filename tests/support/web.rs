//! A browser stand-in: web-transport-quinn's client opens a WebTransport
//! session on the server's port (ALPN h3, extended CONNECT to
//! `/partyline`), as a browser's `new WebTransport(url)` does, then speaks
//! partyline's frames on its first bidirectional stream and party data as
//! WebTransport datagrams. For the transport tests; the TypeScript client
//! is what browsers use. Included by tests/webtransport.rs alone.

use crate::support::WAIT;
use bytes::Bytes;
use partyline::protocol::{
    decode_body, encode_frame, frame_body_len, ClientFrame, Command, ErrorBody, Event, Hello,
    Identity, Reply, Resume, ServerFrame, Welcome, FRAME_HEADER_LEN, PROTOCOL_VERSION,
};
use rustls::pki_types::CertificateDer;
use std::collections::VecDeque;
use std::net::SocketAddr;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use web_transport_quinn::{ClientBuilder, Session};

/// Where and how the stand-in connects.
pub struct WebTarget<'a> {
    pub addr: SocketAddr,
    pub certs: &'a [CertificateDer<'static>],
    pub path: &'a str,
    /// The page's origin header; `None` sends none.
    pub origin: Option<&'a str>,
}

impl<'a> WebTarget<'a> {
    pub fn new(addr: SocketAddr, certs: &'a [CertificateDer<'static>]) -> Self {
        WebTarget {
            addr,
            certs,
            path: "/partyline",
            origin: Some("http://localhost:8080"),
        }
    }

    /// The WebTransport session alone (`Err`: what the CONNECT got).
    pub async fn session(&self) -> Result<Session, web_transport_quinn::ClientError> {
        let client = ClientBuilder::new()
            .with_server_certificates(self.certs.to_vec())
            .expect("client config");
        let url: url::Url = format!("https://localhost:{}{}", self.addr.port(), self.path)
            .parse()
            .unwrap();
        let mut request = web_transport_quinn::proto::ConnectRequest::new(url);
        if let Some(origin) = self.origin {
            request = request.with_header(
                web_transport_quinn::http::header::ORIGIN,
                origin.parse().unwrap(),
            );
        }
        client.connect(request).await
    }
}

pub struct WebClient {
    pub session: Session,
    send: web_transport_quinn::SendStream,
    frames: mpsc::UnboundedReceiver<ServerFrame>,
    /// Events read while waiting for a response.
    waiting: VecDeque<(u64, Event)>,
    next_id: u32,
    pub welcome: Welcome,
    pub last_event_seq: u64,
    reader: JoinHandle<()>,
}

impl WebClient {
    /// A new session (or `resume`) for dev user `user`.
    pub async fn connect(
        target: &WebTarget<'_>,
        user: &str,
        resume: Option<Resume>,
    ) -> Result<WebClient, ErrorBody> {
        let session = target.session().await.expect("WebTransport session");
        let (mut send, mut recv) = session.open_bi().await.expect("control stream");
        let hello = ClientFrame::Hello(Hello {
            version: PROTOCOL_VERSION,
            identity: Identity::Dev {
                user_id: user.to_string(),
                username: format!("{user}-name"),
            },
            resume,
        });
        send.write_all(&frame(&hello)).await.unwrap();
        let welcome = match read_frame(&mut recv).await {
            Some(ServerFrame::Welcome(welcome)) => welcome,
            Some(ServerFrame::Refused(refusal)) => return Err(refusal),
            other => panic!("expected Welcome or Refused, got {other:?}"),
        };
        let (tx, frames) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            while let Some(frame) = read_frame(&mut recv).await {
                if tx.send(frame).is_err() {
                    break;
                }
            }
        });
        Ok(WebClient {
            session,
            send,
            frames,
            waiting: VecDeque::new(),
            next_id: 1,
            last_event_seq: welcome.last_event_seq,
            welcome,
            reader,
        })
    }

    /// Sends one request and waits for its response (events read
    /// meanwhile are kept for `next_event`).
    pub async fn request(&mut self, command: Command) -> Result<Reply, ErrorBody> {
        let id = self.next_id;
        self.next_id += 1;
        let bytes = frame(&ClientFrame::Request { id, command });
        self.send.write_all(&bytes).await.unwrap();
        loop {
            match self.next_frame().await {
                ServerFrame::Response { id: got, result } if got == id => return result,
                ServerFrame::Event { seq, event } => self.waiting.push_back((seq, event)),
                other => panic!("expected response {id}, got {other:?}"),
            }
        }
    }

    async fn next_frame(&mut self) -> ServerFrame {
        tokio::time::timeout(WAIT, self.frames.recv())
            .await
            .expect("a frame within the limit")
            .expect("the control stream is open")
    }

    /// The next event, skipping none.
    pub async fn next_event(&mut self) -> Event {
        let (seq, event) = match self.waiting.pop_front() {
            Some(waiting) => waiting,
            None => match self.next_frame().await {
                ServerFrame::Event { seq, event } => (seq, event),
                other => panic!("expected an event, got {other:?}"),
            },
        };
        self.last_event_seq = seq;
        event
    }

    pub fn resume_ticket(&self) -> Resume {
        Resume {
            token: self.welcome.resume_token.clone(),
            last_event_seq: self.last_event_seq,
        }
    }

    /// The next party datagram, as received (the server's layout).
    pub async fn read_datagram(&self) -> Bytes {
        loop {
            let datagram = tokio::time::timeout(WAIT, self.session.read_datagram())
                .await
                .expect("a datagram within the limit")
                .expect("the session is open");
            // Zero-length: a keep-alive.
            if !datagram.is_empty() {
                return datagram;
            }
        }
    }

    /// Resets the control stream (what a browser does to the streams of a
    /// transport the server closed).
    pub fn reset_control(&mut self) {
        // Already closed by the server: nothing left to reset, fine too.
        let _ = self.send.reset(0);
    }

    /// Stops reading the control stream (STOP_SENDING, as a browser does
    /// to the streams of a transport the server closed): the reader and
    /// its stream are dropped.
    pub fn stop_control(&mut self) {
        self.reader.abort();
    }

    /// Ends the session as a page's `transport.close()` does.
    pub fn close(&self) {
        self.session.close(0, b"bye");
    }
}

impl Drop for WebClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn frame(message: &ClientFrame) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(message, &mut out).unwrap();
    out
}

async fn read_frame(recv: &mut web_transport_quinn::RecvStream) -> Option<ServerFrame> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    recv.read_exact(&mut header).await.ok()?;
    let len = frame_body_len(header).ok()?;
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await.ok()?;
    Some(decode_body(&body).expect("a server frame"))
}
