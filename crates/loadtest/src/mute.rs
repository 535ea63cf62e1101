//! A client endpoint whose socket can be silenced: every packet in either
//! direction is dropped from then on. Dropping a client on it afterwards
//! loses the session the way a pulled cable or a dead phone does: its
//! goodbye never leaves, and the server learns of the loss only from its
//! idle timeout (then the session's grace window runs).

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, Endpoint, EndpointConfig, UdpPoller};
use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

/// Silences the endpoint it came with. Cheap to clone.
#[derive(Clone, Default)]
pub struct Mute(Arc<AtomicBool>);

impl Mute {
    /// From now on nothing is sent or received.
    pub fn silence(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn is_silent(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

struct MuteableSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    mute: Mute,
}

impl fmt::Debug for MuteableSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MuteableSocket")
            .field("silent", &self.mute.is_silent())
            .finish()
    }
}

impl AsyncUdpSocket for MuteableSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        self.inner.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        if self.mute.is_silent() {
            // Reported sent: the packet is lost on the way, as on a dead link.
            return Ok(());
        }
        self.inner.try_send(transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            let received = ready!(self.inner.poll_recv(cx, bufs, meta))?;
            if !self.mute.is_silent() {
                return Poll::Ready(Ok(received));
            }
            // Silenced: discard and read on, until the socket is drained
            // and the inner poll registers the waker.
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.inner.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.inner.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}

/// A client endpoint of its own (one UDP socket) for one session, and the
/// switch that silences it. Must be called inside a tokio runtime.
pub fn muteable_endpoint(server: SocketAddr) -> io::Result<(Endpoint, Mute)> {
    let bind: SocketAddr = if server.is_ipv6() {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let socket = std::net::UdpSocket::bind(bind)?;
    let runtime = quinn::default_runtime()
        .ok_or_else(|| io::Error::other("no async runtime for the endpoint"))?;
    let mute = Mute::default();
    let socket = Arc::new(MuteableSocket {
        inner: runtime.wrap_udp_socket(socket)?,
        mute: mute.clone(),
    });
    let endpoint =
        Endpoint::new_with_abstract_socket(EndpointConfig::default(), None, socket, runtime)?;
    Ok((endpoint, mute))
}
