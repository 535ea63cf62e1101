//! A game that depends on the SDK (or on the C library) compiles no server
//! code: not the server crate, nor clap, rcgen or tracing-subscriber.
//! Cargo enforces the layering; this test keeps it from drifting.

use std::process::Command;

const SERVER_SIDE: [&str; 5] = [
    "partyline",
    "partyline-loadtest",
    "clap",
    "rcgen",
    "tracing-subscriber",
];

/// The package names in `package`'s normal (non-dev) dependency tree.
fn normal_dependencies(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--locked",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p}", "-p", package])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn assert_client_side(package: &str) {
    let tree = normal_dependencies(package);
    assert!(
        tree.iter().any(|p| p == "quinn"),
        "{package} uses quinn: {tree:?}"
    );
    for forbidden in SERVER_SIDE {
        assert!(
            !tree.iter().any(|p| p == forbidden),
            "{package} depends on {forbidden}, a server-side crate: {tree:?}"
        );
    }
}

#[test]
fn the_sdk_compiles_no_server_side_crate() {
    assert_client_side("partyline-client");
}

#[test]
fn the_c_library_compiles_no_server_side_crate() {
    assert_client_side("partyline-ffi");
}
