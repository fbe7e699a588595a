//! A throttling TCP proxy: a slow or stalling link between a client and a real server.
//!
//! Every byte from the server to the client goes through one shared pace (bytes per
//! second over all connections, like one mobile link), and can be held back entirely
//! (`pause`) and let go again (`resume`). Bytes towards the server pass unpaced. The
//! proxy counts what it delivered and when, so a test can tell when a download ended.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

/// Bytes written to the client at once: at 1 MiB/s a chunk is 4 ms of link, fine enough
/// that the pace is smooth at the scale of a player's buffers.
const CHUNK: usize = 4096;

#[derive(Default)]
struct Control {
    upstream: Mutex<Option<String>>,
    /// Bytes per second; 0: unlimited.
    rate: AtomicU64,
    /// When the link is free to send the next byte.
    next_free: Mutex<Option<Instant>>,
    delivered: AtomicU64,
    /// (Unix seconds, bytes delivered so far) after each write.
    log: Mutex<Vec<(f64, u64)>>,
}

/// The proxy; it stops accepting when dropped (connections in flight end with their peers).
pub struct ThrottleProxy {
    /// `127.0.0.1:PORT`
    pub addr: String,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    ctl: Arc<Control>,
    paused: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for ThrottleProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl ThrottleProxy {
    /// Listens on a free loopback port, unthrottled; it forwards once
    /// [`ThrottleProxy::forward_to`] names the server (which may need the proxy's address
    /// first, for its public URL).
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let ctl = Arc::new(Control::default());
        let (paused, _) = watch::channel(false);
        let (c, p) = (Arc::clone(&ctl), paused.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (c, p) = (Arc::clone(&c), p.subscribe());
                tokio::spawn(async move {
                    if let Err(e) = serve(client, c, p).await {
                        tracing::debug!(error = %e, "throttle proxy connection ended");
                    }
                });
            }
        });
        Ok(ThrottleProxy {
            url: format!("http://{addr}"),
            addr,
            ctl,
            paused,
            accept,
        })
    }

    /// The server (`host:port`) connections go to.
    pub fn forward_to(&self, upstream: &str) {
        *self
            .ctl
            .upstream
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(upstream.to_owned());
    }

    /// Paces what the server sends to `bytes_per_s` (`None`: as fast as it comes).
    pub fn set_rate(&self, bytes_per_s: Option<u64>) {
        self.ctl
            .rate
            .store(bytes_per_s.unwrap_or(0), Ordering::SeqCst);
    }

    /// Holds every byte towards the clients back until [`ThrottleProxy::resume`].
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    /// Bytes delivered to clients so far.
    pub fn delivered(&self) -> u64 {
        self.ctl.delivered.load(Ordering::SeqCst)
    }

    /// When (Unix seconds) the bytes delivered first reached `bytes`, if they did.
    pub fn reached_at(&self, bytes: u64) -> Option<f64> {
        self.ctl
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(_, n)| *n >= bytes)
            .map(|(t, _)| *t)
    }
}

async fn serve(client: TcpStream, ctl: Arc<Control>, paused: watch::Receiver<bool>) -> Result<()> {
    let upstream = ctl
        .upstream
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .context("the proxy has no server to forward to yet")?;
    let server = TcpStream::connect(&upstream).await?;
    let (mut client_rx, client_tx) = client.into_split();
    let (server_rx, mut server_tx) = server.into_split();
    let up = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_rx, &mut server_tx).await;
        let _ = server_tx.shutdown().await;
    });
    let down = pump_down(server_rx, client_tx, ctl, paused).await;
    up.abort();
    down
}

/// Server to client, paced and pausable.
async fn pump_down(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    ctl: Arc<Control>,
    mut paused: watch::Receiver<bool>,
) -> Result<()> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            to.shutdown().await?;
            return Ok(());
        }
        let mut sent = 0;
        while sent < n {
            paused.wait_for(|p| !*p).await?;
            let rate = ctl.rate.load(Ordering::SeqCst);
            // At most a tenth of a second of link per write, so a pause bites quickly.
            let m = if rate == 0 {
                n - sent
            } else {
                (n - sent).min((rate / 10).max(1) as usize)
            };
            if rate > 0 {
                let due = {
                    let mut next = ctl.next_free.lock().unwrap_or_else(PoisonError::into_inner);
                    let now = Instant::now();
                    let start = next.filter(|t| *t > now).unwrap_or(now);
                    *next = Some(start + Duration::from_secs_f64(m as f64 / rate as f64));
                    start
                };
                tokio::time::sleep_until(due).await;
                // A pause that began while this chunk waited for the link holds it too.
                paused.wait_for(|p| !*p).await?;
            }
            to.write_all(&buf[sent..sent + m]).await?;
            sent += m;
            let total = ctl.delivered.fetch_add(m as u64, Ordering::SeqCst) + m as u64;
            ctl.log
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((unix_now(), total));
        }
    }
}
