//! Shared helpers of the `node_*` tests: a group of registered members, `jamz node
//! --json` processes driven over their stdin/stdout, generated click tracks, and
//! the analysis that finds each click in a recording and compares nodes.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::VecDeque;
use std::ops::Range;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use jamz_e2e::{TestServer, workspace_bin};
use jamz_link::RestClient;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// Upper bound of any single wait (generous: a slow CI box building in parallel).
pub const WAIT: Duration = Duration::from_secs(20);

pub const PASSWORD: &str = "correct horse battery";

/// Sample rate of the generated tracks (the paced outputs run at 48 kHz too).
pub const RATE: u32 = 48_000;
/// One click every this many seconds of track.
pub const CLICK_EVERY_S: f64 = 0.2;
/// Click length: 2 ms of a constant level (sharp edges, easy to time).
pub const CLICK_FRAMES: usize = 96;
/// Click levels cycle through these (with the polarity naming the track), so a
/// click can only be paired with the same click of another recording unless a
/// node is a whole cycle (0.6 s) off.
pub const LEVELS: [f32; 3] = [0.25, 0.5, 0.75];

// ---------------------------------------------------------------- world

/// A server, `n` registered members and one group of all of them.
pub struct World {
    pub server: TestServer,
    pub users: Vec<(String, i64)>,
    pub group: String,
    pub dir: tempfile::TempDir,
}

impl World {
    pub async fn new(n: usize) -> Result<Self> {
        Self::new_with_server_args(n, &[]).await
    }

    /// [`World::new`] with more `jamz-server` arguments (`--public-url` of a proxy, say).
    pub async fn new_with_server_args(n: usize, server_args: &[&str]) -> Result<Self> {
        Self::new_bound(n, "127.0.0.1:0", server_args).await
    }

    /// [`World::new_with_server_args`] with the server listening on `bind` (`0.0.0.0:0`:
    /// every address of a test's network namespace).
    pub async fn new_bound(n: usize, bind: &str, server_args: &[&str]) -> Result<Self> {
        // Every member add is a username lookup and every node a login, all from this
        // address: a world of 20 or 32 cars (the mesh benchmark) needs more than the
        // default per-address budget.
        let budget = (4 * n).to_string();
        let mut args = server_args.to_vec();
        if n > 8 {
            args.extend(["--login-attempts-per-address", budget.as_str()]);
        }
        let dir = tempfile::tempdir()?;
        let server = if bind == "127.0.0.1:0" {
            TestServer::start_with_args(&args).await?
        } else {
            // Its data in the world's directory: it outlives a kill and restart.
            let data = dir.path().join("server");
            std::fs::create_dir_all(&data)?;
            TestServer::start_in_with_args(&data, bind, &args).await?
        };
        let mut users = Vec::new();
        let mut owner = None;
        for i in 0..n {
            let name = format!("car{i}");
            let rest = RestClient::new(&server.url)?;
            let auth = rest
                .register(&name, &format!("{name}@example.test"), PASSWORD)
                .await?;
            users.push((name, auth.user.id));
            if owner.is_none() {
                owner = Some(rest);
            }
        }
        let owner = owner.context("no members")?;
        let group = owner.create_group("road trip", None).await?;
        for (name, _) in users.iter().skip(1) {
            owner.add_member(&group.id, name).await?;
        }
        Ok(World {
            server,
            users,
            group: group.id,
            dir,
        })
    }

    pub fn user_id(&self, i: usize) -> i64 {
        self.users[i].1
    }

    /// Waits until node `i` (of `nodes`, member `i`) has a connected mesh link to each of
    /// the first `members` members but itself.
    pub async fn wait_linked(&self, nodes: &mut [NodeProc], members: usize) -> Result<()> {
        for (i, n) in nodes.iter_mut().enumerate() {
            for j in (0..members).filter(|j| *j != i).map(|j| self.user_id(j)) {
                n.wait_event("peer", |v| v["userId"] == j && v["state"] == "connected")
                    .await?;
            }
        }
        Ok(())
    }

    /// `jamz node --json` for member `i`, playing into `output`.
    pub async fn node(&self, i: usize, output: &str, env: &[(&str, &str)]) -> Result<NodeProc> {
        self.node_with_args(i, output, env, &[]).await
    }

    /// [`World::node`] with more command-line arguments (flags under test).
    pub async fn node_with_args(
        &self,
        i: usize,
        output: &str,
        env: &[(&str, &str)],
        extra: &[&str],
    ) -> Result<NodeProc> {
        self.node_at(i, &self.server.url, output, env, extra).await
    }

    /// [`World::node_with_args`] reaching the server at `server` (a
    /// [`jamz_e2e::LinkProxy`] in front of it, whose link the test cuts).
    pub async fn node_at(
        &self,
        i: usize,
        server: &str,
        output: &str,
        env: &[(&str, &str)],
        extra: &[&str],
    ) -> Result<NodeProc> {
        self.node_under(&[], i, server, output, env, extra).await
    }

    /// [`World::node_at`] run inside the named network namespace `netns` (`ip netns exec`):
    /// a car on a network of its own, behind its own NAT.
    pub async fn node_in_netns(
        &self,
        netns: &str,
        i: usize,
        server: &str,
        output: &str,
        extra: &[&str],
    ) -> Result<NodeProc> {
        self.node_under(
            &["ip", "netns", "exec", netns],
            i,
            server,
            output,
            &[],
            extra,
        )
        .await
    }

    /// Member `i`'s node, its command run by `wrapper` (none: run directly).
    async fn node_under(
        &self,
        wrapper: &[&str],
        i: usize,
        server: &str,
        output: &str,
        env: &[(&str, &str)],
        extra: &[&str],
    ) -> Result<NodeProc> {
        let name = &self.users[i].0;
        let cache = self.dir.path().join(format!("cache-{name}"));
        let config = self.dir.path().join(format!("config-{name}"));
        let display = format!("{name}'s car");
        let mut args: Vec<&str> = vec![
            "node",
            "--json",
            "--server",
            server,
            "--username",
            name.as_str(),
            "--password",
            PASSWORD,
            "--group",
            self.group.as_str(),
            "--name",
            display.as_str(),
            "--output",
            output,
            "--cache-dir",
            cache.to_str().context("path")?,
        ];
        args.extend_from_slice(extra);
        NodeProc::spawn_under(wrapper, name, &args, &config, env).await
    }
}

// ---------------------------------------------------------------- node process

/// A `jamz node --json` child: commands to its stdin, its events in a queue.
pub struct NodeProc {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    rx: mpsc::UnboundedReceiver<Value>,
    /// Events received and not consumed by a wait.
    queue: VecDeque<Value>,
    /// Every event, in order (for the failure report).
    history: Vec<Value>,
}

impl NodeProc {
    pub async fn spawn(
        name: &str,
        args: &[&str],
        config_dir: &Path,
        env: &[(&str, &str)],
    ) -> Result<Self> {
        Self::spawn_under(&[], name, args, config_dir, env).await
    }

    /// [`NodeProc::spawn`] with `jamz` run by `wrapper` (`ip netns exec NS`; none: directly).
    pub async fn spawn_under(
        wrapper: &[&str],
        name: &str,
        args: &[&str],
        config_dir: &Path,
        env: &[(&str, &str)],
    ) -> Result<Self> {
        let jamz = workspace_bin("jamz");
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(&jamz);
                c
            }
            None => Command::new(&jamz),
        };
        cmd.args(args)
            .env("JAMZ_CONFIG_DIR", config_dir)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env_remove("JAMZ_DISCOVER")
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self::spawn_command(name, cmd)
    }

    /// Runs `cmd` (stdin and stdout piped) as a process speaking JSON lines: lines to its
    /// stdin, every stdout line a JSON value (anything else ends the reading, loudly).
    pub fn spawn_command(name: &str, mut cmd: Command) -> Result<Self> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("spawn {name}"))?;
        let stdout = child.stdout.take().context("stdout")?;
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::unbounded_channel();
        let who = name.to_owned();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => {
                        if tx.send(v).is_err() {
                            return;
                        }
                    }
                    // stdout is for events only: anything else is a bug.
                    Err(e) => panic!("{who}: stdout line is not JSON ({e}): {line}"),
                }
            }
        });
        Ok(NodeProc {
            name: name.to_owned(),
            child,
            stdin,
            rx,
            queue: VecDeque::new(),
            history: Vec::new(),
        })
    }

    /// Writes one command line.
    pub async fn send(&mut self, cmd: Value) -> Result<()> {
        self.send_raw(&cmd.to_string()).await
    }

    /// Writes one raw line (for invalid input).
    pub async fn send_raw(&mut self, line: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().context("stdin closed")?;
        stdin.write_all(line.as_bytes()).await?;
        stdin.write_all(b"\n").await?;
        stdin.flush().await?;
        Ok(())
    }

    fn pull(&mut self) {
        while let Ok(v) = self.rx.try_recv() {
            self.history.push(v.clone());
            self.queue.push_back(v);
        }
    }

    /// Forgets the events received so far (so a wait only sees newer ones).
    /// Every event so far, in order (those consumed by waits too).
    pub fn history(&mut self) -> &[Value] {
        self.pull();
        &self.history
    }

    pub fn clear(&mut self) {
        self.pull();
        self.queue.clear();
    }

    /// Waits for an event matching `pred` and takes it out of the queue (other
    /// events stay).
    pub async fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Result<Value> {
        self.wait_for_within(what, WAIT, pred).await
    }

    /// [`NodeProc::wait_for`] with its own bound.
    pub async fn wait_for_within(
        &mut self,
        what: &str,
        wait: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            self.pull();
            if let Some(i) = self.queue.iter().position(&pred) {
                return Ok(self.queue.remove(i).unwrap_or(Value::Null));
            }
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(v)) => {
                    self.history.push(v.clone());
                    self.queue.push_back(v);
                }
                Ok(None) => bail!(
                    "{}: stdout closed while waiting for {what}; events: {}",
                    self.name,
                    self.tail()
                ),
                Err(_) => bail!(
                    "{}: no {what} within {wait:?}; last events: {}",
                    self.name,
                    self.tail()
                ),
            }
        }
    }

    /// Waits for an event named `event` matching `pred`.
    pub async fn wait_event(
        &mut self,
        event: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        self.wait_for(event, |v| v["event"] == event && pred(v))
            .await
    }

    /// Waits for a `playlist` event listing `len` tracks; returns it.
    pub async fn wait_playlist(&mut self, len: usize) -> Result<Value> {
        self.wait_event("playlist", |v| {
            v["playlist"].as_array().is_some_and(|p| p.len() == len)
        })
        .await
    }

    /// Adds the file at `path` to the group's playlist and waits for the playlist of `len`
    /// tracks; returns that event.
    pub async fn add(&mut self, path: &Path, len: usize) -> Result<Value> {
        self.send(json!({"cmd":"add","path":path})).await?;
        self.wait_playlist(len).await
    }

    /// Takes the DJ role and waits until this node hears that `user_id` (its own member)
    /// has it.
    pub async fn take_control(&mut self, user_id: i64) -> Result<()> {
        self.send(json!({"cmd":"take-control"})).await?;
        self.wait_event("controller", |v| v["userId"] == user_id)
            .await?;
        Ok(())
    }

    /// The last events, each cut to 300 characters, for a failure message.
    pub fn tail(&self) -> String {
        let n = self.history.len().saturating_sub(12);
        self.history[n..]
            .iter()
            .map(|v| {
                let s = v.to_string();
                match s.char_indices().nth(300) {
                    Some((cut, _)) => format!("{}...", &s[..cut]),
                    None => s,
                }
            })
            .collect::<Vec<_>>()
            .join("\n  ")
    }

    /// Asks for `status` and returns it.
    pub async fn status(&mut self) -> Result<Value> {
        self.send(json!({"cmd":"status"})).await?;
        self.wait_event("status", |_| true).await
    }

    /// Polls `status` (every 50 ms) until the audible position of `track` is at
    /// least `position`.
    pub async fn wait_position(&mut self, track: &str, position: f64) -> Result<f64> {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.status().await?;
            if s["track"] == track
                && let Some(p) = s["position"].as_f64()
                && p >= position
            {
                return Ok(p);
            }
            if Instant::now() > deadline {
                bail!(
                    "{}: track {track} never reached {position} s; last status {s}",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends `quit` and waits for exit status 0.
    /// SIGKILL: the node dies as a crashed device would, saying nothing to anyone.
    pub async fn kill9(mut self) -> Result<()> {
        self.child.start_kill()?;
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .context("node did not die")??;
        Ok(())
    }

    pub async fn quit(self) -> Result<Vec<Value>> {
        self.quit_with(json!({"cmd":"quit"})).await
    }

    /// Sends `line` (the process's own quit command) and waits for a clean exit; every
    /// event it printed.
    pub async fn quit_with(mut self, line: Value) -> Result<Vec<Value>> {
        self.send(line).await?;
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .with_context(|| format!("{} did not exit after quit", self.name))??;
        if !status.success() {
            bail!("{}: exit {status}", self.name);
        }
        self.pull();
        Ok(self.history)
    }
}

// ---------------------------------------------------------------- tracks

/// A 16-bit stereo WAV of `seconds` with clicks every [`CLICK_EVERY_S`]:
/// click `k` at level `LEVELS[k % 3]`, times `polarity` (+1 or -1).
pub fn click_track(path: &Path, seconds: f64, polarity: f32) -> Result<()> {
    let frames = (seconds * f64::from(RATE)) as usize;
    let mut samples = vec![0i16; frames * 2];
    let mut k = 0usize;
    loop {
        let start = (k as f64 * CLICK_EVERY_S * f64::from(RATE)).round() as usize;
        if start + CLICK_FRAMES >= frames {
            break;
        }
        let level = LEVELS[k % LEVELS.len()] * polarity;
        let v = (level * f32::from(i16::MAX)) as i16;
        for f in start..start + CLICK_FRAMES {
            samples[2 * f] = v;
            samples[2 * f + 1] = v;
        }
        k += 1;
    }
    write_stereo_wav(path, &samples)
}

/// Writes interleaved stereo 16-bit samples at the tracks' rate as a WAV file.
pub fn write_stereo_wav(path: &Path, samples: &[i16]) -> Result<()> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec)?;
    for &s in samples {
        w.write_sample(s)?;
    }
    w.finalize()?;
    Ok(())
}

// ---------------------------------------------------------------- analysis

/// Whether an event's `position` (seconds) lies in `range`.
pub fn position_in(v: &Value, range: Range<f64>) -> bool {
    v["position"].as_f64().is_some_and(|p| range.contains(&p))
}

/// One click found in a recording.
#[derive(Debug, Clone, Copy)]
pub struct Click {
    /// Absolute time of its onset, seconds on a common timeline.
    pub t: f64,
    /// Sign of the click (+1 track A, -1 track B).
    pub polarity: i8,
    /// Index into [`LEVELS`].
    pub level: usize,
}

/// Finds clicks in mono `samples` at `rate`, frame 0 at time `t0` (s).
pub fn find_clicks(samples: &[f32], rate: u32, t0: f64) -> Vec<Click> {
    let threshold = 0.1f32;
    let refractory = (0.1 * f64::from(rate)) as usize;
    // Level measured over the middle of the click (its edges ring after resampling).
    let scale = f64::from(rate) / f64::from(RATE);
    let (m0, m1) = (
        (24.0 * scale) as usize,
        ((CLICK_FRAMES - 24) as f64 * scale) as usize,
    );
    let mut out = Vec::new();
    let mut i = 0;
    while i < samples.len() {
        if samples[i].abs() > threshold {
            if i + m1 <= samples.len() {
                let mid = &samples[i + m0..i + m1];
                let mean = mid.iter().sum::<f32>() / mid.len() as f32;
                let level = LEVELS
                    .iter()
                    .enumerate()
                    .min_by(|a, b| {
                        (a.1 - mean.abs())
                            .abs()
                            .total_cmp(&(b.1 - mean.abs()).abs())
                    })
                    .map(|(k, _)| k)
                    .unwrap_or(0);
                // A click cut by a fade (pause, start) is not a clean level: skip it.
                if (LEVELS[level] - mean.abs()).abs() < 0.08 {
                    out.push(Click {
                        t: t0 + i as f64 / f64::from(rate),
                        polarity: if mean > 0.0 { 1 } else { -1 },
                        level,
                    });
                }
            }
            i += refractory;
        } else {
            i += 1;
        }
    }
    out
}

/// The clicks of a `wav:` output, on the Unix timeline (its sidecar's
/// `frame0_unix_ns`).
pub fn wav_clicks(path: &Path) -> Result<Vec<Click>> {
    let sidecar: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}.json", path.display())).context("sidecar")?,
    )?;
    let frame0_ns = sidecar["frame0_unix_ns"]
        .as_u64()
        .or_else(|| sidecar["frame0_unix_ns"].as_f64().map(|f| f as u64))
        .context("frame0_unix_ns")?;
    let mut r = hound::WavReader::open(path).with_context(|| format!("{}", path.display()))?;
    let spec = r.spec();
    let ch = usize::from(spec.channels);
    let all: Vec<f32> = r.samples::<f32>().collect::<std::result::Result<_, _>>()?;
    let left: Vec<f32> = all.iter().step_by(ch).copied().collect();
    Ok(find_clicks(&left, spec.sample_rate, frame0_ns as f64 / 1e9))
}

/// Offsets of `other` against `reference`: each click of `other` paired with the
/// same click (polarity, level) of `reference` within +-`window` s.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub name: String,
    pub clicks: usize,
    pub matched: usize,
    /// other - reference, ms, one per matched click.
    pub offsets_ms: Vec<f64>,
}

impl Comparison {
    pub fn new(name: &str, reference: &[Click], other: &[Click], window: f64) -> Self {
        let mut offsets = Vec::new();
        for c in other {
            let best = reference
                .iter()
                .filter(|r| r.polarity == c.polarity && r.level == c.level)
                .map(|r| c.t - r.t)
                .filter(|d| d.abs() <= window)
                .min_by(|a, b| a.abs().total_cmp(&b.abs()));
            if let Some(d) = best {
                offsets.push(d * 1000.0);
            }
        }
        Comparison {
            name: name.to_owned(),
            clicks: other.len(),
            matched: offsets.len(),
            offsets_ms: offsets,
        }
    }

    pub fn median_ms(&self) -> f64 {
        let mut v = self.offsets_ms.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    }

    pub fn max_abs_ms(&self) -> f64 {
        self.offsets_ms.iter().fold(0.0, |m, d| m.max(d.abs()))
    }

    pub fn print(&self) {
        eprintln!(
            "  {:<28} clicks {:>4}  matched {:>4}  offset median {:>7.2} ms  max |offset| {:>7.2} ms",
            self.name,
            self.clicks,
            self.matched,
            self.median_ms(),
            self.max_abs_ms()
        );
    }
}

/// The id of track `i` of a `playlist` event.
pub fn track_id(event: &Value, i: usize) -> Result<String> {
    event["playlist"][i]["id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no track {i} in {event}"))
}

/// The track ids of a `playlist` event, in order (empty when it has none).
pub fn playlist_ids(event: &Value) -> Vec<String> {
    event["playlist"]
        .as_array()
        .map(|p| {
            p.iter()
                .filter_map(|t| t["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
