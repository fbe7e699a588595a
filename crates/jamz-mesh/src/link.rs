//! One peer connection to one member: an `rtc` peer connection, its `music-control`
//! channel, the remote candidates that came before their description, and what the
//! [`crate::Mesh`] needs to route datagrams to it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use jamz_proto::events::{IceCandidateInit, SignalData, SignalType};
use jamz_proto::mesh::{CHANNEL_LABEL, CHANNEL_MAX_RETRANSMITS};
use rtc::data_channel::{RTCDataChannelId, RTCDataChannelInit};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::setting_engine::SettingEngine;
use rtc::peer_connection::event::{RTCDataChannelEvent, RTCPeerConnectionEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, CandidateRelayConfig, CandidateServerReflexiveConfig,
    RTCIceCandidate, RTCIceCandidateInit, RTCIceCandidateType,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use crate::{MAX_MESSAGE_BYTES, MeshError, Transmit};

/// Where a link stands, as the mesh reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Signaling or ICE/DTLS/SCTP in progress; the channel is not open yet.
    Connecting,
    /// The `music-control` channel is open both ways.
    Connected,
    /// Failed or closed; a new link needs new signaling.
    Closed,
}

/// A candidate learned from a server for one of our sockets (`base`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gathered {
    /// A STUN server sees `base` at `address`.
    Reflexive {
        base: SocketAddr,
        address: SocketAddr,
    },
    /// A TURN server relays for `base` at `address`.
    Relayed {
        base: SocketAddr,
        address: SocketAddr,
    },
}

/// How a link's datagrams go, once its pair is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPath {
    /// Straight between the two devices (host or reflexive addresses, holes punched).
    Direct,
    /// Through a TURN server (our relayed address, or the peer's).
    Relay,
}

/// What one link produced for the mesh to hand out.
pub(crate) enum LinkOutput {
    Signal(SignalType, SignalData),
    Opened,
    Closed,
    Text(String),
    /// A message the mesh refuses (binary, not UTF-8, over the size limit).
    Dropped(&'static str),
}

pub(crate) struct Link {
    pc: RTCPeerConnection,
    pub(crate) state: LinkState,
    offerer: bool,
    channel: Option<RTCDataChannelId>,
    /// Remote candidates that came before the remote description.
    early_candidates: Vec<RTCIceCandidateInit>,
    local_candidates: Vec<SocketAddr>,
    /// Our sockets' server-reflexive and relayed addresses.
    gathered: Vec<Gathered>,
    local_candidates_added: bool,
    /// `a=mid` of the data section, for our candidates' `sdpMid` (browsers match on it).
    mid: String,
    pub(crate) local_ufrag: Option<String>,
    pub(crate) outputs: VecDeque<LinkOutput>,
    pub(crate) transmits: VecDeque<Transmit>,
    /// When the link was made (an offer older than a few seconds with no answer is stale).
    pub(crate) created: Instant,
    /// The latest time the link was given: what it sends is stamped with it (a TURN
    /// relay's timers start then).
    last_now: Instant,
}

fn rtc_err(what: &'static str) -> impl Fn(rtc::shared::error::Error) -> MeshError {
    move |e| MeshError::Rtc(format!("{what}: {e}"))
}

/// The first `a=<attr>:` value in an SDP.
fn sdp_attr(sdp: &str, attr: &str) -> Option<String> {
    let prefix = format!("a={attr}:");
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix(&prefix).map(|v| v.trim().to_owned()))
}

impl Link {
    pub(crate) fn now(&self) -> Instant {
        self.last_now
    }

    fn at(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
    }

    /// The current round trip of the nominated candidate pair (ms), from ICE's STUN checks.
    pub(crate) fn rtt_ms(&mut self, now: Instant) -> Option<f64> {
        let report = self.pc.get_stats(now, rtc::statistics::StatsSelector::None);
        report
            .candidate_pairs()
            .filter(|p| p.nominated && p.current_round_trip_time > 0.0)
            .map(|p| p.current_round_trip_time * 1000.0)
            .find(|ms| ms.is_finite())
    }

    /// Whether the nominated pair goes through a relay, at either end.
    pub(crate) fn path(&mut self, now: Instant) -> Option<LinkPath> {
        use rtc::statistics::report::RTCStatsReportEntry as Entry;
        let report = self.pc.get_stats(now, rtc::statistics::StatsSelector::None);
        let pair = report.candidate_pairs().find(|p| p.nominated)?;
        // A pair names its candidates by their own id; the report's entries prefix it
        // with their kind ("RTCLocalIceCandidate_<id>").
        let named = |entry: &str, candidate: &str| {
            entry == candidate
                || entry
                    .strip_suffix(candidate)
                    .is_some_and(|kind| kind.ends_with('_'))
        };
        let relayed = report.iter().any(|e| match e {
            Entry::LocalCandidate(c) => {
                named(e.id(), &pair.local_candidate_id)
                    && c.candidate_type == RTCIceCandidateType::Relay
            }
            Entry::RemoteCandidate(c) => {
                named(e.id(), &pair.remote_candidate_id)
                    && c.candidate_type == RTCIceCandidateType::Relay
            }
            _ => false,
        });
        Some(if relayed {
            LinkPath::Relay
        } else {
            LinkPath::Direct
        })
    }

    pub(crate) fn new(
        now: Instant,
        offerer: bool,
        local_candidates: &[SocketAddr],
        gathered: &[Gathered],
    ) -> Result<Self, MeshError> {
        // No ICE servers in the configuration: the sans-IO core gathers nothing itself.
        // The mesh asks the STUN servers (crate::reflexive) and hands the answers in.
        let config = RTCConfigurationBuilder::new().build();
        let pc = RTCPeerConnectionBuilder::new()
            .with_configuration(config)
            .with_setting_engine(SettingEngine::default())
            .build(now)
            .map_err(rtc_err("new peer connection"))?;
        let mut link = Self {
            pc,
            state: LinkState::Connecting,
            offerer,
            channel: None,
            early_candidates: Vec::new(),
            local_candidates: local_candidates.to_vec(),
            gathered: gathered.to_vec(),
            local_candidates_added: false,
            mid: "0".to_owned(),
            local_ufrag: None,
            outputs: VecDeque::new(),
            transmits: VecDeque::new(),
            created: now,
            last_now: now,
        };
        if offerer {
            let init = RTCDataChannelInit {
                ordered: true,
                max_retransmits: Some(CHANNEL_MAX_RETRANSMITS),
                ..Default::default()
            };
            let channel = link
                .pc
                .create_data_channel(CHANNEL_LABEL, Some(init))
                .map_err(rtc_err("create data channel"))?;
            link.channel = Some(channel.id());
            let offer = link
                .pc
                .create_offer(None)
                .map_err(rtc_err("create offer"))?;
            link.pc
                .set_local_description(now, offer.clone())
                .map_err(rtc_err("set local offer"))?;
            link.after_local_description(&offer.sdp);
            link.outputs.push_back(LinkOutput::Signal(
                SignalType::Offer,
                SignalData {
                    sdp: Some(offer.sdp),
                    candidate: None,
                },
            ));
            link.add_local_candidates()?;
        }
        link.drain();
        Ok(link)
    }

    pub(crate) fn take_early_candidates(&mut self) -> Vec<RTCIceCandidateInit> {
        std::mem::take(&mut self.early_candidates)
    }

    pub(crate) fn restore_early_candidates(&mut self, early: Vec<RTCIceCandidateInit>) {
        self.early_candidates.extend(early);
    }

    pub(crate) fn is_offerer(&self) -> bool {
        self.offerer
    }

    pub(crate) fn has_remote_description(&self) -> bool {
        self.pc.remote_description().is_some()
    }

    fn after_local_description(&mut self, sdp: &str) {
        if let Some(mid) = sdp_attr(sdp, "mid") {
            self.mid = mid;
        }
        self.local_ufrag = sdp_attr(sdp, "ice-ufrag");
    }

    fn add_local_candidates(&mut self) -> Result<(), MeshError> {
        if self.local_candidates_added {
            return Ok(());
        }
        self.local_candidates_added = true;
        for addr in self.local_candidates.clone() {
            let candidate = CandidateHostConfig {
                base_config: CandidateConfig {
                    network: "udp".to_owned(),
                    address: addr.ip().to_string(),
                    port: addr.port(),
                    component: 1,
                    ..Default::default()
                },
                ..Default::default()
            }
            .new_candidate_host()
            .map_err(|e| MeshError::Rtc(format!("host candidate {addr}: {e}")))?;
            let init = RTCIceCandidate::from(&candidate)
                .to_json()
                .map_err(rtc_err("host candidate"))?;
            self.pc
                .add_local_candidate(init)
                .map_err(rtc_err("add local candidate"))?;
        }
        for gathered in self.gathered.clone() {
            self.add_gathered_candidate(gathered)?;
        }
        // The end-of-gathering sentinel: an address a STUN or TURN server tells later still
        // trickles (add_gathered); peers that stop listening at the sentinel keep the host
        // and earlier reflexive candidates.
        self.pc
            .add_local_candidate(RTCIceCandidateInit::default())
            .map_err(rtc_err("end of candidates"))
    }

    /// A reflexive or relayed address of one of our sockets: advertised now if the local
    /// candidates went out already, else with them.
    pub(crate) fn add_gathered(&mut self, gathered: Gathered) -> Result<(), MeshError> {
        if self.gathered.contains(&gathered) {
            return Ok(());
        }
        self.gathered.push(gathered);
        if self.local_candidates_added {
            self.add_gathered_candidate(gathered)?;
            self.drain();
        }
        Ok(())
    }

    fn add_gathered_candidate(&mut self, gathered: Gathered) -> Result<(), MeshError> {
        let config = |address: SocketAddr| CandidateConfig {
            network: "udp".to_owned(),
            address: address.ip().to_string(),
            port: address.port(),
            component: 1,
            ..Default::default()
        };
        let candidate = match gathered {
            // No NAT between us and the server: the host candidate says it all (RFC 8445
            // §5.1.3: a candidate equal to its base is redundant).
            Gathered::Reflexive { base, address } if address == base => return Ok(()),
            Gathered::Reflexive { base, address } => CandidateServerReflexiveConfig {
                base_config: config(address),
                rel_addr: base.ip().to_string(),
                rel_port: base.port(),
                url: None,
            }
            .new_candidate_server_reflexive(),
            Gathered::Relayed { base, address } => CandidateRelayConfig {
                base_config: config(address),
                rel_addr: base.ip().to_string(),
                rel_port: base.port(),
                ..Default::default()
            }
            .new_candidate_relay(),
        }
        .map_err(|e| MeshError::Rtc(format!("candidate {gathered:?}: {e}")))?;
        let init = RTCIceCandidate::from(&candidate)
            .to_json()
            .map_err(rtc_err("gathered candidate"))?;
        self.pc
            .add_local_candidate(init)
            .map_err(rtc_err("add gathered candidate"))
    }

    /// An offer or answer from the remote.
    pub(crate) fn handle_description(
        &mut self,
        now: Instant,
        kind: SignalType,
        sdp: String,
    ) -> Result<(), MeshError> {
        self.at(now);
        match kind {
            SignalType::Offer => {
                let offer = RTCSessionDescription::offer(sdp).map_err(rtc_err("offer"))?;
                self.pc
                    .set_remote_description(now, offer)
                    .map_err(rtc_err("set remote offer"))?;
                let answer = self
                    .pc
                    .create_answer(None)
                    .map_err(rtc_err("create answer"))?;
                self.pc
                    .set_local_description(now, answer.clone())
                    .map_err(rtc_err("set local answer"))?;
                self.after_local_description(&answer.sdp);
                self.outputs.push_back(LinkOutput::Signal(
                    SignalType::Answer,
                    SignalData {
                        sdp: Some(answer.sdp),
                        candidate: None,
                    },
                ));
                self.add_local_candidates()?;
            }
            SignalType::Answer => {
                let answer = RTCSessionDescription::answer(sdp).map_err(rtc_err("answer"))?;
                self.pc
                    .set_remote_description(now, answer)
                    .map_err(rtc_err("set remote answer"))?;
            }
            SignalType::IceCandidate => {}
        }
        for candidate in std::mem::take(&mut self.early_candidates) {
            self.add_remote_candidate(candidate);
        }
        self.drain();
        Ok(())
    }

    /// A trickled remote candidate; kept until its description is there.
    pub(crate) fn handle_candidate(&mut self, candidate: IceCandidateInit) {
        let init = RTCIceCandidateInit {
            candidate: candidate.candidate,
            sdp_mid: candidate.sdp_mid,
            sdp_mline_index: candidate.sdp_m_line_index,
            username_fragment: candidate.username_fragment,
            url: None,
        };
        if self.has_remote_description() {
            self.add_remote_candidate(init);
            self.drain();
        } else {
            self.early_candidates.push(init);
        }
    }

    fn add_remote_candidate(&mut self, init: RTCIceCandidateInit) {
        // One bad candidate (a name we cannot resolve, a transport we do not speak) must not
        // take the link down: the others, or the peer's own checks, may still connect it.
        if let Err(e) = self.pc.add_remote_candidate(init.clone()) {
            tracing::debug!(candidate = %init.candidate, "remote candidate ignored: {e}");
        }
    }

    pub(crate) fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        self.at(now);
        let msg = TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: destination,
                peer_addr: source,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: BytesMut::from(contents),
        };
        if let Err(e) = self.pc.handle_read(msg) {
            tracing::debug!(%source, "datagram refused: {e}");
        }
        self.drain();
    }

    pub(crate) fn poll_timeout(&mut self) -> Option<Instant> {
        if self.state == LinkState::Closed {
            return None;
        }
        self.pc.poll_timeout()
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.state == LinkState::Closed {
            return;
        }
        self.at(now);
        if let Err(e) = self.pc.handle_timeout(now) {
            tracing::debug!("timeout: {e}");
        }
        self.drain();
    }

    pub(crate) fn send_text(&mut self, now: Instant, text: &str) -> Result<(), MeshError> {
        self.at(now);
        if self.state != LinkState::Connected {
            return Err(MeshError::NotConnected);
        }
        let id = self.channel.ok_or(MeshError::NotConnected)?;
        let mut channel = self.pc.data_channel(id).ok_or(MeshError::NotConnected)?;
        channel
            .send_text(now, text)
            .map_err(rtc_err("send on music-control"))?;
        self.drain();
        Ok(())
    }

    pub(crate) fn close(&mut self) {
        if self.state == LinkState::Closed {
            return;
        }
        if let Err(e) = self.pc.close() {
            tracing::debug!("close: {e}");
        }
        self.drain();
        self.set_closed();
    }

    fn set_closed(&mut self) {
        if self.state != LinkState::Closed {
            self.state = LinkState::Closed;
            self.outputs.push_back(LinkOutput::Closed);
        }
    }

    /// Moves everything the peer connection has produced into this link's queues.
    fn drain(&mut self) {
        // events first: opening a channel or a new candidate can queue writes
        loop {
            let mut progressed = false;
            while let Some(event) = self.pc.poll_event() {
                progressed = true;
                self.on_event(event);
            }
            while let Some(msg) = self.pc.poll_read() {
                progressed = true;
                if let RTCMessage::DataChannelMessage(id, msg) = msg.message {
                    if Some(id) != self.channel {
                        self.outputs.push_back(LinkOutput::Dropped("other channel"));
                    } else if !msg.is_string {
                        self.outputs
                            .push_back(LinkOutput::Dropped("binary message"));
                    } else if msg.data.len() > MAX_MESSAGE_BYTES {
                        self.outputs
                            .push_back(LinkOutput::Dropped("message over 64 KiB"));
                    } else {
                        match String::from_utf8(msg.data.to_vec()) {
                            Ok(text) => self.outputs.push_back(LinkOutput::Text(text)),
                            Err(_) => self.outputs.push_back(LinkOutput::Dropped("not UTF-8")),
                        }
                    }
                }
            }
            while let Some(out) = self.pc.poll_write() {
                progressed = true;
                self.transmits.push_back(Transmit {
                    source: out.transport.local_addr,
                    destination: out.transport.peer_addr,
                    contents: out.message.to_vec(),
                });
            }
            if !progressed {
                break;
            }
        }
    }

    fn on_event(&mut self, event: RTCPeerConnectionEvent) {
        match event {
            RTCPeerConnectionEvent::OnIceCandidateEvent(e) => match e.candidate.to_json() {
                Ok(init) => self.outputs.push_back(LinkOutput::Signal(
                    SignalType::IceCandidate,
                    SignalData {
                        sdp: None,
                        candidate: Some(IceCandidateInit {
                            candidate: init.candidate,
                            sdp_mid: Some(self.mid.clone()),
                            sdp_m_line_index: Some(0),
                            username_fragment: self.local_ufrag.clone(),
                        }),
                    },
                )),
                Err(e) => tracing::debug!("local candidate not signalled: {e}"),
            },
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                tracing::debug!(%state, "peer connection state");
                if matches!(
                    state,
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
                ) {
                    self.set_closed();
                }
            }
            RTCPeerConnectionEvent::OnDataChannel(RTCDataChannelEvent::OnOpen(id)) => {
                let ours = match self.pc.data_channel(id) {
                    Some(dc) => dc.label() == CHANNEL_LABEL,
                    None => false,
                };
                // the answerer learns the channel from the offerer's open message
                if ours && (self.channel.is_none() || self.channel == Some(id)) {
                    self.channel = Some(id);
                    if self.state == LinkState::Connecting {
                        self.state = LinkState::Connected;
                        self.outputs.push_back(LinkOutput::Opened);
                    }
                }
            }
            RTCPeerConnectionEvent::OnDataChannel(RTCDataChannelEvent::OnClose(id))
                if Some(id) == self.channel =>
            {
                self.set_closed();
            }
            _ => {}
        }
    }
}
