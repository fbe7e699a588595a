//! "This device hosts the session": the reference server (jamz-server) in this
//! process, for a convoy with no internet whose cars share this device's hotspot.
//! Both faces use it: the app's host switch and `jamz server`.
//! Only with the `host` feature: a build that never hosts links no server.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

/// `jamz server`'s arguments, and what stops a server (Ctrl-C, SIGTERM).
pub use jamz_server::{ServerArgs, stop_signal};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::NodeError;

/// The reference server's default port: other cars type only the address.
pub const DEFAULT_HOST_PORT: u16 = 5050;

/// A server running in this process until [`HostedServer::stop`] (or drop).
#[derive(Debug)]
pub struct HostedServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl HostedServer {
    /// Listens on every interface at `port` (0: a free one), keeping its database
    /// and uploaded files in `dir` (created if missing; what is there is reused,
    /// so a hosted session survives a restart of the app).
    pub async fn start(dir: &Path, port: u16) -> Result<HostedServer, NodeError> {
        std::fs::create_dir_all(dir).map_err(|e| NodeError::io(dir, e))?;
        let bind = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
        let config = jamz_server::ServerConfig::new(bind, dir.join("jamz.db"), dir.to_path_buf());
        let bound = jamz_server::bind(config)
            .await
            .map_err(|e| NodeError::Host(e.to_string()))?;
        let addr = bound.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(bound.run(async move {
            let _ = stopped.await;
        }));
        tracing::info!(%addr, "hosting the session");
        Ok(HostedServer {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The URL this device itself uses.
    pub fn local_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    /// URLs other cars can use: one per network this device is on.
    pub fn lan_urls(&self) -> Vec<String> {
        lan_addresses()
            .into_iter()
            .map(|ip| format!("http://{}", SocketAddr::new(ip, self.port())))
            .collect()
    }

    /// Stops serving (every socket is closed) and waits for the server to end.
    pub async fn stop(mut self) -> Result<(), NodeError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.task.take() {
            Some(task) => match task.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(NodeError::Host(format!("the hosted server failed: {e}"))),
                Err(e) => Err(NodeError::Host(format!("the hosted server panicked: {e}"))),
            },
            None => Ok(()),
        }
    }
}

/// `jamz server`: binds, tells `listening` its address and base URL (`https://` with TLS), and
/// serves in the foreground until `stop` completes.
pub async fn serve(
    args: ServerArgs,
    listening: impl FnOnce(SocketAddr, &str),
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    let server = jamz_server::bind(args.into_config())
        .await
        .map_err(|e| NodeError::Host(format!("starting the server: {e}")))?;
    listening(server.local_addr(), &server.local_url());
    server
        .run(stop)
        .await
        .map_err(|e| NodeError::Host(format!("serving: {e}")))
}

impl Drop for HostedServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// This device's addresses on its networks, read from its interfaces. Asking the
/// kernel for a route would find nothing on a hotspot with no internet (its
/// subnet has no default route), which is the case hosting exists for.
pub fn lan_addresses() -> Vec<IpAddr> {
    match if_addrs::get_if_addrs() {
        Ok(interfaces) => lan_addresses_of(
            interfaces
                .iter()
                .filter(|i| {
                    !matches!(
                        i.oper_status,
                        if_addrs::IfOperStatus::Down
                            | if_addrs::IfOperStatus::NotPresent
                            | if_addrs::IfOperStatus::LowerLayerDown
                    )
                })
                .map(|i| i.ip()),
        ),
        Err(e) => {
            tracing::warn!("cannot list the network interfaces: {e}");
            Vec::new()
        }
    }
}

/// The addresses other cars can type, sorted: IPv4 only (what a person types),
/// without loopback, link-local (169.254/16: no DHCP server answered) or
/// unspecified ones.
pub fn lan_addresses_of(ips: impl IntoIterator<Item = IpAddr>) -> Vec<IpAddr> {
    let found: BTreeSet<IpAddr> = ips
        .into_iter()
        .filter(|ip| match ip {
            IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local() && !v4.is_unspecified(),
            IpAddr::V6(_) => false,
        })
        .collect();
    found.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hosts_answers_http_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostedServer::start(dir.path(), 0).await.unwrap();
        assert_ne!(host.port(), 0);
        let rest = jamz_link::RestClient::new(&host.local_url()).unwrap();
        let auth = rest
            .register("ann", "ann@example.com", "pw-long-enough")
            .await
            .unwrap();
        assert_eq!(auth.user.username, "ann");
        assert!(dir.path().join("jamz.db").exists());
        for url in host.lan_urls() {
            assert!(url.ends_with(&format!(":{}", host.port())), "{url}");
        }
        let port = host.port();
        host.stop().await.unwrap();
        // Stopped: nothing listens there any more.
        let gone = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
        assert!(gone.is_err(), "still listening after stop");
        // Restarted on the same data: the account is still there.
        let again = HostedServer::start(dir.path(), 0).await.unwrap();
        let rest = jamz_link::RestClient::new(&again.local_url()).unwrap();
        let auth = rest.login("ann", "pw-long-enough").await.unwrap();
        assert_eq!(auth.user.username, "ann");
    }

    #[tokio::test]
    async fn a_port_in_use_is_a_clear_error() {
        let taken = std::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let e = HostedServer::start(dir.path(), port).await.unwrap_err();
        assert!(e.to_string().contains(&port.to_string()), "{e}");
    }
}
