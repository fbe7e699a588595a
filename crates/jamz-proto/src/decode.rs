use serde::de::DeserializeOwned;

use crate::ProtoError;

/// Decodes a JSON value into `T`, naming the offending field on error.
pub fn decode<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ProtoError> {
    serde_path_to_error::deserialize(value).map_err(path_error)
}

/// Decodes JSON text into `T`, naming the offending field on error.
pub fn decode_str<T: DeserializeOwned>(text: &str) -> Result<T, ProtoError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(path_error)?;
    de.end().map_err(syntax_error)?;
    Ok(value)
}

/// Decodes JSON bytes into `T`, naming the offending field on error.
pub fn decode_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ProtoError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(path_error)?;
    de.end().map_err(syntax_error)?;
    Ok(value)
}

fn syntax_error(e: serde_json::Error) -> ProtoError {
    ProtoError::Syntax {
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    }
}

fn path_error(e: serde_path_to_error::Error<serde_json::Error>) -> ProtoError {
    use serde_json::error::Category;
    let path = e.path().to_string();
    let inner = e.into_inner();
    match inner.classify() {
        Category::Syntax | Category::Eof | Category::Io => syntax_error(inner),
        Category::Data => ProtoError::Field {
            field: if path == "." {
                "(message)".to_string()
            } else {
                path
            },
            message: strip_position(&inner.to_string()),
        },
    }
}

/// serde_json appends " at line 1 column 42" to data errors; the field path
/// says more and the position only confuses a reader of a one-line message.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}
