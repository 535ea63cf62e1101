//! The C# samples, compiled with mono's `mcs` together with the wrapper
//! (csharp/Partyline.cs) and run with `mono` against the shared library,
//! each play a story against a real server: a party's whole life; find,
//! invite, gather; and matchmaking.
//!
//! Needs mono: `apt-get install mono-mcs mono-runtime` (CI installs them).
//! Without it the tests fail, unless PARTYLINE_SKIP_MONO=1 says to skip.
mod support;

use std::process::Command;

/// Whether mono is here; panics when it is missing and skipping was not asked for.
fn have_mono() -> bool {
    let missing: Vec<&str> = ["mcs", "mono"]
        .into_iter()
        .filter(|tool| !support::have(tool))
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("PARTYLINE_SKIP_MONO").as_deref() == Ok("1") {
        println!(
            "note: PARTYLINE_SKIP_MONO=1 and {} not installed: the C# sample did not run",
            missing.join(" and ")
        );
        return false;
    }
    panic!(
        "{} not found: install mono (apt-get install mono-mcs mono-runtime) \
         to test the C# wrapper, or set PARTYLINE_SKIP_MONO=1 to skip it",
        missing.join(" and ")
    );
}

/// Compiles `samples/<name>.cs` with the wrapper and runs it against the server.
async fn play(server: &support::TestServer, name: &str, what: &'static str) -> String {
    let ffi = support::ffi_dir();
    let exe = server.dir.join(format!("{name}.exe"));
    support::run(
        Command::new("mcs")
            .args(["-warn:4", "-warnaserror"])
            .arg(format!("-out:{}", exe.display()))
            .arg(ffi.join("csharp/Partyline.cs"))
            .arg(ffi.join(format!("samples/{name}.cs"))),
        &format!("compiling samples/{name}.cs with mcs"),
    );
    let library = support::c_library();
    assert!(
        library.join("libpartyline_ffi.so").exists(),
        "no libpartyline_ffi.so in {}",
        library.display()
    );
    let mut sample = Command::new("mono");
    sample
        .arg(&exe)
        .arg(server.addr.to_string())
        .arg(&server.cert_pem)
        .env("LD_LIBRARY_PATH", &library);
    support::run_sample(sample, what).await
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
