//! Small serde helpers for the protocol's loose spots.
use serde::{Deserialize, Deserializer};

/// Reads `null` as the type's default. Documents from the web backend carry
/// `null` for absent strings (`"artist": null`); that is not a wrong type.
pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
