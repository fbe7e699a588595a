//! Fuzz targets for the node's files (real files in a temporary directory): the
//! outbox (`outbox-*.json`, playlist changes kept across restarts) and the
//! credentials file. Whatever bytes are on disk, opening never panics: an
//! unreadable outbox is set aside byte for byte and reported; an unreadable
//! credentials file is an error that names the file.
//!
//! `JAMZ_FUZZ_CASES` sets the cases per target (default 256); `JAMZ_TEST_SEED`
//! replays a run (the seed is printed). The long run is in the crate README.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jamz_node::account::CredentialStore;
use jamz_node::outbox::{Outbox, Pending};
use jamz_proto::test_support::fuzz_runner;
use proptest::prelude::*;

const SERVER: &str = "http://127.0.0.1:5050";
const SESSION: &str = "s1";

/// A valid outbox as the node writes it, to mutate.
const OUTBOX: &str = r#"{"server":"http://127.0.0.1:5050","session_id":"s1","calls":[
{"kind":"rest","call":"append-track","session_id":"s1","track":{"id":"t1","title":"A","url":"http://x/a.mp3"}},
{"kind":"upload","path":"/music/b.flac"},
{"kind":"rest","call":"reorder","session_id":"s1","order":["t1","t2"]}]}"#;

const CREDENTIALS: &str = r#"{"server":"http://127.0.0.1:5050","username":"ann","user_id":3,"token":"t","token_store":"file"}"#;

/// Bytes from nothing, or a valid file with bytes replaced, cut or inserted.
fn file_bytes(valid: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let mutated = (
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
        any::<prop::sample::Index>(),
    )
        .prop_map(move |(edits, cut)| {
            let mut b = valid.as_bytes().to_vec();
            for (at, byte, op) in edits {
                if b.is_empty() {
                    b.push(byte);
                    continue;
                }
                let i = at.index(b.len());
                match op {
                    0 => b[i] = byte,
                    1 => b.insert(i, byte),
                    _ => {
                        b.remove(i);
                    }
                }
            }
            // Sometimes a file cut short (a crash mid-write on a filesystem
            // without atomic rename).
            if cut.index(4) == 0 {
                let n = cut.index(b.len() + 1);
                b.truncate(n);
            }
            b
        });
    prop_oneof![prop::collection::vec(any::<u8>(), 0..300), mutated]
}

#[test]
fn fuzz_outbox_file() {
    let strategy = file_bytes(OUTBOX);
    fuzz_runner("outbox file", 256, file!())
        .run(&strategy, |bytes| {
            let dir = tempfile::tempdir().unwrap();
            // The node names the file; one saved change makes it.
            let (mut o, _) = Outbox::open(dir.path(), SERVER, SESSION).unwrap();
            o.push(Pending::Upload { path: "/x".into() }).unwrap();
            drop(o);
            let path = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.to_string_lossy().ends_with(".json"))
                .expect("the outbox wrote no file");
            std::fs::write(&path, &bytes).unwrap();
            let (outbox, problem) = Outbox::open(dir.path(), SERVER, SESSION).unwrap();
            let _ = outbox.views();
            if let Some(problem) = problem {
                // Set aside, not lost.
                prop_assert!(problem.contains("could not be read"), "{}", problem);
                let bad = path.with_extension("json.bad");
                prop_assert_eq!(std::fs::read(&bad).unwrap(), bytes);
                prop_assert!(outbox.is_empty());
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn fuzz_credentials_file() {
    let strategy = file_bytes(CREDENTIALS);
    fuzz_runner("credentials file", 256, file!())
        .run(&strategy, |bytes| {
            let dir = tempfile::tempdir().unwrap();
            let store = CredentialStore::at(dir.path());
            std::fs::write(store.path(), &bytes).unwrap();
            match store.load() {
                // What was read is saved and read back the same.
                Ok(Some(c)) => {
                    store.save(&c).unwrap();
                    prop_assert_eq!(store.load().unwrap(), Some(c));
                }
                Ok(None) => prop_assert!(false, "a file that exists read as none"),
                Err(e) => {
                    let text = e.to_string();
                    prop_assert!(text.contains("credentials.json"), "{}", text);
                }
            }
            let _ = store.token_store();
            Ok(())
        })
        .unwrap();
}
