//! scripts/with-test-runner.sh (how scripts/test.sh runs `cargo test`) puts doc-tests under
//! scripts/test-runner.sh's time limit too: a crate made here whose doc-test hangs fails
//! its `cargo test --doc` with the runner's TIMEOUT line naming the crate's doc-tests, and
//! the same doc-test passes when it does not hang (the runner hands the program its
//! arguments). The crate has no dependencies and its own small target directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

/// Seconds the runner gives the doc-test program here.
const LIMIT_S: &str = "5";

fn crate_with_a_doc_test(dir: &Path) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"hangs-on-demand\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("src/lib.rs"),
        "//! ```\n\
         //! if std::env::var_os(\"HANG\").is_some() {\n\
         //!     loop { std::thread::park(); }\n\
         //! }\n\
         //! ```\n\
         pub fn nothing() {}\n",
    )
    .unwrap();
}

/// `scripts/with-test-runner.sh cargo test --doc` on the crate in `dir`, under an outer
/// `timeout` far above the runner's limit (so this test ends even if the runner does not
/// stop the doc-test).
fn doc_tests(dir: &Path, hang: bool) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cmd = Command::new("timeout");
    cmd.args(["--kill-after=10", "240"])
        .arg(root.join("scripts/with-test-runner.sh"))
        .args(["cargo", "test", "--doc", "--offline", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env("JAMZ_TEST_BINARY_TIMEOUT", LIMIT_S)
        .env_remove("HANG");
    if hang {
        cmd.env("HANG", "1");
    }
    cmd.output().unwrap()
}

#[test]
fn a_hanging_doc_test_is_stopped_by_the_runner_and_named() {
    let dir = tempfile::tempdir().unwrap();
    crate_with_a_doc_test(dir.path());

    let out = doc_tests(dir.path(), false);
    let err = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{err}\n{stdout}");
    assert!(stdout.contains("1 passed"), "{stdout}");

    let out = doc_tests(dir.path(), true);
    // rustdoc passes the runner's stderr on in its report (stdout or stderr).
    let err = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(
        out.status.code(),
        Some(124),
        "the runner did not stop the hanging doc-test: {err}"
    );
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "[test] TIMEOUT: the doc-tests of hangs-on-demand ran over {LIMIT_S} s"
        )),
        "{err}"
    );
}
