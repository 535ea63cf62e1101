//! A fault proxy of the tests' own: a TCP proxy on 127.0.0.1 between one
//! cluster node and the real nats-server, so that the faults of a real
//! network (a link that stalls with its TCP connections up, one that is
//! cut, one direction held) happen where the tests say, in CI, with no
//! signal sent to any process.
//!
//! - `hold(direction)` stops reading and forwarding that direction while
//!   every connection stays open (the kernel buffers, then the sender
//!   blocks): what was sent arrives late, in order, on `release`. Both
//!   directions held is a stalled link (a frozen NATS, as that node sees
//!   it); the node's own direction held is its link cut one way.
//! - `cut` closes every connection and refuses new ones until `heal`: the
//!   node sees its link go down, and reconnects once healed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Which way bytes flow through the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the node to NATS: what the node publishes.
    FromNode,
    /// From NATS to the node: what it hears (its own echoes included).
    ToNode,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct State {
    hold_from_node: bool,
    hold_to_node: bool,
    /// Bumped by every cut: connections of an older cut end.
    cuts: u64,
    cut: bool,
}

impl State {
    fn holds(&self, direction: Direction) -> bool {
        match direction {
            Direction::FromNode => self.hold_from_node,
            Direction::ToNode => self.hold_to_node,
        }
    }
}

/// A TCP proxy to `upstream` with faults on demand; stops when dropped.
pub struct FaultProxy {
    pub addr: SocketAddr,
    state: watch::Sender<State>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
    /// Connections accepted so far (a reconnect makes another).
    pub connections: Arc<AtomicU64>,
}

impl FaultProxy {
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr = listener.local_addr().expect("its address");
        let (state, watching) = watch::channel(State::default());
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let connections = Arc::<AtomicU64>::default();
        let accept = {
            let (tasks, connections) = (tasks.clone(), connections.clone());
            tokio::spawn(async move {
                while let Ok((node, _)) = listener.accept().await {
                    if watching.borrow().cut {
                        continue; // dropped: closed at once
                    }
                    let Ok(nats) = TcpStream::connect(upstream).await else {
                        continue;
                    };
                    connections.fetch_add(1, Ordering::Relaxed);
                    let _ = node.set_nodelay(true);
                    let _ = nats.set_nodelay(true);
                    let (node_read, node_write) = node.into_split();
                    let (nats_read, nats_write) = nats.into_split();
                    let mut tasks = tasks.lock().unwrap();
                    tasks.retain(|task| !task.is_finished());
                    let from_node =
                        pump(node_read, nats_write, Direction::FromNode, watching.clone());
                    let to_node = pump(nats_read, node_write, Direction::ToNode, watching.clone());
                    tasks.push(tokio::spawn(from_node));
                    tasks.push(tokio::spawn(to_node));
                }
            })
        };
        FaultProxy {
            addr,
            state,
            tasks,
            accept,
            connections,
        }
    }

    /// The URL a node gives as `--cluster`.
    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    /// Stops reading and forwarding `direction`; connections stay open.
    pub fn hold(&self, direction: Direction) {
        self.state.send_modify(|state| match direction {
            Direction::FromNode => state.hold_from_node = true,
            Direction::ToNode => state.hold_to_node = true,
        });
    }

    /// Both directions held: the link stalls, TCP up.
    pub fn stall(&self) {
        self.hold(Direction::FromNode);
        self.hold(Direction::ToNode);
    }

    /// Closes every connection, and every new one until `heal`.
    pub fn cut(&self) {
        self.state.send_modify(|state| {
            state.cut = true;
            state.cuts += 1;
        });
    }

    /// Everything flows again: what was held first, in order.
    pub fn heal(&self) {
        self.state.send_modify(|state| {
            state.hold_from_node = false;
            state.hold_to_node = false;
            state.cut = false;
        });
    }
}

/// Forwards `direction` while it is not held, until either end closes or a
/// cut ends the connection.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    direction: Direction,
    mut watching: watch::Receiver<State>,
) {
    let born = watching.borrow().cuts;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // Held: nothing is read (the sender's buffers fill), nothing sent.
        if !flowing(&mut watching, born, direction).await {
            return;
        }
        let read = tokio::select! {
            read = from.read(&mut buf) => read,
            _ = watching.wait_for(|state| state.cuts != born || state.holds(direction)) => continue,
        };
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // A chunk read just before a hold is held too.
        if !flowing(&mut watching, born, direction).await || to.write_all(&buf[..n]).await.is_err()
        {
            return;
        }
    }
}

/// Waits while `direction` is held; false once a cut ended the connection.
async fn flowing(watching: &mut watch::Receiver<State>, born: u64, direction: Direction) -> bool {
    let state = watching
        .wait_for(|state| state.cuts != born || !state.holds(direction))
        .await;
    state.is_ok_and(|state| state.cuts == born)
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}
