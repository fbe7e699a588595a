/// A message that could not be decoded. Every variant says where the fault is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtoError {
    /// The bytes are not JSON at all (syntax error or truncated input).
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// JSON, but a field is missing or has the wrong type. `field` is a dotted
    /// path such as `track.duration` or `playlist[3].title`.
    #[error("field `{field}`: {message}")]
    Field { field: String, message: String },
    /// The payload of a named event is wrong.
    #[error("event `{event}`: {source}")]
    Event {
        event: String,
        #[source]
        source: Box<ProtoError>,
    },
}

impl ProtoError {
    /// Wraps this error with the name of the event that carried it.
    pub fn in_event(self, event: &str) -> Self {
        Self::Event {
            event: event.to_string(),
            source: Box::new(self),
        }
    }

    /// The offending field's path, where the error has one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Field { field, .. } => Some(field),
            Self::Event { source, .. } => source.field(),
            Self::Syntax { .. } => None,
        }
    }
}
