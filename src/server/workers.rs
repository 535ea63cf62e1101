//! One process, several workers (`partyline serve --workers N`): N OS
//! threads, each a single-threaded tokio runtime running a whole
//! [`Server`] on its own UDP socket. The sockets share one address in an
//! SO_REUSEPORT group, and the kernel hands each packet to the worker that
//! owns its connection, read from the connection id (the steering module).
//!
//! The workers are nodes `w0`, `w1`, ... of one in-memory hub (the routing
//! seam's in-process adapter): a party lives on the worker that created it,
//! members on other workers are reached through the hub as members on
//! other nodes are, and a delivery between members of one worker never
//! leaves its thread. The party rules and the cluster code see nothing
//! new. What the process shares beyond that (the state module's
//! `Process`): the limits per user and per address, the count of
//! handshakes and `--max-sessions`, so that they hold for the process as
//! for one server; `/metrics` and the admin API are served by worker 0 for
//! the whole process. docs/ARCHITECTURE.md, "Workers".

use super::peers::hub::MemoryHub;
use super::route::NodeTimings;
use super::state::{Process, Shared, WorkerPlace};
use super::steering::{self, GroupError, SteeringRefused, UnknownPackets, MAX_WORKERS};
use super::{
    hooks::Hooks, quinn_server_config, worker_endpoint_config, Server, ServerApi, ServerConfig,
    ServerError, WorkerSeat,
};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc as async_mpsc, oneshot};

/// How long the workers have to hear each other at start.
const CONVERGE_WITHIN: Duration = Duration::from_secs(10);

/// How the workers of a process are made.
#[derive(Clone, Debug)]
pub struct WorkersConfig {
    /// Workers: 2 to [`MAX_WORKERS`].
    pub count: usize,
    /// How the workers watch each other: a worker silent for
    /// `node_timeout` is lost, and the parties it held end, as a node's
    /// in a cluster. Default [`NodeTimings::default`] (3 s).
    pub timings: NodeTimings,
    /// The test switch: a steering program the kernel refuses, so that
    /// the fallback shows (`partyline serve --refuse-steering`).
    #[doc(hidden)]
    pub refuse_steering: bool,
}

impl WorkersConfig {
    pub fn new(count: usize) -> Self {
        WorkersConfig {
            count,
            timings: NodeTimings::default(),
            refuse_steering: false,
        }
    }
}

/// Why the workers did not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkersError {
    /// The kernel refused the steering program (or the system has none):
    /// one worker can still serve the address.
    #[error(transparent)]
    Steering(#[from] SteeringRefused),
    /// A worker could not start, as a server could not.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// A setting the workers cannot take.
    #[error("{0}")]
    Config(String),
    /// A worker's thread ended while the others served (it panicked):
    /// the process stops.
    #[error("worker {0} stopped on its own")]
    Exited(usize),
}

/// Starts the workers of a process. See [`Workers::start`].
pub struct Workers;

impl Workers {
    /// Binds the address for `workers.count` workers, attaches the
    /// steering program, and starts each worker on its own thread with
    /// `config` (the metrics and admin listeners on worker 0 only) and
    /// `hooks`. Returns once every worker serves and hears every other.
    /// Blocks the calling thread meanwhile (milliseconds).
    pub fn start(
        config: ServerConfig,
        workers: WorkersConfig,
        hooks: Option<Arc<dyn Hooks>>,
    ) -> Result<WorkersHandle, WorkersError> {
        let count = workers.count;
        if !(2..=MAX_WORKERS).contains(&count) {
            return Err(WorkersError::Config(format!(
                "workers must be 2 to {MAX_WORKERS}, got {count} (one worker is a plain server)"
            )));
        }
        if config.cluster.is_some() {
            return Err(WorkersError::Config(CLUSTER_REFUSAL.into()));
        }
        let server_config = quinn_server_config(&config)?;
        let sockets = steering::bind_group(
            config.listen,
            count,
            config.socket_buffer,
            workers.refuse_steering,
        )
        .map_err(|error| match error {
            GroupError::Steering(refused) => WorkersError::Steering(refused),
            GroupError::Bind(source) => ServerError::Bind {
                addr: config.listen,
                source,
            }
            .into(),
        })?;
        let addr = sockets
            .first()
            .and_then(|socket| socket.local_addr().ok())
            .and_then(|addr| addr.as_socket())
            .unwrap_or(config.listen);
        let mut starting = Starting {
            process: Arc::new(Process::new(&config)),
            process_key: random_key()?,
            hub: MemoryHub::new(),
            together: Arc::new(tokio::sync::Barrier::new(count)),
            config: ServerConfig {
                listen: addr,
                ..config
            },
            server_config,
            timings: workers.timings,
            hooks,
            count,
            running: Running::new(count),
            built: Vec::with_capacity(count),
        };
        for (index, socket) in sockets.into_iter().enumerate() {
            if let Err(error) = starting.spawn(index, socket) {
                starting.running.stop_blocking();
                return Err(error);
            }
        }
        starting.finish(addr)
    }
}

/// Why `--cluster` with `--workers` above 1 is refused, for now.
pub const CLUSTER_REFUSAL: &str = "several workers cannot join a cluster yet: each \
     worker would have to be a node on NATS as well as on the process's own hub. Run one \
     worker per node with --cluster (docs/CLUSTER.md, \"Workers\")";

/// One random key for the connection ids of every worker of a process.
fn random_key() -> Result<u64, ServerError> {
    use ring::rand::SecureRandom;
    let mut key = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| ServerError::Config("no random numbers for the connection id key".into()))?;
    Ok(u64::from_le_bytes(key))
}

/// The workers started so far, and how to stop them.
struct Running {
    threads: Vec<JoinHandle<()>>,
    /// Dropping a worker's sender stops it.
    stops: Vec<oneshot::Sender<()>>,
    /// Each socket of the group, held until every worker has stopped: a
    /// socket that left the group would move the last one into its place,
    /// and the ids would name the wrong sockets.
    sockets: Vec<socket2::Socket>,
    /// Each worker's index, as its thread ends.
    exited_tx: async_mpsc::UnboundedSender<usize>,
    exited: async_mpsc::UnboundedReceiver<usize>,
    /// Threads that ended, as far as `exited` told.
    ended: usize,
}

impl Running {
    fn new(count: usize) -> Self {
        let (exited_tx, exited) = async_mpsc::unbounded_channel();
        Running {
            threads: Vec::with_capacity(count),
            stops: Vec::with_capacity(count),
            sockets: Vec::with_capacity(count),
            exited_tx,
            exited,
            ended: 0,
        }
    }

    /// Stops every worker and waits for their threads (at start, when one
    /// could not start: nothing is serving yet).
    fn stop_blocking(&mut self) {
        self.stops.clear();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        self.sockets.clear();
    }

    /// Stops every worker and waits, without blocking the runtime, until
    /// each has closed its connections and its thread has ended.
    async fn stop(&mut self) {
        self.stops.clear();
        while self.ended < self.threads.len() {
            if self.exited.recv().await.is_none() {
                break;
            }
            self.ended += 1;
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        self.sockets.clear();
    }
}

/// What a worker reports once built: its state and listeners, or why not.
type Built = Result<(Arc<Shared>, Option<SocketAddr>, Option<SocketAddr>), ServerError>;

/// The workers being started.
struct Starting {
    process: Arc<Process>,
    process_key: u64,
    hub: MemoryHub,
    together: Arc<tokio::sync::Barrier>,
    config: ServerConfig,
    server_config: quinn::ServerConfig,
    timings: NodeTimings,
    hooks: Option<Arc<dyn Hooks>>,
    count: usize,
    running: Running,
    built: Vec<(Arc<Shared>, Option<SocketAddr>, Option<SocketAddr>)>,
}

impl Starting {
    /// Starts worker `index` on `socket`, and waits until it is built.
    fn spawn(&mut self, index: usize, socket: socket2::Socket) -> Result<(), WorkersError> {
        let held = socket.try_clone().map_err(|e| self.bind_error(e))?;
        let gro = socket.try_clone().map_err(|e| self.bind_error(e))?;
        let unknown = Arc::new(UnknownPackets::default());
        let mut config = self.config.clone();
        if index > 0 {
            // One endpoint of each for the process, on worker 0.
            config.metrics = None;
            config.admin = None;
        }
        let seat = WorkerSeat {
            endpoint: worker_endpoint_config(
                &config,
                index,
                self.count,
                self.process_key,
                unknown.clone(),
            ),
            socket: socket.into(),
            server: self.server_config.clone(),
            place: WorkerPlace {
                index,
                process: self.process.clone(),
                unknown,
            },
            together: self.together.clone(),
        };
        let (built_tx, built) = mpsc::channel::<Built>();
        let (stop, stopped) = oneshot::channel::<()>();
        let job = Job {
            index,
            config,
            seat,
            hub: self.hub.clone(),
            timings: self.timings,
            hooks: self.hooks.clone(),
            gro,
        };
        let exited = ExitNotice(self.running.exited_tx.clone(), index);
        let thread = std::thread::Builder::new()
            .name(format!("partyline-w{index}"))
            .spawn(move || {
                // Told on the way out, a panic's too.
                let _exited = exited;
                job.run(built_tx, stopped);
            })
            .map_err(|e| self.bind_error(e))?;
        self.running.threads.push(thread);
        self.running.stops.push(stop);
        self.running.sockets.push(held);
        match built.recv() {
            Ok(Ok(report)) => {
                self.built.push(report);
                Ok(())
            }
            Ok(Err(error)) => Err(error.into()),
            Err(_) => Err(WorkersError::Exited(index)),
        }
    }

    fn bind_error(&self, source: std::io::Error) -> WorkersError {
        ServerError::Bind {
            addr: self.config.listen,
            source,
        }
        .into()
    }

    /// Every worker is built: they learn of each other, and the handle is
    /// given once each hears all the others (a party of another worker is
    /// reachable from the first command on).
    fn finish(mut self, addr: SocketAddr) -> Result<WorkersHandle, WorkersError> {
        let workers: Vec<Arc<Shared>> = self.built.iter().map(|(w, _, _)| w.clone()).collect();
        self.process.set_workers(&workers);
        let deadline = Instant::now() + CONVERGE_WITHIN;
        let others = self.count - 1;
        while !workers
            .iter()
            .all(|w| w.route().peer_names().len() == others)
        {
            if Instant::now() > deadline {
                self.running.stop_blocking();
                return Err(WorkersError::Config(format!(
                    "the workers did not hear each other within {} s",
                    CONVERGE_WITHIN.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let (metrics, admin) = self
            .built
            .first()
            .map(|(_, metrics, admin)| (*metrics, *admin))
            .unwrap_or_default();
        Ok(WorkersHandle {
            addr,
            metrics,
            admin,
            workers,
            running: self.running,
        })
    }
}

/// Sends its worker's index when dropped: when the thread ends, however.
struct ExitNotice(async_mpsc::UnboundedSender<usize>, usize);

impl Drop for ExitNotice {
    fn drop(&mut self) {
        let _ = self.0.send(self.1);
    }
}

/// What one worker's thread runs.
struct Job {
    index: usize,
    config: ServerConfig,
    seat: WorkerSeat,
    hub: MemoryHub,
    timings: NodeTimings,
    hooks: Option<Arc<dyn Hooks>>,
    /// Its socket again, to turn GRO off once quinn turned it on.
    gro: socket2::Socket,
}

impl Job {
    /// Builds the worker's server on a runtime of its own, reports it, and
    /// serves until `stopped` (or its sender is dropped).
    fn run(self, built: mpsc::Sender<Built>, stopped: oneshot::Receiver<()>) {
        let index = self.index;
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                let why = format!("worker {index} could not start its runtime: {error}");
                let _ = built.send(Err(ServerError::Config(why)));
                return;
            }
        };
        // Every line this worker logs says which it is: all of its tasks
        // run on this thread.
        let span = tracing::info_span!("worker", index);
        let _entered = span.enter();
        runtime.block_on(async move {
            let server = Server::builder(self.config)
                .shared_hooks(self.hooks)
                .seat(self.seat)
                .hub(&self.hub, &format!("w{index}"), self.timings)
                .build();
            let server = match server {
                Ok(server) => server,
                Err(error) => {
                    let _ = built.send(Err(error));
                    return;
                }
            };
            if let Err(error) = steering::receive_without_gro(&self.gro) {
                tracing::warn!(%error, worker = index, "could not turn UDP GRO off: a client with several connections behind one port may be steered wrong");
            }
            drop(self.gro);
            let report = (
                server.shared.clone(),
                server.metrics_addr(),
                server.admin_addr(),
            );
            if built.send(Ok(report)).is_err() {
                return;
            }
            server
                .run_until(async {
                    let _ = stopped.await;
                })
                .await;
        });
    }
}

/// The workers of a running process.
pub struct WorkersHandle {
    addr: SocketAddr,
    metrics: Option<SocketAddr>,
    admin: Option<SocketAddr>,
    workers: Vec<Arc<Shared>>,
    running: Running,
}

impl WorkersHandle {
    /// The address every worker serves.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the Prometheus metrics of the whole process are served.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
    }

    /// Where the admin API is served (it sees every worker's sessions and
    /// parties).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// How many workers serve.
    pub fn count(&self) -> usize {
        self.workers.len()
    }

    /// The server-side API: worker 0's, which reaches the others through
    /// the hub as a node reaches the others of its cluster.
    pub fn api(&self) -> ServerApi {
        ServerApi {
            shared: self.workers[0].clone(),
        }
    }

    /// Sessions alive on each worker, in worker order.
    pub fn session_counts(&self) -> Vec<usize> {
        self.workers.iter().map(|w| w.session_count()).collect()
    }

    /// Parties alive in the process.
    pub fn party_count(&self) -> usize {
        self.workers.iter().map(|w| w.table.len()).sum()
    }

    /// Serves until `shutdown` completes, then stops every worker as one
    /// server stops, and waits for them. Stops early, with
    /// [`WorkersError::Exited`], when a worker's thread ends on its own.
    pub async fn run_until(
        mut self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), WorkersError> {
        let outcome = tokio::select! {
            _ = shutdown => Ok(()),
            Some(index) = self.running.exited.recv() => {
                self.running.ended += 1;
                Err(WorkersError::Exited(index))
            }
        };
        self.running.stop().await;
        outcome
    }

    /// Stops every worker as Ctrl-C would, and waits for them.
    pub async fn shutdown(mut self) {
        self.running.stop().await;
    }
}
