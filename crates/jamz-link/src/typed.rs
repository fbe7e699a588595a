//! The typed layer over the raw event API: jamz-proto's payloads in, its
//! [`ServerEvent`] out.

use std::time::Duration;

use jamz_proto::events::{TimeSync, TimeSyncReply};
use jamz_proto::{Event, ProtoError, ServerEvent};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::LinkError;
use crate::socket::{LinkEvent, ServerMessage, SocketClient};

fn to_value<E: Event>(event: &E) -> Result<Value, LinkError> {
    serde_json::to_value(event).map_err(|source| LinkError::Encode {
        what: E::NAME.to_owned(),
        source,
    })
}

impl SocketClient {
    /// Emits a typed client event under its protocol name.
    pub fn send<E: Event>(&self, event: &E) -> Result<(), LinkError> {
        self.emit(E::NAME, to_value(event)?)
    }

    /// Emits a typed event asking for an ack, and decodes the ack's first argument.
    pub async fn request<E: Event, R: DeserializeOwned>(
        &self,
        event: &E,
        timeout: Duration,
    ) -> Result<R, LinkError> {
        let args = self
            .emit_with_ack(E::NAME, to_value(event)?, timeout)
            .await?;
        let first = args.into_iter().next().unwrap_or(Value::Null);
        jamz_proto::decode(first).map_err(|e| LinkError::Proto(e.in_event(E::NAME)))
    }

    /// Emits a typed event ahead of the held queue (see
    /// [`SocketClient::emit_first`]).
    pub fn send_first<E: Event>(&self, event: &E) -> Result<(), LinkError> {
        self.emit_first(E::NAME, to_value(event)?)
    }

    /// (ext) One `time-sync` exchange: sends `t0` (ms, the caller's clock) and
    /// returns the server's `{t0, t1, t2}`. A server without the extension never
    /// acks: that is an [`LinkError::AckTimeout`].
    pub async fn time_sync(&self, t0: f64, timeout: Duration) -> Result<TimeSyncReply, LinkError> {
        self.request(&TimeSync { t0 }, timeout).await
    }
}

impl From<ServerMessage> for LinkEvent {
    /// Decodes a server event: the typed event, or the reason it is not one.
    fn from(raw: ServerMessage) -> Self {
        match raw.decode() {
            Ok(event) => LinkEvent::Event {
                event: Box::new(event),
                raw,
            },
            Err(error) => LinkEvent::BadEvent { error, raw },
        }
    }
}

impl ServerMessage {
    /// Decodes this message as a protocol event (unknown names become
    /// [`ServerEvent::Unknown`]).
    pub fn decode(&self) -> Result<ServerEvent, ProtoError> {
        ServerEvent::decode(&self.name, self.data().clone())
    }
}
