//! Shared helpers of the `link_*` tests: a member with a REST client and a
//! Socket.IO link, and bounded waits for what the link reports.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use jamz_link::{
    LinkEvent, LinkEvents, LinkState, RestClient, ServerMessage, SocketClient, SocketConfig,
};
use jamz_proto::User;
use jamz_proto::events::{JoinAudioSession, MusicTakeControl};
use tokio::time::Instant;

/// Upper bound of any single wait in these tests (generous: a slow CI box).
pub const WAIT: Duration = Duration::from_secs(15);

/// A seed for a test's RNGs (`JAMZ_TEST_SEED` or fresh; printed to replay).
pub fn seed() -> u64 {
    jamz_proto::test_support::test_seed("seed")
}

/// One group member: REST client, user, and (once connected) a link.
pub struct Member {
    pub name: String,
    pub rest: RestClient,
    pub user: User,
    pub link: Option<SocketClient>,
    pub events: Option<LinkEvents>,
    /// The Socket.IO id of the current connection.
    pub sid: Option<String>,
    /// Names of events skipped by the waits, in order (to assert absences).
    pub skipped: Vec<String>,
    /// The session joined: joined again first on every connection (as the node's
    /// engine does), before the link releases what it queued meanwhile.
    pub room: Option<JoinAudioSession>,
}

impl Member {
    pub async fn register(base: &str, name: &str) -> Result<Self> {
        let rest = RestClient::new(base)?;
        let auth = rest
            .register(
                name,
                &format!("{name}@example.test"),
                "correct horse battery",
            )
            .await
            .with_context(|| format!("register {name}"))?;
        assert!(!auth.token.is_empty());
        assert_eq!(auth.user.username, name);
        Ok(Self {
            name: name.into(),
            rest,
            user: auth.user,
            link: None,
            events: None,
            sid: None,
            skipped: Vec::new(),
            room: None,
        })
    }

    /// A link config with this member's token and `seed`.
    pub fn config(&self, base: &str, seed: u64) -> Result<SocketConfig> {
        Ok(SocketConfig::new(base)
            .token(self.rest.token().context("no token")?)
            .seed(seed)
            .hold_queue(true))
    }

    /// Opens the link with this member's token and waits for `Connected`.
    pub async fn connect(&mut self, base: &str, seed: u64) -> Result<()> {
        self.connect_with(self.config(base, seed)?).await
    }

    /// Opens the link and waits for `Connected`.
    pub async fn connect_with(&mut self, cfg: SocketConfig) -> Result<()> {
        self.open(cfg)?;
        let sid = self.wait_connected().await?;
        self.sid = Some(sid);
        Ok(())
    }

    /// Opens the link without waiting for anything.
    pub fn open(&mut self, cfg: SocketConfig) -> Result<()> {
        let (link, events) = SocketClient::connect(cfg)?;
        self.link = Some(link);
        self.events = Some(events);
        Ok(())
    }

    /// [`connect_with`](Self::connect_with), joins the session and waits for its
    /// `music-session-state`, which it returns.
    pub async fn enter(&mut self, cfg: SocketConfig, session_id: &str) -> Result<ServerMessage> {
        self.connect_with(cfg).await?;
        self.join(session_id)?;
        self.wait_for("music-session-state").await
    }

    pub fn link(&self) -> &SocketClient {
        self.link.as_ref().expect("not connected")
    }

    /// Joins the session now (if connected) and after every reconnection.
    pub fn join(&mut self, session_id: &str) -> Result<()> {
        let join = JoinAudioSession {
            session_id: session_id.into(),
            user_id: Some(self.user.id),
            display_name: Some(self.name.clone()),
        };
        self.link().send_first(&join)?;
        self.room = Some(join);
        Ok(())
    }

    /// No more joining after reconnections (leaving is the caller's business).
    pub fn forget_room(&mut self) {
        self.room = None;
    }

    /// A new connection: join first, then release what the link held.
    fn on_connected(&self) -> Result<()> {
        let link = self.link();
        if let Some(join) = &self.room {
            link.send_first(join)?;
        }
        link.release_queue()?;
        Ok(())
    }

    /// Becomes the session's DJ.
    pub fn take_control(&self, session_id: &str) -> Result<()> {
        self.link().send(&MusicTakeControl {
            session_id: session_id.into(),
            user_id: Some(self.user.id),
        })?;
        Ok(())
    }

    /// The next link event before `deadline`; `what` names the awaited thing in
    /// the timeout error.
    async fn next_before(&mut self, deadline: Instant, what: &str) -> Result<LinkEvent> {
        let ev = self.events.as_mut().context("no link")?;
        let ev = tokio::time::timeout_at(deadline, ev.recv())
            .await
            .map_err(|_| {
                anyhow!(
                    "{}: no {what} in time; skipped so far: {:?}",
                    self.name,
                    self.skipped
                )
            })?
            .ok_or_else(|| anyhow!("{}: link task ended", self.name))?;
        if matches!(ev, LinkEvent::State(LinkState::Connected { .. })) {
            self.on_connected()?;
        }
        Ok(ev)
    }

    /// Remembers an event a wait was not looking for (and logs it, unless it is
    /// a server message).
    fn skip(&mut self, ev: LinkEvent) {
        let what = match ev {
            LinkEvent::Event { raw: m, .. } | LinkEvent::BadEvent { raw: m, .. } => m.name,
            LinkEvent::State(s) => {
                eprintln!("{}: {s:?}", self.name);
                format!("state {s:?}")
            }
            other => {
                eprintln!("{}: {other:?}", self.name);
                format!("{other:?}")
            }
        };
        self.skipped.push(what);
    }

    /// Waits (within [`WAIT`]) for a server event named `name`; other events are
    /// skipped and remembered in `skipped`.
    pub async fn wait_for(&mut self, name: &str) -> Result<ServerMessage> {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.next_before(deadline, &format!("{name:?}")).await? {
                LinkEvent::Event { raw: m, .. } | LinkEvent::BadEvent { raw: m, .. }
                    if m.name == name =>
                {
                    return Ok(m);
                }
                other => self.skip(other),
            }
        }
    }

    /// Waits for a link state matching `pred`.
    pub async fn wait_state(
        &mut self,
        what: &str,
        pred: impl Fn(&LinkState) -> bool,
    ) -> Result<LinkState> {
        self.wait_state_within(what, WAIT, pred).await
    }

    pub async fn wait_state_within(
        &mut self,
        what: &str,
        within: Duration,
        pred: impl Fn(&LinkState) -> bool,
    ) -> Result<LinkState> {
        let deadline = Instant::now() + within;
        loop {
            match self.next_before(deadline, what).await? {
                LinkEvent::State(s) if pred(&s) => return Ok(s),
                other => self.skip(other),
            }
        }
    }

    pub async fn wait_connected(&mut self) -> Result<String> {
        match self
            .wait_state("Connected", |s| {
                matches!(s, LinkState::Connected { .. } | LinkState::Refused { .. })
            })
            .await?
        {
            LinkState::Connected { sid, .. } => Ok(sid),
            other => bail!("{}: not connected: {other:?}", self.name),
        }
    }
}
