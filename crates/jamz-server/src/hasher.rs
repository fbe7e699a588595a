//! Password hashing on a fixed pool of threads with a bounded queue.
//!
//! Each argon2 check holds about 19 MiB (the crate's default `m_cost`) for its
//! duration. Unbounded, 128 concurrent logins took the process to 9.7 GB, most of
//! it kept by the allocator afterwards. Here at most `workers` checks run at
//! once, always on the same threads (so the allocator's per-thread arenas that
//! hold that memory stay `workers` in number), and at most `queue` wait; past that
//! a caller is told to come back later ([`Busy`]). Each thread checks
//! passwords in one buffer of its own, allocated once: freed and reallocated
//! per check, the allocator kept growing the process by about 19 MiB per check.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;

/// The pool is full: the caller should answer 503 with `Retry-After`.
#[derive(Debug, Clone, Copy)]
pub struct Busy;

enum Job {
    Hash {
        password: String,
        reply: oneshot::Sender<Option<String>>,
    },
    Verify {
        password: String,
        /// `None`: no such user; checked against the dummy hash so that the
        /// answer costs the same as for a real one.
        hash: Option<String>,
        reply: oneshot::Sender<bool>,
    },
}

#[derive(Clone)]
pub struct Hasher {
    jobs: mpsc::SyncSender<Job>,
    /// Jobs finished; read by tests to count the work a login costs.
    #[cfg_attr(not(test), allow(dead_code))]
    done: Arc<AtomicU64>,
}

impl Hasher {
    /// Starts `workers` threads (at least one) with room for `queue` waiting jobs.
    pub fn start(workers: usize, queue: usize) -> std::io::Result<Self> {
        let workers = workers.max(1);
        let (tx, rx) = mpsc::sync_channel::<Job>(queue);
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let done = Arc::new(AtomicU64::new(0));
        // A hash of a random password with the parameters real hashes use.
        let dummy = hash(&hex::encode(rand::random::<[u8; 16]>())).unwrap_or_default();
        for i in 0..workers {
            let rx = rx.clone();
            let done = done.clone();
            let dummy = dummy.clone();
            std::thread::Builder::new()
                .name(format!("jamz-hash-{i}"))
                .spawn(move || {
                    let mut blocks: Vec<Block> = Vec::new();
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(poisoned) => poisoned.into_inner().recv(),
                        };
                        let Ok(job) = job else { break };
                        match job {
                            Job::Hash { password, reply } => {
                                let hashed = hash(&password);
                                done.fetch_add(1, Ordering::Relaxed);
                                let _ = reply.send(hashed);
                            }
                            Job::Verify {
                                password,
                                hash,
                                reply,
                            } => {
                                let ok = verify(
                                    &password,
                                    hash.as_deref().unwrap_or(&dummy),
                                    &mut blocks,
                                ) && hash.is_some();
                                done.fetch_add(1, Ordering::Relaxed);
                                let _ = reply.send(ok);
                            }
                        }
                    }
                })?;
        }
        Ok(Self { jobs: tx, done })
    }

    fn submit(&self, job: Job) -> Result<(), Busy> {
        self.jobs.try_send(job).map_err(|_| Busy)
    }

    /// A new PHC hash of `password`; `Ok(None)` if hashing itself failed.
    pub async fn hash(&self, password: String) -> Result<Option<String>, Busy> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Hash { password, reply })?;
        Ok(rx.await.ok().flatten())
    }

    /// Whether `password` matches `hash`; the same work when `hash` is `None`
    /// (unknown user), answering false.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, Busy> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Verify {
            password,
            hash,
            reply,
        })?;
        Ok(rx.await.unwrap_or(false))
    }

    /// Jobs finished since start.
    #[cfg(test)]
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }
}

fn hash(password: &str) -> Option<String> {
    // From the one `rand` the workspace uses: argon2's own `OsRng` needs a
    // rand_core feature that only other crates' features happened to turn on.
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| tracing::error!(error = %e, "encode salt"))
        .ok()?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| tracing::error!(error = %e, "hash password"))
        .ok()
}

/// Checks `password` against a PHC hash, in `blocks` (grown once to the
/// hash's memory cost, then reused).
fn verify(password: &str, hash: &str, blocks: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let need = params.block_count();
    if blocks.len() < need {
        blocks.resize(need, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params);
    if argon
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut blocks[..need])
        .is_err()
    {
        return false;
    }
    // Output's comparison is constant-time.
    Output::new(&out).is_ok_and(|o| o == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_users_cost_one_check_like_known_ones() {
        let h = Hasher::start(1, 4).unwrap();
        let real = h.hash("secret".into()).await.unwrap().unwrap();
        let before = h.done();
        assert!(h.verify("secret".into(), Some(real.clone())).await.unwrap());
        assert!(!h.verify("wrong".into(), Some(real)).await.unwrap());
        assert_eq!(h.done() - before, 2);
        // No user: still one full argon2 check (against the dummy hash), still false.
        assert!(!h.verify("secret".into(), None).await.unwrap());
        assert_eq!(h.done() - before, 3);
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_not_grown() {
        let h = Hasher::start(1, 1).unwrap();
        let mut pending = Vec::new();
        let mut busy = 0;
        for i in 0..16 {
            let h = h.clone();
            match h.jobs.try_send(Job::Hash {
                password: format!("p{i}"),
                reply: oneshot::channel().0,
            }) {
                Ok(()) => pending.push(i),
                Err(_) => busy += 1,
            }
        }
        // One running (maybe), one queued: at most two accepted.
        assert!(pending.len() <= 2, "{pending:?}");
        assert!(busy >= 14);
    }
}
