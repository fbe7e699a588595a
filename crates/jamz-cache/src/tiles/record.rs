//! One tile as a file: a short header (when it was fetched, its media type, the
//! body's length and SHA-256) then the body. The hash lets a damaged or cut-off
//! file be told from a good one, so it is fetched again rather than shown broken.

use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"JZTILE1\n";
/// Magic, fetched-at, body length, SHA-256, media type length.
const FIXED: usize = 8 + 8 + 4 + 32 + 1;
/// Largest tile body kept (real tiles are 1-100 KiB).
pub const MAX_TILE_BYTES: usize = 1024 * 1024;

/// A tile as the server gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileRecord {
    /// Seconds since the Unix epoch when it was fetched.
    pub fetched_at: u64,
    /// `image/png`, `image/jpeg`, ...
    pub media_type: String,
    pub body: Vec<u8>,
}

impl TileRecord {
    pub fn encode(&self) -> Vec<u8> {
        let media = self.media_type.as_bytes();
        let media = &media[..media.len().min(usize::from(u8::MAX))];
        let mut out = Vec::with_capacity(FIXED + media.len() + self.body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.fetched_at.to_le_bytes());
        // Bodies are at most MAX_TILE_BYTES (checked before a record is made).
        out.extend_from_slice(
            &u32::try_from(self.body.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        out.extend_from_slice(&Sha256::digest(&self.body));
        out.push(u8::try_from(media.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(media);
        out.extend_from_slice(&self.body);
        out
    }

    /// The record in `bytes`, or what is wrong with them.
    pub fn decode(bytes: &[u8]) -> Result<TileRecord, &'static str> {
        let head = bytes.get(..FIXED).ok_or("shorter than a tile header")?;
        if &head[..8] != MAGIC {
            return Err("not a tile file");
        }
        let fetched_at = u64::from_le_bytes(head[8..16].try_into().map_err(|_| "header")?);
        let len = u32::from_le_bytes(head[16..20].try_into().map_err(|_| "header")?) as usize;
        let sha = &head[20..52];
        let media_len = usize::from(head[52]);
        let media = bytes
            .get(FIXED..FIXED + media_len)
            .ok_or("cut off in the header")?;
        let media_type = std::str::from_utf8(media).map_err(|_| "media type is not text")?;
        let body = bytes
            .get(FIXED + media_len..)
            .ok_or("cut off in the header")?;
        if body.len() != len {
            return Err("body length differs from the header's");
        }
        if Sha256::digest(body)[..] != *sha {
            return Err("body does not match its SHA-256");
        }
        Ok(TileRecord {
            fetched_at,
            media_type: media_type.to_owned(),
            body: body.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TileRecord {
        TileRecord {
            fetched_at: 1_700_000_000,
            media_type: "image/png".into(),
            body: (0..300u16).map(|i| (i % 251) as u8).collect(),
        }
    }

    #[test]
    fn a_record_reads_back() {
        let r = sample();
        assert_eq!(TileRecord::decode(&r.encode()).unwrap(), r);
    }

    #[test]
    fn every_cut_and_every_flipped_byte_is_refused_without_panic() {
        let good = sample().encode();
        for n in 0..good.len() {
            assert!(
                TileRecord::decode(&good[..n]).is_err(),
                "cut at {n} accepted"
            );
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            // A flipped bit in the fetched-at time or the media type still hashes right:
            // it is a different record, not a damaged body.
            let accepted = TileRecord::decode(&bad).is_ok();
            let harmless = (8..16).contains(&i) || (53..53 + 9).contains(&i);
            assert_eq!(accepted, harmless, "byte {i} flipped");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        // A fixed seed (xorshift): printed so a failure can be replayed.
        let seed = 0x5eed_7113_u64;
        let mut s = seed;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for round in 0..2000 {
            let len = (next() % 200) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if round % 2 == 0 && bytes.len() >= 8 {
                bytes[..8].copy_from_slice(MAGIC);
            }
            assert!(
                TileRecord::decode(&bytes).is_err(),
                "seed {seed:#x} round {round}: random bytes accepted"
            );
        }
    }
}
