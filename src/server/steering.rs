//! Steering each packet to the worker that owns its connection
//! (`--workers N`): N UDP sockets bound with SO_REUSEPORT to one address,
//! connection ids that name their worker, and a classic BPF program on the
//! socket group (SO_ATTACH_REUSEPORT_CBPF) that reads the name.
//!
//! **The id.** 8 bytes, exactly quinn's `HashedConnectionIdGenerator`'s:
//! 3 random bytes, then 5 bytes of a keyed hash of them (the key derived
//! from `--reset-key-file`, else one random key per process). The low
//! `b` bits of byte 0 are the worker's index, `b` the bits that hold
//! N - 1: a worker draws ids until one names it (about 2^b draws, a
//! few microseconds at 256 workers, once per connection id). So every id
//! a worker issues validates as a plain hashed id under the same key:
//! nodes of any `--workers` sharing a reset key still recognise each
//! other's ids and reset each other's lost clients; each worker keeps 2^(24-b)
//! ids, and the process 2^24, as one quinn endpoint does.
//!
//! **The program** (the UDP payload starts at offset 0):
//!
//! ```text
//!   ldb [0]            ; first byte
//!   jset #0x80, long   ; header form
//!   ldb [1]            ; short header: the id follows the first byte
//!   ja pick
//! long:
//!   ldb [6]            ; long header: flags, version (4), id length, id
//! pick:
//!   and #MASK          ; the worker's bits
//!   mod #N             ; a client's own first id is random: any worker
//!   ret a              ; the socket's index in the group
//! ```
//!
//! A packet too short to read returns 0 (worker 0), as classic BPF does
//! on a load out of bounds. A client's first Initial carries an id the
//! client made up: it lands on the worker its first byte picks, and so do
//! its retransmissions and 0-RTT packets (same id); from its next packet
//! on it uses the ids that worker issued. The index is the socket's place
//! in the kernel's group, which is the order the sockets joined it: they
//! are bound in worker order, and held until every worker has stopped
//! (a socket leaving the group would move the last one into its place).

// Off Linux the program is built by the tests alone.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use quinn_proto::{ConnectionId, ConnectionIdGenerator, HashedConnectionIdGenerator, InvalidCid};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The most workers: a worker's index fits the id's first byte.
pub const MAX_WORKERS: usize = 256;

/// The bits of an id's first byte that name its worker, for `count`
/// workers: the fewest that hold `count - 1`.
pub(crate) fn worker_mask(count: usize) -> u8 {
    let count = count.clamp(1, MAX_WORKERS);
    let bits = usize::BITS - (count - 1).leading_zeros();
    ((1u16 << bits) - 1) as u8
}

/// Packets that reached a worker for a connection it does not know (quinn
/// asks the generator to validate only such ids), by the worker their id
/// names: this one (a connection that ended, or a node's that died,
/// sharing the reset key) or another (a packet steered wrong: never, while
/// steering works).
#[derive(Debug, Default)]
pub(crate) struct UnknownPackets {
    pub(crate) this_worker: AtomicU64,
    pub(crate) other_worker: AtomicU64,
}

/// The connection ids of worker `index` of `count`.
pub(crate) struct WorkerIds {
    index: u8,
    mask: u8,
    hashed: HashedConnectionIdGenerator,
    unknown: Arc<UnknownPackets>,
}

impl WorkerIds {
    pub(crate) fn new(index: usize, count: usize, key: u64, unknown: Arc<UnknownPackets>) -> Self {
        let mask = worker_mask(count);
        WorkerIds {
            // `index < count <= MAX_WORKERS`, so it fits under the mask.
            index: (index as u8) & mask,
            mask,
            hashed: HashedConnectionIdGenerator::from_key(key),
            unknown,
        }
    }

    fn names_me(&self, cid: &ConnectionId) -> bool {
        cid.first()
            .is_some_and(|byte| byte & self.mask == self.index)
    }
}

impl ConnectionIdGenerator for WorkerIds {
    fn generate_cid(&mut self) -> ConnectionId {
        // Drawn until it names this worker: the hash covers byte 0 too, so
        // the id must come whole from the hashed generator. Ends: each
        // draw names this worker with probability 2^-b (the index is
        // below the mask).
        loop {
            let cid = self.hashed.generate_cid();
            if self.names_me(&cid) {
                return cid;
            }
        }
    }

    fn validate(&self, cid: &ConnectionId) -> Result<(), InvalidCid> {
        self.hashed.validate(cid)?;
        let counter = match self.names_me(cid) {
            true => &self.unknown.this_worker,
            false => &self.unknown.other_worker,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn cid_len(&self) -> usize {
        self.hashed.cid_len()
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
}

/// A UDP socket for `listen`, its buffers enlarged to `buffer` bytes (0:
/// the system's), dual-stack on IPv6; bound when `bind`.
pub(crate) fn udp_socket(listen: SocketAddr, buffer: usize) -> io::Result<socket2::Socket> {
    let domain = socket2::Domain::for_address(listen);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if buffer > 0 {
        // Best effort: a smaller buffer than asked only costs kernel drops.
        let _ = socket.set_recv_buffer_size(buffer);
        let _ = socket.set_send_buffer_size(buffer);
    }
    if listen.is_ipv6() {
        let _ = socket.set_only_v6(false);
    }
    Ok(socket)
}

/// Why the workers cannot share the address: the kernel refused the
/// program (or this system has none), so packets could not be steered.
#[derive(Debug, thiserror::Error)]
#[error("the kernel refused the packet steering program (SO_ATTACH_REUSEPORT_CBPF): {0}")]
pub struct SteeringRefused(pub io::Error);

/// What `bind_group` could not do.
#[derive(Debug)]
pub(crate) enum GroupError {
    /// The address: taken, or not ours.
    Bind(io::Error),
    /// The steering program.
    Steering(SteeringRefused),
}

/// `count` sockets bound to `listen` in one SO_REUSEPORT group, in worker
/// order, with the steering program attached (a deliberately invalid one
/// with `refuse`, the test switch that shows the fallback).
///
/// A plain socket is bound first, alone, and let go: that fails if anyone
/// holds the address, as a single server's bind does, and for port 0 it
/// picks a port nobody holds. Without it, a socket with SO_REUSEPORT would
/// join another process's group on that port (the same user's) without a
/// word, and share its packets; the kernel even picks such a port for
/// port 0. What is left is the instant between the two binds.
#[cfg(target_os = "linux")]
pub(crate) fn bind_group(
    listen: SocketAddr,
    count: usize,
    buffer: usize,
    refuse: bool,
) -> Result<Vec<socket2::Socket>, GroupError> {
    let probe = udp_socket(listen, 0).map_err(GroupError::Bind)?;
    probe.bind(&listen.into()).map_err(GroupError::Bind)?;
    let address = probe
        .local_addr()
        .map_err(GroupError::Bind)?
        .as_socket()
        .ok_or_else(|| GroupError::Bind(io::Error::other("not an IP address")))?;
    drop(probe);
    let mut sockets = Vec::with_capacity(count);
    for _ in 0..count {
        let socket = udp_socket(listen, buffer).map_err(GroupError::Bind)?;
        socket.set_reuse_port(true).map_err(GroupError::Bind)?;
        socket.bind(&address.into()).map_err(GroupError::Bind)?;
        sockets.push(socket);
    }
    let program = match refuse {
        false => program(count),
        true => refused_program(),
    };
    if let Some(first) = sockets.first() {
        attach(first, &program).map_err(|error| GroupError::Steering(SteeringRefused(error)))?;
    }
    Ok(sockets)
}

/// One classic BPF instruction (linux/filter.h's `struct sock_filter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Instruction {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

const fn op(code: u16, jt: u8, jf: u8, k: u32) -> Instruction {
    Instruction { code, jt, jf, k }
}

// linux/bpf_common.h
const BPF_LD: u16 = 0x00;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_B: u16 = 0x10;
const BPF_ABS: u16 = 0x20;
const BPF_K: u16 = 0x00;
const BPF_A: u16 = 0x10;
const BPF_AND: u16 = 0x50;
const BPF_MOD: u16 = 0x90;
const BPF_JA: u16 = 0x00;
const BPF_JSET: u16 = 0x40;

/// The QUIC header form bit: set in a long header.
const LONG_HEADER: u32 = 0x80;
/// Where the destination id starts: after the first byte (short header);
/// after the first byte, the version and the id's length (long header).
const SHORT_ID_AT: u32 = 1;
const LONG_ID_AT: u32 = 6;

/// The steering program for `count` workers (the module's comment reads
/// it out).
pub(crate) fn program(count: usize) -> Vec<Instruction> {
    let count = count.clamp(1, MAX_WORKERS) as u32;
    vec![
        op(BPF_LD | BPF_B | BPF_ABS, 0, 0, 0),
        op(BPF_JMP | BPF_JSET | BPF_K, 2, 0, LONG_HEADER),
        op(BPF_LD | BPF_B | BPF_ABS, 0, 0, SHORT_ID_AT),
        op(BPF_JMP | BPF_JA, 0, 0, 1),
        op(BPF_LD | BPF_B | BPF_ABS, 0, 0, LONG_ID_AT),
        op(
            BPF_ALU | BPF_AND | BPF_K,
            0,
            0,
            u32::from(worker_mask(count as usize)),
        ),
        op(BPF_ALU | BPF_MOD | BPF_K, 0, 0, count),
        op(BPF_RET | BPF_A, 0, 0, 0),
    ]
}

/// A program the kernel refuses (it does not end with a return): the
/// hidden `--refuse-steering` test switch, so the fallback is shown on the
/// kernel's own refusal.
fn refused_program() -> Vec<Instruction> {
    vec![op(BPF_LD | BPF_B | BPF_ABS, 0, 0, 0)]
}

/// Runs `program` on `packet` as the kernel would, for the tests: the
/// socket index it picks. Only the instructions `program` uses.
#[cfg(test)]
pub(crate) fn run(program: &[Instruction], packet: &[u8]) -> u32 {
    let (mut a, mut pc) = (0u32, 0usize);
    while let Some(ins) = program.get(pc) {
        pc += 1;
        match ins.code {
            c if c == BPF_LD | BPF_B | BPF_ABS => match packet.get(ins.k as usize) {
                Some(byte) => a = u32::from(*byte),
                None => return 0,
            },
            c if c == BPF_JMP | BPF_JSET | BPF_K => {
                pc += usize::from(if a & ins.k != 0 { ins.jt } else { ins.jf })
            }
            c if c == BPF_JMP | BPF_JA => pc += ins.k as usize,
            c if c == BPF_ALU | BPF_AND | BPF_K => a &= ins.k,
            c if c == BPF_ALU | BPF_MOD | BPF_K => a %= ins.k,
            c if c == BPF_RET | BPF_A => return a,
            other => panic!("instruction {other:#x} not modelled"),
        }
    }
    panic!("ran off the end of the program")
}

#[cfg(target_os = "linux")]
fn attach(socket: &socket2::Socket, program: &[Instruction]) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut filter: Vec<libc::sock_filter> = program
        .iter()
        .map(|ins| libc::sock_filter {
            code: ins.code,
            jt: ins.jt,
            jf: ins.jf,
            k: ins.k,
        })
        .collect();
    let fprog = libc::sock_fprog {
        len: u16::try_from(filter.len()).map_err(io::Error::other)?,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: `fprog` points at `filter`, alive for the call; the kernel
    // copies the program before it returns.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    match result {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Off Linux there is no program to steer with: one worker serves.
#[cfg(not(target_os = "linux"))]
pub(crate) fn bind_group(
    _listen: SocketAddr,
    _count: usize,
    _buffer: usize,
    _refuse: bool,
) -> Result<Vec<socket2::Socket>, GroupError> {
    Err(GroupError::Steering(SteeringRefused(io::Error::new(
        io::ErrorKind::Unsupported,
        "packet steering by connection id needs Linux",
    ))))
}

/// Turns UDP GRO off on `socket` (quinn turns it on). The kernel merges
/// packets of one 4-tuple into one buffer before it picks the socket, by
/// the first packet's id: a client endpoint with several connections
/// (one 4-tuple, ids of several workers) would have some of its packets
/// delivered to the wrong worker. Loopback never merges; network cards do.
#[cfg(target_os = "linux")]
pub(crate) fn receive_without_gro(socket: &socket2::Socket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let off: libc::c_int = 0;
    // SAFETY: a plain integer option, read by the kernel during the call.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_GRO,
            (&off as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    match result {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn receive_without_gro(_socket: &socket2::Socket) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_holds_every_index_and_no_more() {
        for (count, mask) in [(1, 0), (2, 1), (3, 3), (4, 3), (5, 7), (16, 15), (17, 31)] {
            assert_eq!(worker_mask(count), mask, "{count} workers");
        }
        assert_eq!(worker_mask(256), 255);
    }

    #[test]
    fn ids_name_their_worker_and_validate_as_plain_hashed_ids() {
        let key = 0x0123_4567_89ab_cdef;
        let plain = HashedConnectionIdGenerator::from_key(key);
        for count in [2, 3, 7, 256] {
            for index in [0, count / 2, count - 1] {
                let unknown = Arc::new(UnknownPackets::default());
                let mut ids = WorkerIds::new(index, count, key, unknown.clone());
                for _ in 0..50 {
                    let cid = ids.generate_cid();
                    assert_eq!(cid.len(), 8);
                    assert_eq!(usize::from(cid[0] & worker_mask(count)), index);
                    // A --workers 1 node with the same key knows it.
                    assert!(plain.validate(&cid).is_ok());
                    assert!(ids.validate(&cid).is_ok());
                }
                assert_eq!(unknown.this_worker.load(Ordering::Relaxed), 50);
                assert_eq!(unknown.other_worker.load(Ordering::Relaxed), 0);
            }
        }
    }

    #[test]
    fn another_workers_id_is_counted_as_steered_wrong_and_a_forged_one_not_at_all() {
        let unknown = Arc::new(UnknownPackets::default());
        let mut zero = WorkerIds::new(0, 2, 7, Arc::default());
        let one = WorkerIds::new(1, 2, 7, unknown.clone());
        let cid = zero.generate_cid();
        assert!(one.validate(&cid).is_ok());
        assert_eq!(unknown.other_worker.load(Ordering::Relaxed), 1);
        let forged = ConnectionId::new(&[1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(one.validate(&forged).is_err());
        let other_key = WorkerIds::new(0, 2, 8, Arc::default());
        assert!(other_key.validate(&cid).is_err());
        assert_eq!(unknown.this_worker.load(Ordering::Relaxed), 0);
    }

    /// A short-header packet: form bit clear, then the id.
    fn short(id: &[u8]) -> Vec<u8> {
        let mut packet = vec![0x40];
        packet.extend_from_slice(id);
        packet.extend_from_slice(&[0xaa; 20]);
        packet
    }

    /// A long-header packet: form bit set, version 1, the id's length, the id.
    fn long(id: &[u8]) -> Vec<u8> {
        let mut packet = vec![0xc3, 0, 0, 0, 1, id.len() as u8];
        packet.extend_from_slice(id);
        packet.extend_from_slice(&[0, 0x55, 0x55]);
        packet
    }

    #[test]
    fn the_program_picks_the_worker_an_id_names_in_either_header() {
        for count in [2usize, 3, 4, 5, 16, 200, 256] {
            let program = program(count);
            for index in 0..count {
                let mut ids = WorkerIds::new(index, count, 99, Arc::default());
                let cid = ids.generate_cid();
                assert_eq!(run(&program, &short(&cid)) as usize, index);
                assert_eq!(run(&program, &long(&cid)) as usize, index);
            }
        }
    }

    #[test]
    fn a_clients_own_id_and_a_runt_land_on_a_worker_that_exists() {
        for count in [2usize, 3, 5, 7] {
            let program = program(count);
            for first in 0..=255u8 {
                let id = [first, 1, 2, 3, 4, 5, 6, 7];
                assert!((run(&program, &long(&id)) as usize) < count);
                assert!((run(&program, &short(&id)) as usize) < count);
            }
            assert_eq!(run(&program, &[]), 0);
            assert_eq!(run(&program, &[0xc0, 0, 0]), 0);
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_kernel_steers_each_packet_to_the_socket_its_id_names() {
        use std::net::UdpSocket;
        let count = 3;
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let sockets: Vec<UdpSocket> = bind_group(listen, count, 0, false)
            .unwrap_or_else(|_| panic!("the group binds and takes the program"))
            .into_iter()
            .map(UdpSocket::from)
            .collect();
        let addr = sockets[0].local_addr().unwrap();
        for socket in &sockets {
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
        }
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        for round in 0..2 {
            for (index, socket) in sockets.iter().enumerate() {
                let mut ids = WorkerIds::new(index, count, round, Arc::default());
                let cid = ids.generate_cid();
                for packet in [short(&cid), long(&cid)] {
                    client.send_to(&packet, addr).unwrap();
                    let mut buf = [0u8; 64];
                    let len = socket.recv(&mut buf).unwrap();
                    assert_eq!(&buf[..len], &packet[..], "worker {index} got it");
                }
            }
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_kernel_refuses_the_test_switchs_program() {
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        match bind_group(listen, 2, 0, true) {
            Err(GroupError::Steering(SteeringRefused(error))) => {
                assert_eq!(error.raw_os_error(), Some(libc::EINVAL))
            }
            Err(GroupError::Bind(error)) => panic!("bind failed: {error}"),
            Ok(_) => panic!("the kernel took a program without a return"),
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_address_another_group_holds_is_refused_not_joined() {
        // Another process's workers (the same user): a socket with
        // SO_REUSEPORT would join their group and take some of their
        // packets.
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let theirs = udp_socket(listen, 0).unwrap();
        theirs.set_reuse_port(true).unwrap();
        theirs.bind(&listen.into()).unwrap();
        let addr = theirs.local_addr().unwrap().as_socket().unwrap();
        assert!(matches!(
            bind_group(addr, 2, 0, false),
            Err(GroupError::Bind(_))
        ));
    }
}
