//! **(ext)** The notice a stopping server gives its clients (docs/protocol.md,
//! "Several servers"): every socket of this process gets `server-shutdown`
//! `{reconnectAfterMs}` before the sockets close, so that a client with another
//! server of the same service moves there at once instead of waiting out its
//! reconnection backoff, and one with a single address (a proxy in front of
//! several processes) waits long enough for the proxy to stop sending it here.

use std::time::Duration;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;

/// The event's name.
pub const SERVER_SHUTDOWN: &str = "server-shutdown";

/// The wait suggested to clients with no other server to go to: about what a
/// proxy's health check or a service manager's restart takes.
pub const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// Tells every socket of this process (never those of other processes sharing
/// an adapter) that it is about to close.
pub(crate) async fn notify<A: Adapter>(io: &SocketIo<A>) {
    let ms = u64::try_from(RECONNECT_AFTER.as_millis()).unwrap_or(u64::MAX);
    let data = serde_json::json!({ "reconnectAfterMs": ms });
    let Some(default) = io.of("/") else {
        return; // no namespace (never registered, or gone): no socket to tell
    };
    match default.local().emit(SERVER_SHUTDOWN, &data).await {
        Ok(()) => tracing::info!(
            reconnect_after_ms = ms,
            "shutdown notice sent to every socket"
        ),
        Err(e) => tracing::warn!(error = %e, "shutdown notice not sent to every socket"),
    }
}
