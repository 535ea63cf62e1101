//! The C# sample, compiled with mono's `mcs` together with the wrapper
//! (csharp/Partyline.cs) and run with `mono` against the shared library,
//! plays a party's whole life against a real server.
//!
//! Needs mono: `apt-get install mono-mcs mono-runtime` (CI installs them).
//! Without it the test fails, unless PARTYLINE_SKIP_MONO=1 says to skip.
mod support;

use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csharp_sample_plays_a_whole_party_life() {
    let missing: Vec<&str> = ["mcs", "mono"]
        .into_iter()
        .filter(|tool| !support::have(tool))
        .collect();
    if !missing.is_empty() {
        if std::env::var("PARTYLINE_SKIP_MONO").as_deref() == Ok("1") {
            println!(
                "note: PARTYLINE_SKIP_MONO=1 and {} not installed: the C# sample did not run",
                missing.join(" and ")
            );
            return;
        }
        panic!(
            "{} not found: install mono (apt-get install mono-mcs mono-runtime) \
             to test the C# wrapper, or set PARTYLINE_SKIP_MONO=1 to skip it",
            missing.join(" and ")
        );
    }

    let server = support::start("csharp-sample").await;
    let ffi = support::ffi_dir();
    let exe = server.dir.join("PartySample.exe");
    support::run(
        Command::new("mcs")
            .args(["-warn:4", "-warnaserror"])
            .arg(format!("-out:{}", exe.display()))
            .arg(ffi.join("csharp/Partyline.cs"))
            .arg(ffi.join("samples/PartySample.cs")),
        "compiling samples/PartySample.cs with mcs",
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
    let stdout = support::run_sample(sample, "the C# sample").await;
    assert_eq!(
        stdout.lines().last(),
        Some("the whole party life passed"),
        "the sample's story:\n{stdout}"
    );
    assert!(stdout.contains("bob leads now"), "{stdout}");
    assert!(stdout.contains("a bad party id: "), "{stdout}");
    println!("{stdout}");
}
