//! Network profiles and links: latency, jitter, loss (as a TCP retransmission: Socket.IO runs
//! over a websocket, so a lost segment arrives late and in order, never not at all), periodic
//! latency spikes, and asymmetric paths.
use super::rng::Rng;

/// One network condition, the same for every device's link to the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: &'static str,
    /// One-way latency device -> server, ms.
    pub up_ms: f64,
    /// One-way latency server -> device, ms.
    pub down_ms: f64,
    /// Each one-way latency varies uniformly by +-this, ms.
    pub jitter_ms: f64,
    /// Probability that a message needs a retransmission.
    pub loss: f64,
    /// Every `period` ms, messages sent within `length` ms get `extra` ms more latency
    /// (satellite handovers).
    pub spikes: Option<Spikes>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spikes {
    pub period_ms: f64,
    pub length_ms: f64,
    pub extra_ms: f64,
}

/// TCP's minimum retransmission timeout (RFC 6298 allows 1 s; Linux uses 200 ms).
const MIN_RTO_MS: f64 = 200.0;

impl Profile {
    /// A wired or Wi-Fi LAN: 1 +- 0.5 ms.
    pub fn lan() -> Self {
        Self {
            name: "LAN",
            up_ms: 1.0,
            down_ms: 1.0,
            jitter_ms: 0.5,
            loss: 0.0,
            spikes: None,
        }
    }

    /// LTE: 50 +- 30 ms, 1 % loss.
    pub fn lte() -> Self {
        Self {
            name: "LTE",
            up_ms: 50.0,
            down_ms: 50.0,
            jitter_ms: 30.0,
            loss: 0.01,
            spikes: None,
        }
    }

    /// Starlink-like: 40 +- 20 ms, 2 % loss, 150 ms spikes every 15 s (handovers).
    pub fn starlink() -> Self {
        Self {
            name: "Starlink",
            up_ms: 40.0,
            down_ms: 40.0,
            jitter_ms: 20.0,
            loss: 0.02,
            spikes: Some(Spikes {
                period_ms: 15_000.0,
                length_ms: 500.0,
                extra_ms: 150.0,
            }),
        }
    }

    /// An asymmetric path: 10 ms up, 60 ms down (+-1 ms).
    pub fn asymmetric() -> Self {
        Self {
            name: "asymmetric 10/60",
            up_ms: 10.0,
            down_ms: 60.0,
            jitter_ms: 1.0,
            loss: 0.0,
            spikes: None,
        }
    }

    /// The four profiles of the bench.
    pub fn all() -> Vec<Profile> {
        vec![
            Self::lan(),
            Self::lte(),
            Self::starlink(),
            Self::asymmetric(),
        ]
    }
}

/// One direction of one device's connection: in order, with the profile's delays.
#[derive(Debug, Clone)]
pub struct Pipe {
    base_ms: f64,
    last_delivery: f64,
    rng: Rng,
}

impl Pipe {
    pub fn new(base_ms: f64, rng: Rng) -> Self {
        Self {
            base_ms,
            last_delivery: 0.0,
            rng,
        }
    }

    /// True time at which a message sent at `now` arrives.
    pub fn delivery(&mut self, now: f64, p: &Profile) -> f64 {
        let mut delay = (self.base_ms + p.jitter_ms * self.rng.signed()).max(0.05);
        if let Some(s) = p.spikes
            && s.period_ms > 0.0
            && now.rem_euclid(s.period_ms) < s.length_ms
        {
            delay += s.extra_ms;
        }
        let rto = MIN_RTO_MS.max(2.0 * (p.up_ms + p.down_ms));
        let mut tries = 0;
        while p.loss > 0.0 && tries < 8 && self.rng.chance(p.loss) {
            delay += rto * f64::from(1u32 << tries);
            tries += 1;
        }
        let at = (now + delay).max(self.last_delivery);
        self.last_delivery = at;
        at
    }

    /// A new connection: nothing queued any more.
    pub fn reset(&mut self, now: f64) {
        self.last_delivery = now;
    }
}
