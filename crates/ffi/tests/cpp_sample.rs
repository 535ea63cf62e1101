//! The C++ samples, compiled with g++ (C++17, warnings as errors) through
//! the header-only wrapper include/partyline.hpp against the static
//! library, each play a story against a real server: a party's whole
//! life; find, invite, gather; and matchmaking. Compiling them also proves that
//! partyline.h is valid C++ (cbindgen's cpp_compat).
mod support;

use std::path::PathBuf;
use std::process::Command;

/// Compiles `samples/<name>.cpp` into the server's scratch folder.
fn compile(server: &support::TestServer, name: &str) -> PathBuf {
    let source = support::ffi_dir().join(format!("samples/{name}.cpp"));
    support::compile_native(server, &source, &format!("{name}_cpp"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cpp_sample_plays_a_whole_party_life() {
    let server = support::start("cpp-sample").await;
    let binary = compile(&server, "party");
    let mut sample = Command::new(&binary);
    sample.arg(server.addr.to_string()).arg(&server.cert_pem);
    let stdout = support::run_sample(sample, "the C++ sample").await;
    assert!(
        stdout.contains("the whole party life passed"),
        "the sample's story:\n{stdout}"
    );
    assert!(stdout.contains("bob leads now"), "{stdout}");
    assert!(
        stdout.contains("bob set the leader policy: connection quality"),
        "{stdout}"
    );
    assert!(stdout.contains("ready check "), "{stdout}");
    assert!(
        stdout.contains("ana muted bob's voice: got op code 2 only; cyd blocked bob"),
        "{stdout}"
    );
    assert!(stdout.contains("a bad party id (code -1)"), "{stdout}");
    println!("{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cpp_sample_finds_invites_and_gathers() {
    let server = support::start("cpp-gather").await;
    let binary = compile(&server, "gather");
    let mut sample = Command::new(&binary);
    sample.arg(server.addr.to_string()).arg(&server.cert_pem);
    let stdout = support::run_sample(sample, "the C++ gather sample").await;
    assert_eq!(
        stdout.lines().last(),
        Some("find, invite, gather passed"),
        "the sample's story:\n{stdout}"
    );
    for step in [
        "ana sees bob online: \"looking for a party\"",
        "bob was invited and is in (2 members)",
        "cyd declined; ana was told",
        "dav found the party by region=eu",
        "ana banned cyd (rejoin refused: 22)",
        "ana saw bob go offline",
    ] {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
    }
    println!("{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cpp_sample_matches_a_duo_and_two_solos() {
    let server = support::start_matchmaking("cpp-matchmaking").await;
    let binary = compile(&server, "matchmaking");
    let mut sample = Command::new(&binary);
    sample.arg(server.addr.to_string()).arg(&server.cert_pem);
    let stdout = support::run_sample(sample, "the C++ matchmaking sample").await;
    assert_eq!(
        stdout.lines().last(),
        Some("matchmaking passed"),
        "the sample's story:\n{stdout}"
    );
    for step in [
        "a second ticket refused: 29",
        "all four matched: 4 players, the duo with its party, the solos without",
        "(reason 0); twice refused: 29, by dav: 30",
        "refused: party too large 32, invalid ticket 31, not leader 4",
        "dav joined the duo: its ticket cancelled (reason 1)",
    ] {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
    }
    // The token the sample got is one a game server accepts.
    support::verify_printed_match(&stdout, 4);
    println!("{stdout}");
}
