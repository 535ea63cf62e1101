//! The C sample, compiled with cc against the static library and the
//! committed header, plays a party's whole life against a real server.
mod support;

use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_c_sample_plays_a_whole_party_life() {
    let server = support::start("c-sample").await;
    let ffi = support::ffi_dir();
    let binary = server.dir.join("party_c");
    support::run(
        Command::new("cc")
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(ffi.join("include"))
            .arg(ffi.join("samples/party.c"))
            .arg(support::c_library().join("libpartyline_ffi.a"))
            .args(["-lpthread", "-ldl", "-lm", "-o"])
            .arg(&binary),
        "compiling samples/party.c",
    );
    let mut sample = Command::new(&binary);
    sample.arg(server.addr.to_string()).arg(&server.cert_pem);
    let stdout = support::run_sample(sample, "the C sample").await;
    assert!(
        stdout.contains("the whole party life passed"),
        "the sample's story:\n{stdout}"
    );
    assert!(stdout.contains("bob leads now"), "{stdout}");
    println!("{stdout}");
}
