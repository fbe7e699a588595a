//! Is an upload audio the players can decode? The container is probed with the
//! same symphonia build the clients use, an audio track with a supported codec
//! must exist, and its first packet must decode. The format found also gives the
//! content type the file is served with (never the uploader's word for it).
use std::path::Path;

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

/// Packets tried before deciding that nothing decodes: enough to skip a
/// damaged first frame or a leading metadata packet.
const PACKETS_TRIED: usize = 16;

/// The content type of an audio file the decoders accept, or why not.
pub fn audio_type(path: &Path, file_name: &str) -> Result<&'static str, String> {
    let path = path.to_path_buf();
    let ext = Path::new(file_name)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    // A library bug on hostile input must not take the server down.
    std::panic::catch_unwind(move || probe(&path, ext.as_deref()))
        .unwrap_or_else(|_| Err("the decoder failed on this file".to_string()))
}

fn probe(path: &Path, ext: Option<&str>) -> Result<&'static str, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read the upload: {e}"))?;
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = ext {
        hint.with_extension(ext);
    }
    let not_audio = |e: SymError| format!("not an audio file the players can decode ({e})");
    let mut reader = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(not_audio)?;
    let content_type = match reader.format_info().short_name {
        "mp1" | "mp2" | "mp3" => "audio/mpeg",
        "isomp4" => "audio/mp4",
        "flac" => "audio/flac",
        "ogg" => "audio/ogg",
        "wave" => "audio/wav",
        "aiff" => "audio/aiff",
        "aac" => "audio/aac",
        other => return Err(format!("{other} is not a format the players take")),
    };
    let track = reader
        .default_track(TrackType::Audio)
        .ok_or_else(|| "the file has no audio track".to_string())?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| "the audio track has no codec parameters".to_string())?;
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(params, &AudioDecoderOptions::default())
        .map_err(not_audio)?;
    for _ in 0..PACKETS_TRIED {
        let packet = match reader.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => return Err(not_audio(e)),
        };
        if packet.track_id != track_id {
            continue;
        }
        if decoder.decode(&packet).is_ok() {
            return Ok(content_type);
        }
    }
    Err("no audio in the file decodes".to_string())
}
