//! "This device hosts the session" for a face: at most one [`HostedServer`],
//! listening on `JAMZ_HOST_PORT` (default 5050) unless a port is asked for, and
//! announced on the local network (mDNS) so other cars find it without its address
//! (unless `JAMZ_MDNS=off`).

use std::path::PathBuf;

use tokio::sync::Mutex;

use super::{App, HostedView};
use crate::discovery::{self, Announcer};
use crate::error::NodeError;
use crate::host::{DEFAULT_HOST_PORT, HostedServer};

/// Overrides the port of a hosted session (tests; a port already in use).
pub const HOST_PORT_ENV: &str = "JAMZ_HOST_PORT";

pub(super) struct Hosting {
    dir: PathBuf,
    port: u16,
    server: Mutex<Option<Served>>,
}

/// The server and its announcement, which lives exactly as long.
struct Served {
    server: HostedServer,
    announcer: Option<Announcer>,
}

impl Hosting {
    pub(super) fn new(dir: PathBuf) -> Result<Hosting, NodeError> {
        let port = match std::env::var(HOST_PORT_ENV) {
            Ok(p) => p
                .parse()
                .map_err(|_| NodeError::Invalid(format!("{HOST_PORT_ENV}={p} is not a port")))?,
            Err(_) => DEFAULT_HOST_PORT,
        };
        Ok(Hosting {
            dir,
            port,
            server: Mutex::new(None),
        })
    }

    pub(super) async fn view(&self) -> Option<HostedView> {
        self.server
            .lock()
            .await
            .as_ref()
            .map(|s| HostedView::from(&s.server))
    }
}

impl From<&HostedServer> for HostedView {
    fn from(h: &HostedServer) -> Self {
        HostedView {
            url: h.local_url(),
            port: h.port(),
            lan_urls: h.lan_urls(),
        }
    }
}

impl App {
    /// Runs the reference server in this process, listening on every interface
    /// so other cars on this device's hotspot can join (`port` 0 picks a free one).
    pub async fn host(&self, port: Option<u16>) -> Result<HostedView, NodeError> {
        let mut slot = self.hosting.server.lock().await;
        if let Some(h) = slot.as_ref() {
            return Err(NodeError::AlreadyHosting(h.server.local_url()));
        }
        let server =
            HostedServer::start(&self.hosting.dir, port.unwrap_or(self.hosting.port)).await?;
        let view = HostedView::from(&server);
        // Without an announcement the cars still join by the listed URLs: a warning only.
        let announcer = if discovery::turned_off() {
            None
        } else {
            // The hosted server speaks plain http (a hotspot with no CA to trust).
            Announcer::start(
                &discovery::device_announcement_name(),
                server.port(),
                None,
                false,
            )
            .inspect_err(|e| tracing::warn!("the hosted session is not announced: {e}"))
            .ok()
        };
        *slot = Some(Served { server, announcer });
        Ok(view)
    }

    pub async fn stop_hosting(&self) -> Result<(), NodeError> {
        let served = self.hosting.server.lock().await.take();
        match served {
            Some(Served { server, announcer }) => {
                if let Some(a) = announcer {
                    a.stop().await;
                }
                server.stop().await
            }
            None => Ok(()),
        }
    }
}
