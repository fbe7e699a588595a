//! The UI's TypeScript types are the Rust types: the checked-in file is what the
//! generator writes (`JAMZ_UPDATE_TS=1` rewrites it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use jamz_node::ui_types::{UI_TYPES_PATH, typescript};

#[test]
fn the_ui_types_are_generated_from_the_rust_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(UI_TYPES_PATH);
    let want = typescript();
    if std::env::var_os("JAMZ_UPDATE_TS").is_some() {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if have != want {
        let line = have
            .lines()
            .zip(want.lines())
            .position(|(h, w)| h != w)
            .unwrap_or_else(|| have.lines().count().min(want.lines().count()));
        panic!(
            "{UI_TYPES_PATH} differs from the Rust types (first at line {}: {:?} should be {:?}); \
             regenerate it with `JAMZ_UPDATE_TS=1 cargo test -p jamz-node --test ui_types`",
            line + 1,
            have.lines().nth(line).unwrap_or("<end of file>"),
            want.lines().nth(line).unwrap_or("<end of file>"),
        );
    }
}
