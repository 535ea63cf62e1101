//! The C ABI's edges, called as C would call them, against a real server:
//! a close while connecting cancels, every call after the end answers
//! `PL_ERR_CLOSED` at once, oversize commands and Hellos are refused by the
//! call itself, one certificate is given (not two), the last error is the
//! thread's most recent failure, a sized poll writes no more than asked,
//! and two threads polling one client keep their strings.
mod support;

use partyline_ffi::*;
use std::ffi::{c_char, CStr, CString};
use std::mem::size_of;
use std::ptr;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const NOWHERE: &CStr = c"67e55044-10b1-426f-9247-bb680e5fe0c8";
/// Well past the 256 KiB frame limit, like the 300 KiB label.
const HUGE: usize = 300 * 1024;

/// The client pointer, shared as a C program would share it.
#[derive(Clone, Copy)]
struct Shared(*mut PlClient);
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    fn get(self) -> *mut PlClient {
        self.0
    }
}

struct Server {
    address: CString,
    cert: CString,
    pem: Vec<u8>,
}

impl Server {
    fn of(server: &support::TestServer) -> Server {
        Server {
            address: CString::new(server.addr.to_string()).unwrap(),
            cert: CString::new(server.cert_pem.to_str().unwrap()).unwrap(),
            pem: std::fs::read(&server.cert_pem).unwrap(),
        }
    }

    /// Starts connecting as dev user `user` (NULL on a bad argument).
    fn connect(&self, user: &CStr) -> *mut PlClient {
        unsafe {
            pl_client_connect(
                self.address.as_ptr(),
                ptr::null(),
                self.cert.as_ptr(),
                ptr::null(),
                0,
                user.as_ptr(),
                user.as_ptr(),
                ptr::null(),
            )
        }
    }

    /// A connected client.
    fn connected(&self, user: &CStr) -> Shared {
        let client = Shared(self.connect(user));
        assert!(!client.get().is_null(), "{}", last_error_text());
        poll_until(client, |e| e.kind == PL_EVENT_CONNECTED);
        client
    }
}

fn last_error_text() -> String {
    let mut buffer = vec![0 as c_char; 1024];
    unsafe { pl_last_error(buffer.as_mut_ptr(), buffer.len()) };
    unsafe { CStr::from_ptr(buffer.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

fn text(pointer: *const c_char) -> String {
    assert!(!pointer.is_null());
    unsafe { CStr::from_ptr(pointer) }
        .to_string_lossy()
        .into_owned()
}

/// Polls until `until` holds for an event (10 s at most); returns it.
fn poll_until(client: Shared, mut until: impl FnMut(&PlEvent) -> bool) -> PlEvent {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut event = PlEvent::none();
    while Instant::now() < deadline {
        match unsafe { pl_client_poll(client.get(), &mut event) } {
            1 if until(&event) => return event,
            1 => {}
            0 => std::thread::sleep(Duration::from_millis(1)),
            error => panic!("poll failed: {error}"),
        }
    }
    panic!("no awaited event within 10 s");
}

/// Every kind of call on a session that is over: `PL_ERR_CLOSED` at once,
/// never a request id.
fn assert_every_call_closed(client: Shared) {
    for _ in 0..40 {
        let sent = unsafe { pl_send_data(client.get(), NOWHERE.as_ptr(), 1, b"x".as_ptr(), 1) };
        assert_eq!(sent, PL_ERR_CLOSED, "{}", last_error_text());
    }
    let commands = [
        unsafe { pl_get_party(client.get(), NOWHERE.as_ptr()) },
        unsafe { pl_create_party(client.get(), true, 4, c"late".as_ptr()) },
        unsafe { pl_list_invites(client.get()) },
        unsafe { pl_cancel_ticket(client.get(), 7) },
    ];
    assert_eq!(
        commands,
        [i64::from(PL_ERR_CLOSED); 4],
        "{}",
        last_error_text()
    );
    assert!(last_error_text().starts_with("the session is closed"));
}

/// Runs C-side code off the async threads, so the in-process server keeps
/// serving it.
async fn as_c<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(body).await.expect("the C side")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_while_connecting_cancels_the_connection() {
    let server = support::start("abi-cancel").await;
    let c = Server::of(&server);
    as_c(move || {
        for round in 0..20u64 {
            let client = Shared(c.connect(c"canceller"));
            assert!(!client.0.is_null());
            // Half the rounds close at once (no handshake can be done by
            // then), half a few milliseconds in (it may be).
            let pause = round.saturating_sub(10);
            std::thread::sleep(Duration::from_millis(pause));
            assert_eq!(unsafe { pl_client_close(client.get()) }, PL_OK);
            assert_every_call_closed(client);
            let mut connected = false;
            let ended = poll_until(client, |e| {
                connected |= e.kind == PL_EVENT_CONNECTED;
                e.kind == PL_EVENT_DISCONNECTED
            });
            assert_eq!(ended.error_code, PL_ERR_CLOSED);
            let why = text(ended.error_message);
            if pause == 0 || !connected {
                assert!(!connected, "CONNECTED after a close while connecting");
                assert!(why.contains("while connecting"), "{why}");
            }
            // Nothing follows: no CONNECTED comes late.
            std::thread::sleep(Duration::from_millis(20));
            let mut event = PlEvent::none();
            assert_eq!(unsafe { pl_client_poll(client.get(), &mut event) }, 0);
            unsafe { pl_client_free(client.get()) };
        }
    })
    .await;
    // No session was left behind on the server.
    let deadline = Instant::now() + Duration::from_secs(1);
    while server.session_count() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.session_count(), 0, "sessions left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_after_a_close_or_disconnected_answers_closed() {
    let mut server = support::start("abi-closed").await;
    let c = Arc::new(Server::of(&server));
    let (closer, ended) = {
        let c = c.clone();
        as_c(move || {
            let closer = c.connected(c"closer");
            assert_eq!(unsafe { pl_client_close(closer.get()) }, PL_OK);
            // Right after the close: the race that read as RECONNECTING.
            assert_every_call_closed(closer);
            let gone = poll_until(closer, |e| e.kind == PL_EVENT_DISCONNECTED);
            assert_eq!(gone.error_code, PL_ERR_CLOSED);
            assert_every_call_closed(closer);
            (closer, c.connected(c"ended"))
        })
        .await
    };
    server.shutdown().await;
    as_c(move || {
        let gone = poll_until(ended, |e| e.kind == PL_EVENT_DISCONNECTED);
        assert_eq!(gone.error_code, PL_ERR_CLOSED);
        assert!(text(gone.error_message).contains("shut down"));
        assert_every_call_closed(ended);
        unsafe { pl_client_free(ended.get()) };
        unsafe { pl_client_free(closer.get()) };
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_hello_disconnects_with_its_refusal_then_every_call_is_closed() {
    let server = support::start("abi-refused").await;
    let c = Server::of(&server);
    as_c(move || {
        // A dev server refuses tokens: UNAUTHENTICATED, as DISCONNECTED says.
        let client = Shared(unsafe {
            pl_client_connect(
                c.address.as_ptr(),
                ptr::null(),
                c.cert.as_ptr(),
                ptr::null(),
                0,
                ptr::null(),
                ptr::null(),
                c"a.token".as_ptr(),
            )
        });
        assert!(!client.get().is_null());
        let refused = poll_until(client, |e| e.kind == PL_EVENT_DISCONNECTED);
        assert_eq!(refused.error_code, PL_REFUSED_UNAUTHENTICATED);
        // Never the positive code: it would read as a request id.
        assert_every_call_closed(client);
        unsafe { pl_client_free(client.get()) };
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_commands_and_hellos_are_refused_by_the_call_itself() {
    let server = support::start("abi-oversize").await;
    let c = Server::of(&server);
    as_c(move || {
        let huge = CString::new("x".repeat(HUGE)).unwrap();
        let too_large = |code: i64| {
            assert_eq!(code, i64::from(PL_ERR_TOO_LARGE), "{}", last_error_text());
            assert_eq!(pl_last_error_code(), PL_ERR_TOO_LARGE);
            let words = last_error_text();
            assert!(
                words.contains("above the protocol's frame limit of 262144 bytes"),
                "{words}"
            );
        };
        let client = Shared(c.connect(c"ana"));
        // While connecting too: the limit is the protocol's, not the server's.
        too_large(unsafe { pl_create_party(client.get(), true, 4, huge.as_ptr()) });
        poll_until(client, |e| e.kind == PL_EVENT_CONNECTED);
        too_large(unsafe { pl_create_party(client.get(), true, 4, huge.as_ptr()) });
        too_large(unsafe { pl_join_by_code(client.get(), huge.as_ptr()) });
        let ids = [huge.as_ptr()];
        too_large(unsafe { pl_follow(client.get(), ids.as_ptr(), 1) });
        // Nothing was sent: the session goes on.
        let create = unsafe { pl_create_party(client.get(), true, 4, c"fine".as_ptr()) };
        assert!(create > 0);
        let reply = poll_until(client, |e| {
            e.kind == PL_EVENT_REPLY && e.request_id == create
        });
        assert_eq!(reply.error_code, 0);
        unsafe { pl_client_free(client.get()) };

        // The Hello: a dev name, or a token, that the frame cannot carry.
        assert!(c.connect(&huge).is_null());
        too_large(i64::from(pl_last_error_code()));
        let rule = format!("user_id must be 1 to 128 bytes, got {HUGE}");
        assert!(last_error_text().contains(&rule), "{}", last_error_text());
        let token = unsafe {
            pl_client_connect(
                c.address.as_ptr(),
                ptr::null(),
                c.cert.as_ptr(),
                ptr::null(),
                0,
                ptr::null(),
                ptr::null(),
                huge.as_ptr(),
            )
        };
        assert!(token.is_null());
        too_large(i64::from(pl_last_error_code()));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_certificate_is_given_not_two() {
    let server = support::start("abi-certs").await;
    let c = Server::of(&server);
    as_c(move || {
        let both = unsafe {
            pl_client_connect(
                c.address.as_ptr(),
                ptr::null(),
                c.cert.as_ptr(),
                c.pem.as_ptr(),
                c.pem.len(),
                c"ana".as_ptr(),
                c"ana".as_ptr(),
                ptr::null(),
            )
        };
        assert!(both.is_null());
        assert_eq!(pl_last_error_code(), PL_ERR_INVALID_ARGUMENT);
        assert!(
            last_error_text().contains("not two"),
            "{}",
            last_error_text()
        );
        // Either one alone connects.
        for (path, pem, len) in [
            (c.cert.as_ptr(), ptr::null(), 0),
            (ptr::null(), c.pem.as_ptr(), c.pem.len()),
        ] {
            let one = Shared(unsafe {
                pl_client_connect(
                    c.address.as_ptr(),
                    ptr::null(),
                    path,
                    pem,
                    len,
                    c"ana".as_ptr(),
                    c"ana".as_ptr(),
                    ptr::null(),
                )
            });
            assert!(!one.get().is_null(), "{}", last_error_text());
            poll_until(one, |e| e.kind == PL_EVENT_CONNECTED);
            unsafe { pl_client_free(one.get()) };
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_error_is_this_threads_most_recent_failure() {
    let server = support::start("abi-last-error").await;
    let c = Server::of(&server);
    as_c(move || {
        // A fresh thread: nothing has failed on it yet.
        std::thread::spawn(move || {
            assert_eq!(pl_last_error_code(), 0);
            assert_eq!(unsafe { pl_last_error(ptr::null_mut(), 0) }, 0);
            assert_eq!(
                unsafe { pl_join_party(ptr::null_mut(), NOWHERE.as_ptr()) },
                i64::from(PL_ERR_INVALID_ARGUMENT)
            );
            assert_eq!(pl_last_error_code(), PL_ERR_INVALID_ARGUMENT);
            // Successes leave it as it was, like errno.
            let client = c.connected(c"ana");
            assert!(unsafe { pl_get_party(client.get(), NOWHERE.as_ptr()) } > 0);
            assert_eq!(pl_last_error_code(), PL_ERR_INVALID_ARGUMENT);
            assert_eq!(last_error_text(), "client is NULL");
            // The next failure replaces it; another thread's does not.
            unsafe { pl_client_close(client.get()) };
            assert_eq!(
                unsafe { pl_get_party(client.get(), NOWHERE.as_ptr()) },
                i64::from(PL_ERR_CLOSED)
            );
            assert_eq!(pl_last_error_code(), PL_ERR_CLOSED);
            std::thread::spawn(|| unsafe { pl_join_party(ptr::null_mut(), ptr::null()) })
                .join()
                .unwrap();
            assert_eq!(pl_last_error_code(), PL_ERR_CLOSED);
            unsafe { pl_client_free(client.get()) };
        })
        .join()
        .expect("the thread");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sized_poll_writes_exactly_the_size_it_is_given() {
    let server = support::start("abi-sized").await;
    let c = Server::of(&server);
    as_c(move || {
        let full = size_of::<PlEvent>();
        assert_eq!(pl_event_size(), full);
        let least = std::mem::offset_of!(PlEvent, error_message);
        let client = Shared(c.connect(c"ana"));
        // A PlEvent buffer with room to spare, every byte marked.
        let mut buffer = vec![0xAAu8; full + 64];
        let event = buffer.as_mut_ptr().cast::<PlEvent>();
        // Below the least PlEvent: refused, and nothing is taken.
        assert_eq!(
            unsafe { pl_client_poll_sized(client.get(), event, least - 1) },
            PL_ERR_INVALID_ARGUMENT
        );
        assert!(buffer.iter().all(|&b| b == 0xAA), "written though refused");
        // An old binding's smallest PlEvent gets CONNECTED, and no byte more.
        let deadline = Instant::now() + Duration::from_secs(10);
        while unsafe { pl_client_poll_sized(client.get(), event, least) } == 0 {
            assert!(Instant::now() < deadline, "no CONNECTED");
            std::thread::sleep(Duration::from_millis(1));
        }
        let kind = i32::from_ne_bytes(buffer[..4].try_into().unwrap());
        assert_eq!(kind, PL_EVENT_CONNECTED);
        assert!(
            buffer[least..].iter().all(|&b| b == 0xAA),
            "wrote past {least}"
        );
        // A newer binding's larger PlEvent: all of it written, unknown
        // fields zero, and nothing past it.
        let request = unsafe { pl_get_party(client.get(), NOWHERE.as_ptr()) };
        let newer = full + 32;
        buffer.fill(0xAA);
        let deadline = Instant::now() + Duration::from_secs(10);
        while unsafe { pl_client_poll_sized(client.get(), event, newer) } == 0 {
            assert!(Instant::now() < deadline, "no reply");
            std::thread::sleep(Duration::from_millis(1));
        }
        let reply = unsafe { event.read_unaligned() };
        assert_eq!((reply.kind, reply.request_id), (PL_EVENT_REPLY, request));
        assert_eq!(reply.error_code, PL_REFUSED_PARTY_NOT_FOUND);
        assert!(
            buffer[full..newer].iter().all(|&b| b == 0),
            "the unknown tail zeroed"
        );
        assert!(
            buffer[newer..].iter().all(|&b| b == 0xAA),
            "wrote past {newer}"
        );
        unsafe { pl_client_free(client.get()) };
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_threads_polling_one_client_keep_their_own_strings() {
    // Replies carrying a party each (the server allows 16 per session).
    const ROUNDS: usize = 7;
    let server = support::start("abi-two-pollers").await;
    let c = Server::of(&server);
    as_c(move || {
        let client = c.connected(c"ana");
        for round in 0..2 * ROUNDS {
            let label = CString::new(format!("party-{round:02}")).unwrap();
            assert!(unsafe { pl_create_party(client.get(), true, 4, label.as_ptr()) } > 0);
        }
        let turns = Arc::new(Barrier::new(2));
        // Each round: the first thread polls, then the second polls (which
        // must not free what the first is reading), then both check theirs.
        // Failures are collected, not raised, so that no thread is left
        // waiting at the barrier.
        let poller = |polls_first: bool, turns: Arc<Barrier>| {
            move || {
                let mut wrong = Vec::new();
                for _ in 0..ROUNDS {
                    if !polls_first {
                        turns.wait();
                    }
                    let event = poll_until(client, |e| e.kind == PL_EVENT_REPLY);
                    let read = |event: &PlEvent| match event.error_code {
                        0 => (text(event.label), text(event.party_id)),
                        _ => (String::new(), text(event.error_message)),
                    };
                    let kept = read(&event);
                    if polls_first {
                        turns.wait();
                    }
                    turns.wait();
                    let now = read(&event);
                    if now != kept || kept.0.is_empty() {
                        wrong.push(format!("{kept:?} read back as {now:?}"));
                    }
                    turns.wait();
                }
                wrong
            }
        };
        let first = std::thread::spawn(poller(true, turns.clone()));
        let second = std::thread::spawn(poller(false, turns));
        let first = first.join().expect("the first poller");
        let second = second.join().expect("the second poller");
        assert_eq!(
            (first, second),
            (vec![], vec![]),
            "each thread's event, after the other thread polled"
        );
        unsafe { pl_client_free(client.get()) };
    })
    .await;
}
