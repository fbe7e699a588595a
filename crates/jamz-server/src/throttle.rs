//! Login throttling: a token bucket per account and per client address.
//!
//! Every attempt (right or wrong, known or unknown name) takes a token from both
//! buckets before any password work; an empty bucket answers 429 with the
//! seconds until it refills. A successful login refills the account's bucket, so
//! the owner is not locked out by their own typos once they get it right.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys kept at most; past it, buckets that have refilled (forgettable) are
/// dropped, and if that is not enough, the oldest. Memory stays bounded under
/// a flood of made-up usernames.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
pub struct Rate {
    /// Attempts allowed in a burst (and refilled per `window`).
    pub attempts: u32,
    pub window: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

/// Too many attempts: retry after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttled {
    pub retry_after_secs: u64,
}

pub struct Throttle {
    per_account: Rate,
    per_address: Rate,
    buckets: Mutex<HashMap<Key, Bucket>>,
    /// With `--redis`: the buckets live there, shared by every process (the local ones
    /// serve while Redis is unreachable).
    shared: Option<redis::aio::ConnectionManager>,
    /// The deployment's prefix of its Redis keys.
    prefix: String,
}

/// Both buckets in one atomic step on Redis, by Redis's clock: the same token buckets as
/// [`Throttle::attempt`]. KEYS: the account's and the address's bucket; ARGV: each one's
/// capacity and refill per ms, then the keys' lifetime (ms). Returns 0 (taken) or the ms
/// to wait.
const SHARED_BUCKETS: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local wait = 0
local tokens = {}
for i = 1, 2 do
  local cap = tonumber(ARGV[2 * i - 1])
  local rate = tonumber(ARGV[2 * i])
  local b = redis.call('HMGET', KEYS[i], 't', 'at')
  local t = cap
  if b[1] then t = math.min(cap, tonumber(b[1]) + (now - tonumber(b[2])) * rate) end
  tokens[i] = t
  if t < 1 then wait = math.max(wait, (1 - t) / rate) end
end
if wait > 0 then return math.ceil(wait) end
for i = 1, 2 do
  redis.call('HSET', KEYS[i], 't', tostring(tokens[i] - 1), 'at', tostring(now))
  redis.call('PEXPIRE', KEYS[i], ARGV[5])
end
return 0
";

impl Throttle {
    pub fn new(per_account: Rate, per_address: Rate) -> Self {
        Self {
            per_account,
            per_address,
            buckets: Mutex::new(HashMap::new()),
            shared: None,
            prefix: String::new(),
        }
    }

    /// The buckets on Redis (`--redis`), shared by every process.
    pub fn shared(mut self, conn: Option<redis::aio::ConnectionManager>, prefix: &str) -> Self {
        self.shared = conn;
        self.prefix = prefix.to_string();
        self
    }

    /// Takes one attempt for `account` from `address`: from the shared buckets on Redis
    /// when there are some (and it answers), else from this process's.
    pub async fn check(&self, account: &str, address: IpAddr) -> Result<(), Throttled> {
        let Some(conn) = &self.shared else {
            return self.attempt(account, address);
        };
        let rate = |r: Rate| r.per_sec() / 1000.0;
        let lifetime_ms = self.per_account.max(self.per_address).window.as_millis() as u64;
        let answer: Result<u64, _> = redis::Script::new(SHARED_BUCKETS)
            .key(shared_key(
                &self.prefix,
                &Key::Account(account.to_lowercase()),
            ))
            .key(shared_key(&self.prefix, &Key::Address(address)))
            .arg(self.per_account.attempts)
            .arg(rate(self.per_account))
            .arg(self.per_address.attempts)
            .arg(rate(self.per_address))
            .arg(lifetime_ms.max(1000))
            .invoke_async(&mut conn.clone())
            .await;
        match answer {
            Ok(0) => Ok(()),
            Ok(wait_ms) => Err(Throttled {
                retry_after_secs: wait_ms.div_ceil(1000).max(1),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "Redis unreachable: login throttling counts on this process only");
                self.attempt(account, address)
            }
        }
    }

    /// The account's owner got in: their bucket is full again (on Redis too).
    pub async fn reset(&self, account: &str) {
        self.succeeded(account);
        if let Some(conn) = &self.shared {
            let key = shared_key(&self.prefix, &Key::Account(account.to_lowercase()));
            if let Err(e) = redis::AsyncCommands::del::<_, ()>(&mut conn.clone(), key).await {
                tracing::warn!(error = %e, "Redis unreachable: the account's shared bucket stays");
            }
        }
    }

    /// Takes one attempt for `account` (case-insensitive) from `address`.
    pub fn attempt(&self, account: &str, address: IpAddr) -> Result<(), Throttled> {
        self.attempt_at(account, address, Instant::now())
    }

    fn attempt_at(&self, account: &str, address: IpAddr, now: Instant) -> Result<(), Throttled> {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_KEYS {
            Self::prune(&mut map, now, self.per_account.max(self.per_address));
        }
        let keys = [
            (Key::Account(account.to_lowercase()), self.per_account),
            (Key::Address(address), self.per_address),
        ];
        // Both must have a token; only then are both taken.
        let mut wait = 0.0_f64;
        for (key, rate) in &keys {
            let tokens = map
                .get(key)
                .map_or(f64::from(rate.attempts), |b| rate.refill(*b, now));
            if tokens < 1.0 {
                wait = wait.max((1.0 - tokens) / rate.per_sec());
            }
        }
        if wait > 0.0 {
            return Err(Throttled {
                retry_after_secs: wait.ceil().max(1.0) as u64,
            });
        }
        for (key, rate) in keys {
            let tokens = map
                .get(&key)
                .map_or(f64::from(rate.attempts), |b| rate.refill(*b, now));
            map.insert(
                key,
                Bucket {
                    tokens: tokens - 1.0,
                    at: now,
                },
            );
        }
        Ok(())
    }

    /// The account's owner got in: their bucket is full again.
    pub fn succeeded(&self, account: &str) {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&Key::Account(account.to_lowercase()));
    }

    fn prune(map: &mut HashMap<Key, Bucket>, now: Instant, slowest: Rate) {
        let full_after = slowest.window;
        map.retain(|_, b| now.duration_since(b.at) < full_after);
        if map.len() >= MAX_KEYS {
            let mut ages: Vec<Instant> = map.values().map(|b| b.at).collect();
            ages.sort_unstable();
            let cutoff = ages[ages.len() / 2];
            map.retain(|_, b| b.at > cutoff);
        }
    }
}

/// The Redis key of a bucket.
fn shared_key(prefix: &str, key: &Key) -> String {
    match key {
        Key::Account(a) => format!("{prefix}:throttle:account:{a}"),
        Key::Address(a) => format!("{prefix}:throttle:address:{a}"),
    }
}

impl Rate {
    fn per_sec(&self) -> f64 {
        f64::from(self.attempts.max(1)) / self.window.as_secs_f64().max(0.001)
    }

    fn refill(&self, b: Bucket, now: Instant) -> f64 {
        let gained = now.duration_since(b.at).as_secs_f64() * self.per_sec();
        (b.tokens + gained).min(f64::from(self.attempts))
    }

    fn max(self, other: Rate) -> Rate {
        if self.window >= other.window {
            self
        } else {
            other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn rate(attempts: u32) -> Rate {
        Rate {
            attempts,
            window: Duration::from_secs(60),
        }
    }

    #[test]
    fn account_and_address_buckets_empty_and_refill() {
        let t = Throttle::new(rate(3), rate(5));
        let now = Instant::now();
        for _ in 0..3 {
            t.attempt_at("Ann", A, now).unwrap();
        }
        // The account is out, from any address and in any case.
        let e = t.attempt_at("ann", B, now).unwrap_err();
        assert_eq!(e.retry_after_secs, 20);
        // The address has two left, for other accounts.
        t.attempt_at("bob", A, now).unwrap();
        t.attempt_at("carl", A, now).unwrap();
        assert!(t.attempt_at("dan", A, now).is_err());
        // A refused attempt took nothing: the bob account still has its tokens.
        t.attempt_at("bob", B, now).unwrap();
        // One token back after a third of the window.
        t.attempt_at("ann", B, now + Duration::from_secs(20))
            .unwrap();
        t.succeeded("ANN");
        t.attempt_at("ann", B, now + Duration::from_secs(20))
            .unwrap();
    }
}
