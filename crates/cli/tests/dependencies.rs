//! The layering that gave the terminal client a crate of its own: it
//! compiles no server code, and a game backend that embeds the server
//! without the default `cli` feature compiles no line editor. Cargo enforces
//! both; this test keeps them from drifting.

use std::process::Command;

/// The package names in `package`'s normal (non-dev) dependency tree, with
/// `flags` (features) given to cargo tree.
fn normal_dependencies(package: &str, flags: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["tree", "--offline", "--locked", "-e", "normal"])
        .args(["--prefix", "none", "--format", "{p}", "-p", package])
        .args(flags)
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

fn has(tree: &[String], package: &str) -> bool {
    tree.iter().any(|p| p == package)
}

#[test]
fn the_terminal_client_compiles_no_server_code() {
    let tree = normal_dependencies("partyline-cli", &[]);
    assert!(has(&tree, "partyline-client"), "{tree:?}");
    assert!(has(&tree, "rustyline"), "{tree:?}");
    for server_side in [
        "partyline",
        "partyline-loadtest",
        "rcgen",
        "tracing-subscriber",
    ] {
        assert!(
            !has(&tree, server_side),
            "partyline-cli depends on {server_side}: {tree:?}"
        );
    }
}

#[test]
fn the_server_without_default_features_compiles_no_line_editor() {
    let tree = normal_dependencies("partyline", &["--no-default-features"]);
    assert!(has(&tree, "quinn"), "{tree:?}");
    for client_side in ["partyline-cli", "rustyline"] {
        assert!(
            !has(&tree, client_side),
            "partyline without `cli` depends on {client_side}: {tree:?}"
        );
    }
    // The binary's default keeps `partyline client`.
    let tree = normal_dependencies("partyline", &[]);
    assert!(has(&tree, "partyline-cli"), "{tree:?}");
}
