//! Several server processes as one (deploy/scale-out.md): the Socket.IO adapter over
//! Redis (socketioxide-redis), so that a relay from a socket on one process reaches the
//! room's sockets on the others.
//!
//! The adapter type is the same with and without Redis: [`ClusterDriver`] is Redis's
//! pub/sub when `--redis` is given and nothing at all when it is not (one process: every
//! broadcast is local). When Redis goes away mid-run the driver says so once (a warning),
//! lets every broadcast go on locally (single-process relays) and counts only this process
//! as a server, so nothing waits for answers that cannot come; the connection manager
//! reconnects and subscribes again when Redis is back, and the driver says that too.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use socketioxide::adapter::Emitter;
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};
use tokio::sync::mpsc;

/// The server's Socket.IO adapter: Redis's when configured, else local only.
pub type Adapter = CustomRedisAdapter<Emitter, ClusterDriver>;
/// A socket of this server.
pub type Sock = socketioxide::extract::SocketRef<Adapter>;
/// The acknowledgement of an event received by this server.
pub type Ack = socketioxide::extract::AckSender<Adapter>;
/// This server's Socket.IO.
pub type Io = socketioxide::SocketIo<Adapter>;

/// How long a Redis command may take before this process carries on alone.
const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// After a failure, Redis is not tried again for this long: relays meanwhile stay local
/// and fast instead of each waiting for a timeout.
const RETRY_AFTER_FAILURE_MS: u64 = 1000;
/// How often a process checks its link to Redis.
const PING_EVERY: Duration = Duration::from_secs(1);
/// How long the adapter waits for other processes' answers (who is in a room).
const ADAPTER_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// An error of the Redis link.
#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct ClusterError(#[from] redis::RedisError);

type Handlers = Arc<RwLock<HashMap<String, mpsc::Sender<ChanItem>>>>;

struct RedisLink {
    conn: ConnectionManager,
    handlers: Handlers,
    /// Whether the last command failed (a warning was logged; the next success says so).
    down: AtomicBool,
    /// Milliseconds since `epoch` of the last failure.
    failed_at_ms: AtomicU64,
    epoch: std::time::Instant,
    /// The URL without its password, for logs.
    shown: String,
    /// Counts the times Redis came back after being unreachable (messages may have been
    /// missed meanwhile).
    back: tokio::sync::watch::Sender<u64>,
}

/// socketioxide-redis's pub/sub driver over a reconnecting Redis connection, or nothing.
#[derive(Clone)]
pub struct ClusterDriver {
    link: Option<Arc<RedisLink>>,
}

impl ClusterDriver {
    /// One process, no Redis: every broadcast is local.
    pub fn local() -> Self {
        Self { link: None }
    }

    /// Connects to Redis at `url` (RESP3 is asked for if the URL does not say).
    pub async fn connect(url: &str) -> Result<Self, ClusterError> {
        let url = with_resp3(url);
        let client = redis::Client::open(url.as_str())?;
        let handlers: Handlers = Arc::default();
        let push_handlers = handlers.clone();
        let config = ConnectionManagerConfig::new()
            .set_push_sender(move |msg: redis::PushInfo| {
                deliver(msg, &push_handlers);
                Ok::<(), std::convert::Infallible>(())
            })
            .set_automatic_resubscription()
            .set_response_timeout(Some(REDIS_RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(REDIS_CONNECT_TIMEOUT))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_with_config(client, config).await?;
        let link = Arc::new(RedisLink {
            conn,
            handlers,
            down: AtomicBool::new(false),
            failed_at_ms: AtomicU64::new(0),
            epoch: std::time::Instant::now(),
            shown: redact(&url),
            back: tokio::sync::watch::Sender::new(0),
        });
        tokio::spawn(watch(Arc::downgrade(&link)));
        Ok(Self { link: Some(link) })
    }

    /// The adapter's constructor for `SocketIo::builder().with_adapter`.
    pub fn adapter_state(self, prefix: &str) -> RedisAdapterCtr<Self> {
        RedisAdapterCtr::new_with_driver(
            self,
            RedisAdapterConfig::new()
                .with_prefix(prefix.to_string())
                .with_request_timeout(ADAPTER_REQUEST_TIMEOUT)
                .with_stream_buffer(8192),
        )
    }

    /// A connection for other commands (the shared counters), if clustered.
    pub fn connection(&self) -> Option<ConnectionManager> {
        self.link.as_ref().map(|l| l.conn.clone())
    }
}

/// A change of control made by one process, for the others (deploy/scale-out.md: each
/// process checks the DJ in its memory; this keeps that memory true).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct DjChange {
    pub session: String,
    pub epoch: u64,
    pub user: Option<jamz_proto::UserId>,
    /// The announcing process (it ignores its own announcements).
    pub from: String,
}

/// Where changes of control are announced: a Redis channel with `--redis`, nowhere
/// without (one process: its memory is the only one).
#[derive(Clone, Default)]
pub struct DjBus {
    link: Option<(Arc<RedisLink>, String)>,
    me: String,
}

impl DjBus {
    pub fn clustered(&self) -> bool {
        self.link.is_some()
    }

    /// Tells the other processes; a failure is logged (the link's warning), and every
    /// process reads the DJ again when Redis is back.
    pub async fn announce(&self, session: &str, dj: crate::live::Dj) {
        let Some((link, chan)) = &self.link else {
            return;
        };
        let change = DjChange {
            session: session.to_string(),
            epoch: dj.epoch,
            user: dj.user,
            from: self.me.clone(),
        };
        let Ok(payload) = serde_json::to_vec(&change) else {
            return;
        };
        let mut conn = link.conn.clone();
        match redis::AsyncCommands::publish::<_, _, redis::Value>(&mut conn, chan.as_str(), payload)
            .await
        {
            Ok(_) => link.succeeded(),
            Err(e) => link.failed("announce a change of control", &e),
        }
    }
}

/// What reaches a process from [`DjBus`]: other processes' changes of control, and the
/// count of Redis's comebacks (after one, forget what was learnt: messages may be lost).
pub struct DjListener {
    changes: mpsc::Receiver<ChanItem>,
    back: tokio::sync::watch::Receiver<u64>,
    me: String,
}

pub enum DjHeard {
    Change(DjChange),
    RedisBack,
}

impl DjListener {
    /// The next thing heard; `None` when the link is gone.
    pub async fn next(&mut self) -> Option<DjHeard> {
        loop {
            tokio::select! {
                item = self.changes.recv() => {
                    let (_, payload) = item?;
                    match serde_json::from_slice::<DjChange>(&payload) {
                        Ok(change) if change.from != self.me => return Some(DjHeard::Change(change)),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "a change of control that does not decode; ignored"),
                    }
                }
                changed = self.back.changed() => {
                    changed.ok()?;
                    return Some(DjHeard::RedisBack);
                }
            }
        }
    }
}

impl ClusterDriver {
    /// The bus of changes of control, and (with Redis) what this process hears on it.
    pub async fn dj_bus(&self, prefix: &str) -> Result<(DjBus, Option<DjListener>), ClusterError> {
        let me = format!("{:032x}", rand::random::<u128>());
        let Some(link) = &self.link else {
            return Ok((DjBus { link: None, me }, None));
        };
        let chan = format!("{prefix}#dj");
        let (tx, rx) = mpsc::channel(4096);
        link.handlers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(chan.clone(), tx);
        link.conn.clone().subscribe(chan.as_str()).await?;
        let listener = DjListener {
            changes: rx,
            back: link.back.subscribe(),
            me: me.clone(),
        };
        Ok((
            DjBus {
                link: Some((link.clone(), chan)),
                me,
            },
            Some(listener),
        ))
    }
}

impl RedisLink {
    fn skipping(&self) -> bool {
        self.down.load(Ordering::Relaxed)
            && (self.epoch.elapsed().as_millis() as u64)
                .saturating_sub(self.failed_at_ms.load(Ordering::Relaxed))
                < RETRY_AFTER_FAILURE_MS
    }

    fn failed(&self, what: &str, e: &redis::RedisError) {
        self.failed_at_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                redis = %self.shown,
                error = %e,
                what,
                "Redis unreachable: relays reach this process's sockets only until it is back"
            );
        }
    }

    fn succeeded(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::warn!(redis = %self.shown, "Redis reachable again: relays reach every process");
            self.back.send_modify(|n| *n += 1);
        }
    }
}

/// Pings Redis every [`PING_EVERY`] while the link lives: a process that only listens
/// (its sockets send nothing) still notices Redis going away, and reconnects (the
/// connection manager subscribes again) as soon as it is back.
async fn watch(link: std::sync::Weak<RedisLink>) {
    let mut every = tokio::time::interval(PING_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(link) = link.upgrade() else { return };
        let mut conn = link.conn.clone();
        match redis::cmd("PING").query_async::<()>(&mut conn).await {
            Ok(()) => link.succeeded(),
            Err(e) => link.failed("ping", &e),
        }
    }
}

fn deliver(msg: redis::PushInfo, handlers: &Handlers) {
    if !matches!(msg.kind, redis::PushKind::Message) || msg.data.len() < 2 {
        return;
    }
    let mut data = msg.data.into_iter();
    let (Some(chan), Some(payload)) = (data.next(), data.next()) else {
        return;
    };
    let (Ok(chan), Ok(payload)) = (
        redis::from_redis_value::<String>(chan),
        redis::from_redis_value::<Vec<u8>>(payload),
    ) else {
        return;
    };
    let handlers = handlers.read().unwrap_or_else(|p| p.into_inner());
    if let Some(tx) = handlers.get(&chan)
        && tx.try_send((chan, payload)).is_err()
    {
        tracing::warn!("Socket.IO adapter: Redis messages arrive faster than handled; one dropped");
    }
}

impl Driver for ClusterDriver {
    type Error = ClusterError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        let Some(link) = &self.link else {
            return Ok(());
        };
        if link.skipping() {
            return Ok(());
        }
        let mut conn = link.conn.clone();
        match redis::AsyncCommands::publish::<_, _, redis::Value>(&mut conn, chan, val).await {
            Ok(_) => link.succeeded(),
            // Degraded, not failed: the local part of the broadcast still goes out.
            Err(e) => link.failed("publish", &e),
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        let Some(link) = &self.link else {
            return Ok(MessageStream::new_empty());
        };
        let (tx, rx) = mpsc::channel(size);
        link.handlers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(chan.clone(), tx);
        link.conn.clone().subscribe(chan.as_str()).await?;
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        let Some(link) = &self.link else {
            return Ok(());
        };
        link.handlers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&chan);
        if let Err(e) = link.conn.clone().unsubscribe(chan.as_str()).await {
            link.failed("unsubscribe", &e);
        }
        Ok(())
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let Some(link) = &self.link else {
            return Ok(1);
        };
        if link.skipping() {
            return Ok(1);
        }
        let mut conn = link.conn.clone();
        let answer: Result<(String, u16), _> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(chan)
            .query_async(&mut conn)
            .await;
        match answer {
            Ok((_, n)) => {
                link.succeeded();
                Ok(n.max(1))
            }
            Err(e) => {
                link.failed("count servers", &e);
                Ok(1)
            }
        }
    }
}

/// `url` with `protocol=resp3` (the adapter's push messages need it) unless it names one.
fn with_resp3(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

/// `redis://user:secret@host` -> `redis://user:***@host`.
pub fn redact(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    let Some(at) = url[start..end].rfind('@').map(|i| start + i) else {
        return url.to_string();
    };
    match url[start..at].find(':').map(|i| start + i) {
        Some(colon) => format!("{}:***{}", &url[..colon], &url[at..]),
        None => format!("{}***{}", &url[..start], &url[at..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp3_is_asked_for_and_passwords_are_never_shown() {
        assert_eq!(
            with_resp3("redis://127.0.0.1:6379/"),
            "redis://127.0.0.1:6379/?protocol=resp3"
        );
        assert_eq!(
            with_resp3("redis://h/?db=1"),
            "redis://h/?db=1&protocol=resp3"
        );
        assert_eq!(
            with_resp3("redis://h/?protocol=resp2"),
            "redis://h/?protocol=resp2"
        );
        assert_eq!(redact("redis://u:s3cret@h:1/"), "redis://u:***@h:1/");
        assert_eq!(redact("redis://:s3cret@h:1/"), "redis://:***@h:1/");
        assert_eq!(redact("redis://h:1/"), "redis://h:1/");
    }
}
