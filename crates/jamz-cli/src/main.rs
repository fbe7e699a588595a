//! `jamz`: the headless TrafficJamz client and admin tool. A thin face over
//! jamz-node: parsing arguments, progress bars and printing are here; everything
//! else is in the node.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use jamz_node::account::{self, CredentialStore};
use jamz_node::{LocationSource, NodeAuth, NodeConfig};
use jamz_node::{discovery, host, tracks};

mod terminal;

#[derive(Parser, Debug)]
#[command(version, about = "TrafficJamz headless client and admin tool")]
struct Cli {
    /// Also trust the certificate authorities in this PEM file for https/wss (a
    /// self-hosted server with its own CA); the system's trust store is always used.
    #[arg(long, global = true, env = "JAMZ_CA_CERT", value_name = "PEM")]
    ca_cert: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Runs the reference backend (jamz-server) in this process.
    Server(ServerCmd),
    /// Lists the sessions hosted on this network (announced over mDNS): the URL and
    /// the name of each, one per line.
    Discover {
        /// How long to listen, s.
        #[arg(long, default_value_t = discovery::DEFAULT_WAIT.as_secs_f64())]
        wait_s: f64,
    },
    /// Creates an account and saves its token.
    Register {
        #[arg(long, env = "JAMZ_SERVER", default_value = "http://127.0.0.1:5050")]
        server: String,
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long, env = "JAMZ_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Logs in and saves the token (the OS keyring; where none answers, the
    /// platform config dir, mode 0600).
    Login {
        #[arg(long, env = "JAMZ_SERVER", default_value = "http://127.0.0.1:5050")]
        server: String,
        #[arg(long)]
        username: String,
        #[arg(long, env = "JAMZ_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Logs out: the server revokes every token of the account (all its
    /// devices), and the saved login is forgotten here.
    Logout,
    /// Changes the password; every other device must log in again, this one
    /// keeps a fresh token.
    Password {
        /// The current password.
        #[arg(long, env = "JAMZ_PASSWORD", hide_env_values = true)]
        current: String,
        /// The new password.
        #[arg(long = "new", env = "JAMZ_NEW_PASSWORD", hide_env_values = true)]
        new_password: String,
    },
    /// Groups: create, list, add a member, leave.
    Group {
        #[command(subcommand)]
        action: GroupCmd,
    },
    /// Uploads files (tags read from them); with --group, appends them to the
    /// group's playlist.
    Upload {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long)]
        group: Option<String>,
    },
    /// Prints a group's playlist.
    Playlist {
        #[arg(long)]
        group: String,
        /// One JSON track per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The local track cache.
    Cache {
        /// Cache directory (default: the platform cache dir).
        #[arg(long, env = "JAMZ_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
        #[command(subcommand)]
        action: CacheCmd,
    },
    /// Runs a headless node in a group's session (see docs/node-control.md).
    Node(NodeArgs),
    /// Measures an output's latency with the microphone (the default input, near the
    /// speakers): plays a few probe signals, finds them in the recording, and prints the
    /// latency offset to pass to `node --latency-offset-ms`.
    Calibrate {
        /// The output to measure (`default` or `device:ID`, see `jamz outputs`).
        #[arg(long, env = "JAMZ_OUTPUT", default_value = "default")]
        output: String,
        /// The latency offset in force now, ms: the result adds to it.
        #[arg(long, env = "JAMZ_LATENCY_OFFSET_MS", default_value_t = 0.0)]
        latency_offset_ms: f64,
        /// Probes to play (each about 1.5 s).
        #[arg(long)]
        probes: Option<usize>,
        /// One JSON object instead of sentences.
        #[arg(long)]
        json: bool,
    },
    /// Lists the audio outputs: one per line, the spec to pass to `node --output` and
    /// the device's name.
    Outputs {
        /// One JSON array of {id, name, is_default} instead of lines.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum GroupCmd {
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    List,
    AddMember {
        group: String,
        username: String,
    },
    /// Leaves a group (its session and map no longer include you).
    Leave {
        group: String,
    },
}

#[derive(Subcommand, Debug)]
enum CacheCmd {
    Stats,
    /// Caches a group's whole playlist.
    Preload {
        #[arg(long)]
        group: String,
    },
    Clear,
}

#[derive(clap::Args, Debug)]
struct ServerCmd {
    #[command(flatten)]
    server: host::ServerArgs,
    /// Announce the server on the local network (mDNS) so that `jamz node --discover`
    /// and the app find it without its address; NAME defaults to "TrafficJamz on HOST".
    /// Needs a --bind address other devices reach (0.0.0.0:5050).
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
    announce: Option<String>,
}

#[derive(clap::Args, Debug)]
struct NodeArgs {
    /// Backend (default: the one of the saved login). Several servers of one backend
    /// (processes sharing its database): repeat the flag or separate them with commas;
    /// the node logs in on the first that answers and moves to another when its server
    /// dies or announces its shutdown.
    #[arg(long, env = "JAMZ_SERVER", value_delimiter = ',')]
    server: Vec<String>,
    /// An ICE server of the peer mesh: a STUN server it asks for this device's address
    /// outside its NAT (`stun:host[:port]`), so that cars on different networks can link,
    /// or a TURN server that relays where the NATs allow nothing else
    /// (`turn:user:credential@host[:port]`, UDP; `%XX` escapes in the user and credential);
    /// repeat the flag or separate with commas. None by default: host addresses only.
    #[arg(
        long = "ice-server",
        env = "JAMZ_ICE_SERVERS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    ice_servers: Vec<String>,
    /// With --password: log in as this user (default: the saved token).
    #[arg(long, env = "JAMZ_USERNAME")]
    username: Option<String>,
    #[arg(long, env = "JAMZ_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// The group whose session to join; with --discover it defaults to your only
    /// group on the server found.
    #[arg(long, env = "JAMZ_GROUP", required_unless_present = "discover")]
    group: Option<String>,
    /// Join the session hosted on this network (found over mDNS) instead of --server;
    /// NAME picks one when several are announced ("any", or no NAME: the only one).
    #[arg(
        long,
        env = "JAMZ_DISCOVER",
        value_name = "NAME",
        num_args = 0..=1,
        default_missing_value = "",
        conflicts_with = "server"
    )]
    discover: Option<String>,
    /// With --discover: how long to look, s.
    #[arg(long, requires = "discover", default_value_t = discovery::DEFAULT_WAIT.as_secs_f64())]
    discover_wait_s: f64,
    /// Display name in the session.
    #[arg(long, env = "JAMZ_NAME")]
    name: Option<String>,
    /// default | device:ID (see `jamz outputs`) | null | wav:PATH
    #[arg(long, env = "JAMZ_OUTPUT", default_value = "default")]
    output: String,
    #[arg(long, env = "JAMZ_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Where this car's position comes from (docs/node-control.md, `--location`):
    /// none | manual | auto | gpsd[:HOST[:PORT]] | nmea:DEVICE[@BAUD] | replay:FILE.nmea or .gpx[@SPEED|@max]
    #[arg(long, env = "JAMZ_LOCATION", default_value = "none")]
    location: String,
    /// How much later than reported this output's sound is heard (a Bluetooth
    /// car stereo: 150-300), 0-2000 ms.
    #[arg(long, env = "JAMZ_LATENCY_OFFSET_MS", default_value_t = 0.0)]
    latency_offset_ms: f64,
    /// Track cache size limit, MiB (default 2048).
    #[arg(long, env = "JAMZ_CACHE_MAX_MIB")]
    cache_max_mib: Option<u64>,
    /// Cache every playlist track in the background while online.
    #[arg(long)]
    auto_preload: bool,
    /// Share this car's position with the group from the start (off by default).
    #[arg(long)]
    share_location: bool,
    /// With --share-location: stop sharing by itself after this many seconds.
    #[arg(long, requires = "share_location")]
    share_for_s: Option<f64>,
    /// Where YouTube answers oEmbed (a video's title for `add` with `youtube`):
    /// `{origin}/oembed`. Tests use a local stand-in.
    #[arg(long, env = "JAMZ_YOUTUBE_ORIGIN", default_value = jamz_node::DEFAULT_YOUTUBE_ORIGIN)]
    youtube_origin: String,
    /// Show the session in the desktop's "now playing" and take its media keys (MPRIS on
    /// the session bus; `playerctl play-pause`). The DJ's keys steer the group.
    #[arg(long, env = "JAMZ_MEDIA_SESSION")]
    media_session: bool,
    /// JSON lines: commands on stdin, events on stdout.
    #[arg(long)]
    json: bool,
    /// Read no commands (a service): run until SIGTERM or Ctrl-C. The default when stdin
    /// is /dev/null (or another device that is not a terminal).
    #[arg(long)]
    no_stdin: bool,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("jamz: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jamz: {}", error_report(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each said once. The libraries' errors
/// already name their cause in their message (`"{path}: {source}"`), so printing the
/// chain as it is (`{e:#}`) would repeat every cause after the message that holds it.
fn error_report(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

async fn run(cli: Cli) -> Result<()> {
    if let Some(ca) = &cli.ca_cert {
        let n = jamz_node::trust_ca_file(ca)?;
        tracing::info!(file = %ca.display(), certificates = n, "trusting an added CA");
    }
    match cli.command {
        Cmd::Server(a) => server(a).await,
        Cmd::Discover { wait_s } => discover(wait_s).await,
        Cmd::Register {
            server,
            username,
            email,
            password,
        } => {
            let store = CredentialStore::default_location()?;
            let email = email.unwrap_or_else(|| format!("{username}@jamz.invalid"));
            let c = account::register(&store, &server, &username, &email, &password).await?;
            println!(
                "registered {} (user {}); token saved in {}",
                c.username,
                c.user_id,
                where_saved(&store)?
            );
            Ok(())
        }
        Cmd::Login {
            server,
            username,
            password,
        } => {
            let store = CredentialStore::default_location()?;
            let c = account::login(&store, &server, &username, &password).await?;
            println!(
                "logged in as {} (user {}); token saved in {}",
                c.username,
                c.user_id,
                where_saved(&store)?
            );
            Ok(())
        }
        Cmd::Logout => {
            let store = CredentialStore::default_location()?;
            let outcome = account::logout(&store).await?;
            match (outcome.revoked_on_server, outcome.problem) {
                (true, _) => println!("logged out; the server revoked every token of the account"),
                (false, Some(p)) => {
                    println!("logged out on this device; the token could not be revoked: {p}")
                }
                (false, None) => println!("logged out on this device"),
            }
            Ok(())
        }
        Cmd::Password {
            current,
            new_password,
        } => {
            let store = CredentialStore::default_location()?;
            let c = account::change_password(&store, &current, &new_password).await?;
            println!(
                "password changed for {}; other devices must log in again",
                c.username
            );
            Ok(())
        }
        Cmd::Group { action } => group(action).await,
        Cmd::Upload { files, group } => upload(files, group).await,
        Cmd::Playlist { group, json } => playlist(&group, json).await,
        Cmd::Cache { cache_dir, action } => cache(cache_dir, action).await,
        Cmd::Node(a) => node(a).await,
        Cmd::Outputs { json } => outputs(json),
        Cmd::Calibrate {
            output,
            latency_offset_ms,
            probes,
            json,
        } => calibrate(&output, latency_offset_ms, probes, json).await,
    }
}

/// Where the saved token went, in words.
fn where_saved(store: &CredentialStore) -> Result<String> {
    Ok(match store.token_store()? {
        Some(jamz_node::TokenStore::Keyring) => "the OS keyring".to_owned(),
        _ => store.path().display().to_string(),
    })
}

fn outputs(json: bool) -> Result<()> {
    let list = jamz_node::output_devices().context("listing audio outputs")?;
    if json {
        println!("{}", serde_json::to_string(&list)?);
        return Ok(());
    }
    for d in &list {
        // The synthetic "default" entry is always the default; mark the real device that is.
        let mark = if d.is_default && d.id != "default" {
            "\t(default)"
        } else {
            ""
        };
        println!("{}\t{}{mark}", d.id, d.name);
    }
    Ok(())
}

async fn calibrate(output: &str, offset_ms: f64, probes: Option<usize>, json: bool) -> Result<()> {
    let spec: jamz_node::OutputSpec = output.parse()?;
    if !json {
        eprintln!(
            "Calibrating {output}: keep the microphone near the speakers and the car quiet for a few seconds..."
        );
    }
    let r =
        tokio::task::spawn_blocking(move || jamz_node::calibrate_output(&spec, offset_ms, probes))
            .await
            .context("the calibration stopped")??;
    if json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "Heard {:+.1} ms from the expected ({} of {} probes agree within {:.1} ms, confidence {:.2}).",
            r.delay_ms, r.agreeing, r.probes, r.spread_ms, r.confidence
        );
        println!(
            "Latency offset: {:.0} ms (jamz node --latency-offset-ms {:.0})",
            r.latency_offset_ms, r.latency_offset_ms
        );
    }
    Ok(())
}

async fn server(a: ServerCmd) -> Result<()> {
    let bind = a.server.bind;
    if a.announce.is_some() && bind.ip().is_loopback() {
        bail!(
            "--announce: {bind} is reached from this device only; listen where other devices reach it (--bind 0.0.0.0:5050)"
        );
    }
    let mut announced = None;
    host::serve(
        a.server,
        |addr, url| {
            println!("jamz-server listening on {url}");
            if let Some(name) = a.announce {
                let name = Some(name)
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or_else(discovery::device_announcement_name);
                // The server runs on without it: its URL still works when typed.
                let https = url.starts_with("https://");
                match discovery::Announcer::start(&name, addr.port(), Some(addr.ip()), https) {
                    Ok(a) => {
                        println!("announced on this network as \"{}\"", a.name());
                        announced = Some(a);
                    }
                    Err(e) => eprintln!("jamz: not announced on this network: {e}"),
                }
            }
        },
        host::stop_signal(),
    )
    .await?;
    if let Some(a) = announced {
        a.stop().await;
    }
    Ok(())
}

/// The name `--discover NAME` (or `JAMZ_DISCOVER`) asks for: none for no NAME or
/// "any" (an environment file cannot say "the flag without a value").
fn session_wanted(arg: &str) -> Option<&str> {
    Some(arg.trim()).filter(|w| !w.is_empty() && !w.eq_ignore_ascii_case("any"))
}

fn wait_of(secs: f64, flag: &str) -> Result<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("{flag} {secs}: a number of seconds above 0"))
}

async fn discover(wait_s: f64) -> Result<()> {
    let wait = wait_of(wait_s, "--wait-s")?;
    let found = discovery::browse(wait, |_| false).await?;
    if found.is_empty() {
        bail!("no session found on this network within {wait_s} s");
    }
    for s in &found {
        println!("{}\t{}", s.url, s.name);
    }
    Ok(())
}

fn saved() -> Result<(jamz_node::RestClient, account::Credentials)> {
    let store = CredentialStore::default_location()?;
    Ok(account::saved_client(&store, None)?)
}

async fn group(action: GroupCmd) -> Result<()> {
    let (rest, _) = saved()?;
    match action {
        GroupCmd::Create { name, description } => {
            let g = rest.create_group(&name, description.as_deref()).await?;
            println!("{}\t{}", g.id, g.name);
        }
        GroupCmd::List => {
            for g in rest.groups().await? {
                println!("{}\t{}\t{} members", g.id, g.name, g.members.len());
            }
        }
        GroupCmd::AddMember { group, username } => {
            let g = rest.add_member(&group, &username).await?;
            println!("{}\t{}\t{} members", g.id, g.name, g.members.len());
        }
        GroupCmd::Leave { group } => {
            rest.leave_group(&group).await?;
            println!("left {group}");
        }
    }
    Ok(())
}

fn bytes_bar(total: u64, label: String) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:20!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label);
    bar
}

async fn upload(files: Vec<PathBuf>, group: Option<String>) -> Result<()> {
    let (rest, _) = saved()?;
    let session = match &group {
        Some(g) => Some(rest.session_for_group(g).await?),
        None => None,
    };
    for file in files {
        let label = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bar = bytes_bar(0, label);
        let b = bar.clone();
        let progress: jamz_node::Progress = Arc::new(move |sent, total| {
            b.set_length(total);
            b.set_position(sent);
        });
        let track = tracks::upload_file(&rest, &file, Some(progress))
            .await
            .with_context(|| format!("uploading {}", file.display()))?;
        bar.finish_and_clear();
        if let Some(s) = &session {
            rest.append_track(&s.id, &track).await?;
        }
        println!(
            "{}\t{}\t{}\t{}",
            track.id,
            track.title,
            track.artist,
            track
                .duration
                .map(|d| format!("{d:.1}s"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

async fn playlist(group: &str, json: bool) -> Result<()> {
    let (rest, _) = saved()?;
    let session = rest.session_for_group(group).await?;
    for t in &session.music.playlist {
        if json {
            println!("{}", serde_json::to_string(t)?);
        } else {
            println!(
                "{}\t{}\t{}\t{}",
                t.id,
                t.title,
                t.artist,
                t.duration.map(|d| format!("{d:.1}s")).unwrap_or_default()
            );
        }
    }
    Ok(())
}

async fn cache(dir: Option<PathBuf>, action: CacheCmd) -> Result<()> {
    let cache = tracks::open_cache(dir.as_deref()).await?;
    match action {
        CacheCmd::Stats => {
            let s = cache.stats().await?;
            println!(
                "{} tracks, {} bytes (limits {} tracks, {} bytes); {} hits, {} misses",
                s.tracks, s.bytes, s.max_tracks, s.max_bytes, s.hits, s.misses
            );
        }
        CacheCmd::Clear => {
            cache.clear().await?;
            println!("cache cleared");
        }
        CacheCmd::Preload { group } => {
            let (rest, _) = saved()?;
            let session = rest.session_for_group(&group).await?;
            let list: Vec<_> = session
                .music
                .playlist
                .iter()
                .map(tracks::cache_track)
                .collect();
            let bar = bytes_bar(0, format!("{} tracks", list.len()));
            let b = bar.clone();
            let report = cache
                .preload(
                    &list,
                    move |p| {
                        b.set_length(p.bytes_total);
                        b.set_position(p.bytes_done);
                        b.set_message(format!("{}/{} tracks", p.items_done, p.items_total));
                    },
                    &jamz_node::CancellationToken::new(),
                )
                .await;
            bar.finish_and_clear();
            println!(
                "{} fetched, {} already cached, {} failed",
                report.fetched.len(),
                report.already_cached.len(),
                report.failed.len()
            );
            for (id, e) in &report.failed {
                eprintln!("  {id}: {e}");
            }
            if !report.failed.is_empty() {
                bail!("{} tracks could not be cached", report.failed.len());
            }
        }
    }
    cache.shutdown().await;
    Ok(())
}

/// `--ice-server` values as STUN or TURN URLs: a wrong one is an error naming it (a
/// credential left out).
fn ice_servers(urls: &[String]) -> Result<Vec<jamz_node::IceServer>> {
    urls.iter()
        .map(|u| u.trim())
        .filter(|u| !u.is_empty())
        .map(|u| u.parse().context("--ice-server"))
        .collect()
}

async fn node(a: NodeArgs) -> Result<()> {
    let auth = match (a.username, a.password) {
        (Some(username), Some(password)) => NodeAuth::Password { username, password },
        (None, None) => NodeAuth::Saved,
        _ => bail!("--username and --password go together"),
    };
    let store = CredentialStore::default_location()?;
    let mut servers = a
        .server
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let server = servers.next();
    let fallback_servers: Vec<String> = servers.collect();
    let server = match (server, &a.discover) {
        (_, Some(wanted)) => {
            let wait = wait_of(a.discover_wait_s, "--discover-wait-s")?;
            let wanted = session_wanted(wanted);
            let found = discovery::find_session(wanted, wait).await?;
            eprintln!("found \"{}\" at {}", found.name, found.url);
            found.url
        }
        (Some(s), None) => s,
        (None, None) => store
            .load()?
            .map(|c| c.server)
            .context("no --server and no saved login")?,
    };
    let (auth, group_id) = match a.group {
        Some(g) => (auth, g),
        None => discovery::group_on(&server, auth, &store).await?,
    };
    let config = NodeConfig {
        server,
        fallback_servers,
        auth,
        store: Some(store),
        group_id,
        display_name: a.name,
        output: a.output.parse().context("--output")?,
        cache_dir: a.cache_dir,
        location: a
            .location
            .parse::<LocationSource>()
            .map_err(anyhow::Error::msg)?,
        latency_offset_ms: a.latency_offset_ms,
        cache_max_bytes: a.cache_max_mib.map(|m| m.saturating_mul(1024 * 1024)),
        auto_preload: a.auto_preload,
        share_location: a.share_location,
        share_for_s: a.share_for_s,
        location_rules: Default::default(),
        youtube_origin: a.youtube_origin,
        external_video_player: false,
        media_session: a.media_session,
        ice_servers: ice_servers(&a.ice_servers)?,
    };
    let node = jamz_node::Node::start(config).await?;
    // Ctrl-C and SIGTERM leave the session cleanly (and finish a WAV output).
    let commander = node.commander();
    tokio::spawn(async move {
        host::stop_signal().await;
        let _ = commander.send(jamz_node::NodeCommand::Quit);
    });
    let stdin = (!a.no_stdin && stdin_carries_commands()).then(tokio::io::stdin);
    if a.json {
        jamz_node::json::serve_json(node, stdin, tokio::io::stdout()).await?;
    } else {
        let status = if std::io::stdout().is_terminal() {
            jamz_node::json::StatusDisplay::InPlace
        } else {
            jamz_node::json::StatusDisplay::OnRequest
        };
        // Single keys need both ends on the terminal: the typed command shows in place.
        let key_mode = (stdin.is_some()
            && status == jamz_node::json::StatusDisplay::InPlace
            && std::io::stdin().is_terminal())
        .then(terminal::KeyMode::enter)
        .flatten();
        let input = if key_mode.is_some() {
            jamz_node::json::HumanInput::Keys
        } else {
            jamz_node::json::HumanInput::Lines
        };
        let served =
            jamz_node::json::serve_human(node, stdin, tokio::io::stdout(), status, input).await;
        drop(key_mode);
        if status == jamz_node::json::StatusDisplay::InPlace {
            // The shell's prompt starts below the status line.
            println!();
        }
        served?;
    }
    Ok(())
}

/// Whether stdin is where commands come from: a terminal, a pipe or a file. A service
/// manager gives /dev/null (a character device that is no terminal): reading it would
/// end at once, and end of input means quit.
fn stdin_carries_commands() -> bool {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return true;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let dev_null = std::fs::metadata("/proc/self/fd/0")
            .or_else(|_| std::fs::metadata("/dev/stdin"))
            .map(|m| m.file_type().is_char_device())
            .unwrap_or(false);
        !dev_null
    }
    #[cfg(not(unix))]
    {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::error_report;

    /// An error that names its cause in its message, as the libraries' errors do.
    #[derive(Debug)]
    struct Reading {
        path: &'static str,
        source: std::io::Error,
    }

    impl std::fmt::Display for Reading {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "reading {}: {}", self.path, self.source)
        }
    }

    impl std::error::Error for Reading {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let e = anyhow::Error::new(Reading {
            path: "a.mp3",
            source: io,
        })
        .context("uploading");
        assert_eq!(error_report(&e), "uploading: reading a.mp3: No such file");
    }

    #[test]
    fn any_or_no_session_name_takes_the_only_one() {
        use super::session_wanted;
        assert_eq!(session_wanted(""), None);
        assert_eq!(session_wanted("  "), None);
        assert_eq!(session_wanted("any"), None);
        assert_eq!(session_wanted("ANY"), None);
        assert_eq!(session_wanted(" Ann's car "), Some("Ann's car"));
        // A name that contains "any" is a name.
        assert_eq!(session_wanted("Danny"), Some("Danny"));
    }

    #[test]
    fn causes_not_in_the_message_are_kept() {
        let e = anyhow::anyhow!("disk full").context("saving the playlist");
        assert_eq!(error_report(&e), "saving the playlist: disk full");
    }
}
