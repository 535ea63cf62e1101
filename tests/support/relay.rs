//! A fault-injecting UDP relay between real clients and the real server, on
//! 127.0.0.1. One upstream socket per client, so the server sees each client
//! at its own address; `rebind` swaps that socket to simulate a NAT change.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

#[derive(Default)]
struct Faults {
    blackhole: AtomicBool,
    /// Drops what the server sends while on (one way only).
    hold_to_clients: AtomicBool,
    /// Packets dropped per million, each direction.
    drop_per_million: AtomicU32,
    delay_ms: AtomicU64,
    rng: AtomicU64,
    forwarded: AtomicU64,
    dropped: AtomicU64,
}

impl Faults {
    /// Seeded xorshift: reproducible loss patterns.
    fn should_drop(&self) -> bool {
        if self.blackhole.load(Ordering::Relaxed) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        let per_million = self.drop_per_million.load(Ordering::Relaxed);
        if per_million == 0 {
            return false;
        }
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.store(x, Ordering::Relaxed);
        let dropped = (x % 1_000_000) < u64::from(per_million);
        if dropped {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        dropped
    }

    fn delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms.load(Ordering::Relaxed))
    }
}

struct Upstream {
    socket: Arc<UdpSocket>,
    reader: JoinHandle<()>,
}

pub struct Relay {
    pub addr: SocketAddr,
    faults: Arc<Faults>,
    upstreams: Arc<Mutex<HashMap<SocketAddr, Upstream>>>,
    front: Arc<UdpSocket>,
    /// Where new flows go; `move_to` changes it, as a load balancer would.
    server: Arc<Mutex<SocketAddr>>,
    task: JoinHandle<()>,
}

fn send_later(socket: Arc<UdpSocket>, packet: Vec<u8>, to: SocketAddr, delay: Duration) {
    if delay.is_zero() {
        let _ = socket.try_send_to(&packet, to);
    } else {
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = socket.send_to(&packet, to).await;
        });
    }
}

fn spawn_reader(
    upstream: Arc<UdpSocket>,
    front: Arc<UdpSocket>,
    client: SocketAddr,
    faults: Arc<Faults>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok(len) = upstream.recv(&mut buf).await {
            if faults.hold_to_clients.load(Ordering::Relaxed) || faults.should_drop() {
                continue;
            }
            faults.forwarded.fetch_add(1, Ordering::Relaxed);
            send_later(front.clone(), buf[..len].to_vec(), client, faults.delay());
        }
    })
}

impl Relay {
    pub async fn start(server: SocketAddr) -> Relay {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = front.local_addr().unwrap();
        let faults = Arc::new(Faults {
            rng: AtomicU64::new(0x9e37_79b9_7f4a_7c15),
            ..Faults::default()
        });
        let upstreams: Arc<Mutex<HashMap<SocketAddr, Upstream>>> = Arc::default();
        let server = Arc::new(Mutex::new(server));
        let task = {
            let (front, faults, upstreams) = (front.clone(), faults.clone(), upstreams.clone());
            let target = server.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                while let Ok((len, client)) = front.recv_from(&mut buf).await {
                    if faults.should_drop() {
                        continue;
                    }
                    let existing = upstreams
                        .lock()
                        .unwrap()
                        .get(&client)
                        .map(|u| u.socket.clone());
                    let socket = match existing {
                        Some(socket) => socket,
                        None => {
                            let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                            let server = *target.lock().unwrap();
                            socket.connect(server).await.unwrap();
                            let reader =
                                spawn_reader(socket.clone(), front.clone(), client, faults.clone());
                            upstreams.lock().unwrap().insert(
                                client,
                                Upstream {
                                    socket: socket.clone(),
                                    reader,
                                },
                            );
                            socket
                        }
                    };
                    faults.forwarded.fetch_add(1, Ordering::Relaxed);
                    // Where the upstream is connected (`move_to` reconnects
                    // them all right after changing it): no syscall a packet.
                    let server = *target.lock().unwrap();
                    send_later(socket, buf[..len].to_vec(), server, faults.delay());
                }
            })
        };
        Relay {
            addr,
            faults,
            upstreams,
            front,
            server,
            task,
        }
    }

    /// Drops every packet both ways while on.
    pub fn blackhole(&self, on: bool) {
        self.faults.blackhole.store(on, Ordering::Relaxed);
    }

    /// Drops every packet from the server to the clients while on; what
    /// the clients send still arrives.
    pub fn hold_to_clients(&self, on: bool) {
        self.faults.hold_to_clients.store(on, Ordering::Relaxed);
    }

    /// Drops this fraction (0.0 to 1.0) of packets each way.
    pub fn loss(&self, fraction: f64) {
        self.faults
            .drop_per_million
            .store((fraction * 1_000_000.0) as u32, Ordering::Relaxed);
    }

    pub fn delay(&self, delay: Duration) {
        self.faults
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::Relaxed);
    }

    pub fn dropped(&self) -> u64 {
        self.faults.dropped.load(Ordering::Relaxed)
    }

    /// Sends every flow, old and new, to `server` from now on: what a load
    /// balancer does when its health check finds the old one dead.
    pub async fn move_to(&self, server: SocketAddr) {
        *self.server.lock().unwrap() = server;
        self.rebind().await;
    }

    /// Every client gets a new upstream port: to the server it looks like a
    /// NAT rebinding.
    pub async fn rebind(&self) {
        let server = *self.server.lock().unwrap();
        let clients: Vec<SocketAddr> = self.upstreams.lock().unwrap().keys().copied().collect();
        for client in clients {
            let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
            socket.connect(server).await.unwrap();
            let reader = spawn_reader(
                socket.clone(),
                self.front.clone(),
                client,
                self.faults.clone(),
            );
            if let Some(old) = self
                .upstreams
                .lock()
                .unwrap()
                .insert(client, Upstream { socket, reader })
            {
                old.reader.abort();
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
        for (_, upstream) in self.upstreams.lock().unwrap().drain() {
            upstream.reader.abort();
        }
    }
}
