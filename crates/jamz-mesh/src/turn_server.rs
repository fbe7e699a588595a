//! A real TURN server for tests: Debian's coturn (`turnserver`, scripts/apt/mesh.txt) run as
//! a child process with one long-term user, no TLS, no database but a file of its own.

use std::io::BufRead;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
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
    log: Arc<Log>,
    db: PathBuf,
}

/// What coturn wrote to its stdout, line by line as it comes (a reader thread appends).
#[derive(Default)]
struct Log {
    text: Mutex<String>,
    grew: Condvar,
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
        let db = dir.join(format!("{tag}.db"));
        let ip_text = ip.to_string();
        let port_text = port.to_string();
        let user_arg = format!("{user}:{credential}");
        let mut child = Command::new(bin)
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
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let log = Arc::new(Log::default());
        if let Some(out) = child.stdout.take() {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    let mut text = log.text.lock().unwrap_or_else(PoisonError::into_inner);
                    text.push_str(&line);
                    text.push('\n');
                    log.grew.notify_all();
                }
            });
        }
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
        self.log
            .text
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits (at most `within`) until coturn has released `count` allocations at their
    /// client's request (a refresh with lifetime 0), which it tells only in its log.
    pub fn wait_released(&self, count: usize, within: Duration) -> std::io::Result<()> {
        let released = |text: &String| text.matches("lifetime=0").count() >= count;
        let text = self.log.text.lock().unwrap_or_else(PoisonError::into_inner);
        let (text, _) = self
            .log
            .grew
            .wait_timeout_while(text, within, |t| !released(t))
            .unwrap_or_else(PoisonError::into_inner);
        if released(&text) {
            Ok(())
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("{count} allocations not released within {within:?}:\n{text}"),
            ))
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
        let _ = std::fs::remove_file(&self.db);
    }
}
