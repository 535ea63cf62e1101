//! The C ABI from several threads at once, as a game engine may call it:
//! commands and datagrams from worker threads while another thread polls.
//! Every command is answered exactly once, under its own request id.
mod support;

use partyline_ffi::*;
use std::collections::HashSet;
use std::ffi::CString;
use std::time::{Duration, Instant};

const THREADS: usize = 4;
const COMMANDS_PER_THREAD: usize = 20;

/// The client pointer, shared as a C program would share it.
#[derive(Clone, Copy)]
struct Shared(*mut PlClient);
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// Through a method, so closures capture the whole `Shared` (Send), not
    /// the bare pointer field.
    fn get(self) -> *mut PlClient {
        self.0
    }
}

/// Polls until `until` holds for an event (10 s at most).
fn poll_until(client: Shared, mut until: impl FnMut(&PlEvent) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut event = PlEvent::none();
    while Instant::now() < deadline {
        match unsafe { pl_client_poll(client.0, &mut event) } {
            1 if until(&event) => return,
            1 => {}
            0 => std::thread::sleep(Duration::from_millis(1)),
            error => panic!("poll failed: {error}"),
        }
    }
    panic!("no awaited event within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_sends_and_polls_from_several_threads_are_each_answered_once() {
    let server = support::start("threads").await;
    let address = CString::new(server.addr.to_string()).unwrap();
    let cert = CString::new(server.cert_pem.to_str().unwrap()).unwrap();
    tokio::task::spawn_blocking(move || {
        let user = c"ana";
        let client = Shared(unsafe {
            pl_client_connect(
                address.as_ptr(),
                std::ptr::null(),
                cert.as_ptr(),
                std::ptr::null(),
                0,
                user.as_ptr(),
                user.as_ptr(),
                std::ptr::null(),
            )
        });
        assert!(!client.0.is_null());
        poll_until(client, |e| e.kind == PL_EVENT_CONNECTED);

        // Each worker asks for a party nobody has, and sends it a datagram.
        let nowhere = c"67e55044-10b1-426f-9247-bb680e5fe0c8";
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                std::thread::spawn(move || {
                    (0..COMMANDS_PER_THREAD)
                        .map(|_| {
                            let sent = unsafe {
                                pl_send_data(client.get(), nowhere.as_ptr(), 1, b"x".as_ptr(), 1)
                            };
                            assert_eq!(sent, PL_OK);
                            unsafe { pl_get_party(client.get(), nowhere.as_ptr()) }
                        })
                        .collect::<Vec<i64>>()
                })
            })
            .collect();
        let issued: Vec<i64> = workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect();
        assert!(issued.iter().all(|&id| id > 0), "{issued:?}");
        let issued: HashSet<i64> = issued.into_iter().collect();
        assert_eq!(
            issued.len(),
            THREADS * COMMANDS_PER_THREAD,
            "ids are unique"
        );

        let mut answered = HashSet::new();
        poll_until(client, |e| {
            if e.kind == PL_EVENT_REPLY {
                assert_eq!(e.error_code, 2, "PartyNotFound");
                assert!(answered.insert(e.request_id), "answered twice");
            }
            answered.len() == issued.len()
        });
        assert_eq!(answered, issued);
        unsafe { pl_client_free(client.0) };
    })
    .await
    .expect("the FFI thread");
}
