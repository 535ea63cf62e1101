//! The server's modules import downward only (docs/ARCHITECTURE.md): the
//! check passes on the tree, and fails on a copy given one upward import.

use std::path::Path;
use std::process::Command;

fn check(dir: &Path) -> (bool, String) {
    let output = Command::new("python3")
        .arg("scripts/layers.py")
        .arg(dir)
        .output()
        .expect("python3 runs scripts/layers.py");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.success(), text)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn src_server_imports_downward_only_and_the_check_catches_an_upward_import() {
    let (ok, text) = check(Path::new("src/server"));
    assert!(ok, "{text}");

    let copy = std::env::temp_dir().join(format!("partyline-layers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&copy);
    copy_tree(Path::new("src/server"), &copy);
    // The session (low) reaching up into the commands.
    let session = copy.join("session.rs");
    let text = std::fs::read_to_string(&session).unwrap();
    std::fs::write(&session, format!("use super::commands::deliver;\n{text}")).unwrap();
    // The users naming an item of the top module, in a doc link.
    let users = copy.join("users.rs");
    let text = std::fs::read_to_string(&users).unwrap();
    std::fs::write(&users, format!("//! See [`super::ServerBuilder`].\n{text}")).unwrap();
    let (ok, text) = check(&copy);
    let _ = std::fs::remove_dir_all(&copy);
    assert!(!ok, "an upward import went unnoticed: {text}");
    // (The layers' numbers shift when a layer is added: not asserted.)
    let upward = text.lines().any(|line| {
        line.contains(": session (layer ") && line.contains(") names commands (layer ")
    });
    assert!(upward, "{text}");
    assert!(text.contains("users names ServerBuilder"), "{text}");
}
