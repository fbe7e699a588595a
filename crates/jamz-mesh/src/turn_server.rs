//! A real TURN server for tests: Debian's coturn (`turnserver`, scripts/apt/mesh.txt) run as
//! a child process with one long-term user, no TLS, no database but a file of its own.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rtc::stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Message, TransactionId};

/// The binary, `JAMZ_TURNSERVER` or `turnserver` on the usual paths.
pub fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("JAMZ_TURNSERVER") {
        return Some(PathBuf::from(p));
    }
    ["/usr/bin/turnserver", "/usr/local/bin/turnserver"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A running coturn, killed when dropped.
pub struct TurnServerProcess {
    child: Child,
    pub address: SocketAddr,
    log: PathBuf,
    db: PathBuf,
}

impl TurnServerProcess {
    /// Starts coturn on `ip` (a free port), relaying from `ip`, with the one user
    /// `user`/`credential`; waits (up to 20 s) until it answers a STUN Binding request.
    pub fn start(ip: IpAddr, user: &str, credential: &str) -> std::io::Result<Self> {
        let port = UdpSocket::bind(SocketAddr::new(ip, 0))?
            .local_addr()?
            .port();
        Self::start_on(SocketAddr::new(ip, port), user, credential)
    }

    /// [`TurnServerProcess::start`] on `address` (a server started again where one was).
    pub fn start_on(address: SocketAddr, user: &str, credential: &str) -> std::io::Result<Self> {
        let bin = binary().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "turnserver not found (apt-get install coturn: scripts/apt/mesh.txt)",
            )
        })?;
        let (ip, port) = (address.ip(), address.port());
        let tag = format!("jamz-turn-{}-{port}", std::process::id());
        let dir = std::env::temp_dir();
        let log = dir.join(format!("{tag}.log"));
        let db = dir.join(format!("{tag}.db"));
        let ip_text = ip.to_string();
        let port_text = port.to_string();
        let user_arg = format!("{user}:{credential}");
        let child = Command::new(bin)
            .args(["-n", "--no-cli", "--no-tls", "--no-dtls", "--listening-ip"])
            .arg(&ip_text)
            .arg("--listening-port")
            .arg(&port_text)
            .args(["--relay-ip", &ip_text])
            .args([
                "--lt-cred-mech",
                "--user",
                &user_arg,
                "--realm",
                "jamz.test",
            ])
            // tests on loopback relay to loopback peers
            .args([
                "--fingerprint",
                "--allow-loopback-peers",
                "--no-software-attribute",
            ])
            .args([
                "--verbose",
                "--simple-log",
                "--log-file",
                "stdout",
                "--userdb",
            ])
            .arg(&db)
            .arg("--pidfile")
            .arg(dir.join(format!("{tag}.pid")))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log)?)
            .stderr(Stdio::null())
            .spawn()?;
        let server = TurnServerProcess {
            child,
            address: SocketAddr::new(ip, port),
            log,
            db,
        };
        server.wait_ready(Duration::from_secs(20))?;
        Ok(server)
    }

    /// What coturn logged so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (at most `within`) until coturn has released `count` allocations at their
    /// client's request (a refresh with lifetime 0). coturn tells it only in its log file,
    /// which is read again every 50 ms until then.
    pub fn wait_released(&self, count: usize, within: Duration) -> std::io::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let log = self.log();
            if log.matches("lifetime=0").count() >= count {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("{count} allocations not released within {within:?}:\n{log}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_ready(&self, within: Duration) -> std::io::Result<()> {
        let socket = UdpSocket::bind(SocketAddr::new(self.address.ip(), 0))?;
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 1500];
        while Instant::now() < deadline {
            let mut msg = Message::new();
            msg.build(&[Box::new(TransactionId::new()), Box::new(BINDING_REQUEST)])
                .map_err(std::io::Error::other)?;
            socket.send_to(&msg.raw, self.address)?;
            if let Ok((n, _)) = socket.recv_from(&mut buf) {
                let mut answer = Message::new();
                if answer.unmarshal_binary(&buf[..n]).is_ok() && answer.typ == BINDING_SUCCESS {
                    return Ok(());
                }
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "turnserver on {} did not answer within {within:?}:\n{}",
                self.address,
                self.log()
            ),
        ))
    }
}

impl Drop for TurnServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_file(&self.db);
    }
}
