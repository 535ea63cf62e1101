//! Quitting ends the session at once, in every language and by every path
//! each documents: the C program (free alone, close + free, close + poll +
//! free), the C++ one (destructor, close + destructor) and the C# one
//! (Dispose, Close + Dispose) each quit twenty times by each path, every
//! other time as the party's leader, and fail unless the player who stays
//! is told MemberLeft (not a lost connection), and gets the lead, within
//! 1 s. The programs are in tests/programs/.
mod support;

use std::process::Command;
use std::time::Instant;

async fn quit_story(server: &support::TestServer, program: Command, what: &'static str) {
    let started = Instant::now();
    let stdout = support::run_sample(program, what).await;
    assert_eq!(
        stdout.lines().last(),
        Some("every quit ended its session at once"),
        "{what}:\n{stdout}"
    );
    assert_eq!(server.session_count(), 0, "no session outlives its quit");
    println!("{stdout}({what} took {:?})", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_c_quit_ends_the_session_at_once() {
    let server = support::start("quit-c").await;
    let source = support::ffi_dir().join("tests/programs/quit.c");
    let mut program = Command::new(support::compile_native(&server, &source, "quit"));
    program.arg(server.addr.to_string()).arg(&server.cert_pem);
    quit_story(&server, program, "the C quits").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cpp_quit_ends_the_session_at_once() {
    let server = support::start("quit-cpp").await;
    let source = support::ffi_dir().join("tests/programs/quit.cpp");
    let mut program = Command::new(support::compile_native(&server, &source, "quit_cpp"));
    program.arg(server.addr.to_string()).arg(&server.cert_pem);
    quit_story(&server, program, "the C++ quits").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_csharp_quit_ends_the_session_at_once() {
    if !support::have_mono() {
        return;
    }
    let server = support::start("quit-csharp").await;
    let source = support::ffi_dir().join("tests/programs/Quit.cs");
    let exe = support::compile_csharp(&server, &[source], "Quit");
    let mut program = support::mono(&exe);
    program.arg(server.addr.to_string()).arg(&server.cert_pem);
    quit_story(&server, program, "the C# quits").await;
}
