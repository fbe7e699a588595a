//! A STUN server for tests (feature `test-support`): a real UDP socket on loopback that
//! answers every Binding request with the address it came from (XOR-MAPPED-ADDRESS), as a
//! public STUN server answers a host with no NAT, and counts who asked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rtc::stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Message};
use rtc::stun::xoraddr::XorMappedAddress;

/// A running responder; stops when dropped.
pub struct StunResponder {
    pub addr: SocketAddr,
    asked_by: Arc<(Mutex<Vec<SocketAddr>>, Condvar)>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StunResponder {
    /// Binds `127.0.0.1:0` and answers until dropped.
    pub fn start() -> std::io::Result<StunResponder> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Binds `addr` (a test network's public address) and answers until dropped.
    pub fn start_on(addr: SocketAddr) -> std::io::Result<StunResponder> {
        let socket = UdpSocket::bind(addr)?;
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        let addr = socket.local_addr()?;
        let asked_by = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (asked, stopped) = (Arc::clone(&asked_by), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !stopped.load(Ordering::Relaxed) {
                let Ok((n, source)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let mut request = Message::new();
                if request.unmarshal_binary(&buf[..n]).is_err() || request.typ != BINDING_REQUEST {
                    continue;
                }
                asked.0.lock().unwrap().push(source);
                asked.1.notify_all();
                let mut answer = Message::new();
                let built = answer.build(&[
                    Box::new(request.transaction_id),
                    Box::new(BINDING_SUCCESS),
                    Box::new(XorMappedAddress {
                        ip: source.ip(),
                        port: source.port(),
                    }),
                ]);
                if built.is_ok() {
                    let _ = socket.send_to(&answer.raw, source);
                }
            }
        });
        Ok(StunResponder {
            addr,
            asked_by,
            stop,
            thread: Some(thread),
        })
    }

    /// Every address a Binding request came from, in order.
    pub fn asked_by(&self) -> Vec<SocketAddr> {
        self.asked_by.0.lock().unwrap().clone()
    }

    /// Waits (at most `timeout`) until `n` distinct addresses have asked; returns those
    /// that did.
    pub fn wait_askers(&self, n: usize, timeout: Duration) -> BTreeSet<SocketAddr> {
        let (lock, changed) = &*self.asked_by;
        let distinct = |v: &Vec<SocketAddr>| v.iter().copied().collect::<BTreeSet<_>>();
        let guard = lock.lock().unwrap();
        let (guard, _) = changed
            .wait_timeout_while(guard, timeout, |v| distinct(v).len() < n)
            .unwrap();
        distinct(&guard)
    }

    /// `stun:127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("stun:{}", self.addr)
    }
}

impl Drop for StunResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
