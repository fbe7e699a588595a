//! What the fuzz and randomized tests of every crate share (the `test-support` feature,
//! for dev-dependencies only): one seed rule and one fuzz runner, so that every failure
//! prints how to replay it the same way.

use proptest::test_runner::{Config, RngSeed, TestRunner};

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

/// The proptest runner of one fuzz target: [`fuzz_cases`] cases from [`test_seed`].
pub fn fuzz_runner(target: &str, default_cases: u32) -> TestRunner {
    let cases = fuzz_cases(default_cases);
    let seed = test_seed(&format!("fuzz {target}, {cases} cases"));
    TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    })
}
