//! What the node's in-process tests share: a real server (in this process, or as its own
//! process where a test stops and restarts it), an account and a group on it, and
//! bounded waits for events.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use jamz_node::Notification;
use std::path::Path;
use std::time::Duration;

use jamz_node::{Node, NodeAuth, NodeConfig, NodeEvent, RestClient};
use jamz_proto::rest::AuthResponse;

/// A node of `ann` ("Ann's car") in `group`, silent (`null` output), its cache under `dir`.
pub fn ann_config(url: &str, group: &str, dir: &Path) -> NodeConfig {
    let auth = NodeAuth::Password {
        username: "ann".into(),
        password: "pw".into(),
    };
    let mut config = NodeConfig::new(url, auth, group);
    config.display_name = Some("Ann's car".into());
    config.output = "null".parse().unwrap();
    config.cache_dir = Some(dir.join("cache"));
    config
}

/// Bound on each wait for an event.
pub const WAIT: Duration = Duration::from_secs(30);

/// A jamz-server on a free loopback port, with user `ann` (password `pw`) and
/// her group `trip`: (url, ann's login, group id).
pub async fn world(dir: &Path) -> (String, AuthResponse, String) {
    let cfg = jamz_server::ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        dir.join("jamz.db"),
        dir.join("data"),
    );
    let server = jamz_server::bind(cfg).await.unwrap();
    let url = format!("http://{}", server.local_addr());
    tokio::spawn(server.run(std::future::pending()));
    let rest = RestClient::new(&url).unwrap();
    let auth = rest
        .register("ann", "ann@example.test", "pw")
        .await
        .unwrap();
    let group = rest.create_group("trip", None).await.unwrap();
    (url, auth, group.id)
}

/// The next event `pred` accepts (errors on the way are printed); panics naming
/// `what` after [`WAIT`].
pub async fn next_matching(
    node: &mut Node,
    what: &str,
    pred: impl Fn(&NodeEvent) -> bool,
) -> NodeEvent {
    tokio::time::timeout(WAIT, async {
        loop {
            let ev = node.next_event().await.expect("node stopped");
            if let NodeEvent::Session(Notification::Error { message, cmd }) = &ev {
                eprintln!("node error ({cmd:?}): {message}");
            }
            if pred(&ev) {
                return ev;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {what} in time"))
}

/// Sends `quit`, reads the events to their end and checks the node stopped cleanly.
pub async fn quit(mut node: Node) {
    node.send(jamz_node::NodeCommand::Quit).unwrap();
    tokio::time::timeout(WAIT, async { while node.next_event().await.is_some() {} })
        .await
        .expect("events did not end after quit");
    tokio::time::timeout(WAIT, node.join())
        .await
        .expect("the node did not stop after quit")
        .expect("the node failed");
}

/// A stereo 440 Hz tone of `seconds`, 16-bit PCM at 44.1 kHz.
pub fn write_tone(path: &Path, seconds: u32) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..44_100 * seconds {
        let v = ((i as f32 * 440.0 * std::f32::consts::TAU / 44_100.0).sin() * 8000.0) as i16;
        w.write_sample(v).unwrap();
        w.write_sample(v).unwrap();
    }
    w.finalize().unwrap();
}

/// A jamz-server process that can be stopped, and started again on the same address and
/// data (a server outage in the middle of a test).
pub struct StoppableServer {
    pub url: String,
    pub addr: std::net::SocketAddr,
    process: jamz_e2e::TestServer,
}

impl StoppableServer {
    /// Serves `dir`'s database (`jamz.db`) and files on `addr` (port 0: a free one).
    pub async fn start(dir: &Path, addr: std::net::SocketAddr) -> StoppableServer {
        let process = jamz_e2e::TestServer::start_in(dir, &addr.to_string())
            .await
            .unwrap();
        StoppableServer {
            url: process.url.clone(),
            addr: process.addr.parse().unwrap(),
            process,
        }
    }

    /// Stops it (SIGKILL: an outage gives no notice) and waits until it has.
    pub async fn stop(mut self) {
        self.process.kill9().await.unwrap();
    }
}

/// Level (16-bit) of [`write_ramp`]'s tone at its start and at its end.
pub const RAMP_FROM: f64 = 1_000.0;
pub const RAMP_TO: f64 = 21_000.0;

/// A stereo 440 Hz tone of `seconds` at 44.1 kHz whose level grows linearly from
/// [`RAMP_FROM`] to [`RAMP_TO`]: the level a recording hears tells where in the track it is.
pub fn write_ramp(path: &Path, seconds: u32) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let n = 44_100 * seconds;
    for i in 0..n {
        let level = RAMP_FROM + (RAMP_TO - RAMP_FROM) * f64::from(i) / f64::from(n);
        let v = ((f64::from(i) * 440.0 * std::f64::consts::TAU / 44_100.0).sin() * level) as i16;
        w.write_sample(v).unwrap();
        w.write_sample(v).unwrap();
    }
    w.finalize().unwrap();
}

/// What a `wav:` output recorded of a [`write_ramp`] track of `seconds`.
#[derive(Debug)]
pub struct HeardRamp {
    /// Seconds of the recording with sound in them (20 ms windows).
    pub audible_s: f64,
    /// Where in the track the first audible window was, by its level.
    pub first_position: Option<f64>,
}

/// Reads a `wav:` output's file (it must be a finished WAV) and finds the ramp in it.
pub fn heard_ramp(path: &Path, seconds: u32) -> HeardRamp {
    let mut r = hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("{} is not a finished WAV: {e}", path.display()));
    let spec = r.spec();
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => r.samples::<f32>().map(Result::unwrap).collect(),
        hound::SampleFormat::Int => r
            .samples::<i32>()
            .map(|s| s.unwrap() as f32 / (1u32 << (spec.bits_per_sample - 1)) as f32)
            .collect(),
    };
    let window = (spec.sample_rate / 50) as usize * usize::from(spec.channels);
    // Half the ramp's lowest level: silence and the quietest part of the tone apart.
    let audible = (RAMP_FROM / 2.0 / 32_768.0) as f32;
    let mut audible_windows = 0usize;
    let mut first_position = None;
    let mut previous_audible = false;
    for w in samples.chunks(window) {
        let peak = w.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        let is_audible = peak > audible;
        if is_audible {
            audible_windows += 1;
            // The second audible window: the first may hold only the sound's first samples.
            if previous_audible && first_position.is_none() {
                let level = f64::from(peak) * 32_768.0;
                first_position =
                    Some((level - RAMP_FROM) / (RAMP_TO - RAMP_FROM) * f64::from(seconds));
            }
        }
        previous_audible = is_audible;
    }
    HeardRamp {
        audible_s: audible_windows as f64 * 0.02,
        first_position,
    }
}
