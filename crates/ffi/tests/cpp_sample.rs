//! The C++ sample, compiled with g++ (C++17, warnings as errors) through
//! the header-only wrapper include/partyline.hpp against the static
//! library, plays a party's whole life against a real server. Compiling it
//! also proves that partyline.h is valid C++ (cbindgen's cpp_compat).
mod support;

use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cpp_sample_plays_a_whole_party_life() {
    let server = support::start("cpp-sample").await;
    let ffi = support::ffi_dir();
    let binary = server.dir.join("party_cpp");
    support::run(
        Command::new("g++")
            .args([
                "-std=c++17",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-pedantic",
                "-I",
            ])
            .arg(ffi.join("include"))
            .arg(ffi.join("samples/party.cpp"))
            .arg(support::c_library().join("libpartyline_ffi.a"))
            .args(["-lpthread", "-ldl", "-lm", "-o"])
            .arg(&binary),
        "compiling samples/party.cpp",
    );
    let mut sample = Command::new(&binary);
    sample.arg(server.addr.to_string()).arg(&server.cert_pem);
    let stdout = support::run_sample(sample, "the C++ sample").await;
    assert!(
        stdout.contains("the whole party life passed"),
        "the sample's story:\n{stdout}"
    );
    assert!(stdout.contains("bob leads now"), "{stdout}");
    assert!(stdout.contains("a bad party id (code -1)"), "{stdout}");
    println!("{stdout}");
}
