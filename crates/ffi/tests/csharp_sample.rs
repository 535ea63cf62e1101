//! The C# samples, compiled with mono's `mcs` together with the wrapper
//! (csharp/Partyline.cs) and run with `mono` against the shared library,
//! each play a story against a real server: a party's whole life; find,
//! invite, gather; and matchmaking. And the wrapper's structs are checked
//! against the header's layout asserts.
//!
//! Needs mono: `apt-get install mono-mcs mono-runtime` (CI installs them).
//! Without it the tests fail, unless PARTYLINE_SKIP_MONO=1 says to skip.
mod support;

use support::have_mono;

/// Compiles `samples/<name>.cs` with the wrapper and runs it against the server.
async fn play(server: &support::TestServer, name: &str, what: &'static str) -> String {
    let source = support::ffi_dir().join(format!("samples/{name}.cs"));
    let exe = support::compile_csharp(server, &[source], name);
    let mut sample = support::mono(&exe);
    sample.arg(server.addr.to_string()).arg(&server.cert_pem);
    support::run_sample(sample, what).await
}

/// The wrapper's structs against the header's layout asserts: every
/// struct's `Marshal.SizeOf`, every field's `Marshal.OffsetOf`, and the
/// library's own `PlEvent` size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csharp_structs_match_the_headers_layout() {
    if !have_mono() {
        return;
    }
    let server = support::start("csharp-layout").await;
    let source = support::ffi_dir().join("tests/programs/Layout.cs");
    let exe = support::compile_csharp(&server, &[source], "Layout");
    let mut check = support::mono(&exe);
    check.arg(support::ffi_dir().join("include/partyline.h"));
    let stdout = support::run_sample(check, "the C# layout check").await;
    assert!(
        stdout.contains("the layout of 15 structs and"),
        "the check's words:\n{stdout}"
    );
    println!("{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csharp_sample_plays_a_whole_party_life() {
    if !have_mono() {
        return;
    }
    let server = support::start("csharp-sample").await;
    let stdout = play(&server, "PartySample", "the C# sample").await;
    assert_eq!(
        stdout.lines().last(),
        Some("the whole party life passed"),
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
    assert!(stdout.contains("a bad party id: "), "{stdout}");
    println!("{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csharp_sample_finds_invites_and_gathers() {
    if !have_mono() {
        return;
    }
    let server = support::start("csharp-gather").await;
    let stdout = play(&server, "GatherSample", "the C# gather sample").await;
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
async fn the_csharp_sample_matches_a_duo_and_two_solos() {
    if !have_mono() {
        return;
    }
    let server = support::start_matchmaking("csharp-matchmaking").await;
    let stdout = play(&server, "MatchmakingSample", "the C# matchmaking sample").await;
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
