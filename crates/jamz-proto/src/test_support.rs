//! What the fuzz and randomized tests of every crate share (the `test-support` feature,
//! for dev-dependencies only): one seed rule, one fuzz runner and one `proptest!` config,
//! so that every failure prints (or keeps) how to replay it the same way.

use proptest::test_runner::{Config, FileFailurePersistence, RngSeed, TestRunner};

/// Where a failing case is kept: next to the test's source file, with this extension
/// (`tests/decode.rs` -> `tests/decode.proptest-regressions`). Those files are committed:
/// every later run tries the kept cases first.
const REGRESSIONS: FileFailurePersistence =
    FileFailurePersistence::WithSource("proptest-regressions");

/// A seed for a test's generators: `JAMZ_TEST_SEED` if set, else a fresh one. Printed
/// (with `what`) so that a failure can be replayed.
pub fn test_seed(what: &str) -> u64 {
    let seed = std::env::var("JAMZ_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
    eprintln!("{what}: seed {seed} (replay with JAMZ_TEST_SEED={seed})");
    seed
}

/// How many cases a fuzz target runs: `JAMZ_FUZZ_CASES` if set, else `default`.
pub fn fuzz_cases(default: u32) -> u32 {
    std::env::var("JAMZ_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The proptest runner of one fuzz target: [`fuzz_cases`] cases from [`test_seed`]; a
/// failing case is kept next to `source_file` (pass `file!()`).
pub fn fuzz_runner(target: &str, default_cases: u32, source_file: &'static str) -> TestRunner {
    let cases = fuzz_cases(default_cases);
    let seed = test_seed(&format!("fuzz {target}, {cases} cases"));
    TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: Some(Box::new(REGRESSIONS)),
        source_file: Some(source_file),
        ..Config::default()
    })
}

/// The seeds a deterministic simulation runs over: 1 to `JAMZ_SIM_SEEDS` (CI sets more
/// than the default `default_count`, see .ci/run). Every assertion of a run names its seed.
pub fn sim_seeds(default_count: u64) -> Vec<u64> {
    let n = std::env::var("JAMZ_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_count);
    (1..=n.max(1)).collect()
}

/// How many cases a `proptest!` block runs: `JAMZ_PROPTEST_CASES` if set, else `default`.
pub fn proptest_cases(default: u32) -> u32 {
    std::env::var("JAMZ_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The config of every `proptest!` block (`#![proptest_config(proptest_config(N))]`):
/// [`proptest_cases`] cases, failing cases kept next to the test's source and tried first
/// on every later run.
pub fn proptest_config(default_cases: u32) -> Config {
    Config {
        cases: proptest_cases(default_cases),
        failure_persistence: Some(Box::new(REGRESSIONS)),
        ..Config::default()
    }
}
