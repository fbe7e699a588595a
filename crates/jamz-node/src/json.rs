//! The faces of a headless node: JSON lines (commands from a reader (stdin), events to a
//! writer (stdout), exactly as `docs/node-control.md` specifies) and the same for people
//! (word commands, events in words: [`serve_human`]). A bad line is answered with an
//! `error` and the node goes on. End of input is `quit`.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::control::{MAX_COMMAND_LINE, NodeCommand, NodeEvent, parse_command};
use crate::error::NodeError;
use crate::human::{
    HELP, HumanView, KEYS_HELP, KeyAction, KeyReader, WordLine, parse_word_command,
};
use crate::runtime::Node;

/// Reads one line of at most [`MAX_COMMAND_LINE`] bytes; a longer one is drained
/// and reported as `Err(len)`. `Ok(None)` at end of input.
async fn read_bounded_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Result<String, usize>>> {
    buf.clear();
    let mut total = 0usize;
    let mut too_long = false;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            if total == 0 {
                return Ok(None);
            }
            break;
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        total += take;
        if !too_long {
            if buf.len() + take > MAX_COMMAND_LINE + 1 {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&chunk[..take]);
            }
        }
        reader.consume(take);
        if done {
            break;
        }
    }
    if too_long {
        return Ok(Some(Err(total)));
    }
    Ok(Some(Ok(String::from_utf8_lossy(buf).trim().to_owned())))
}

/// Runs `node` driven by JSON lines: every line of `input` a command, every
/// event a line on `output`. Returns when the node stops (after `quit`, or at
/// the end of `input`).
pub async fn serve<R, W>(node: Node, input: R, output: W) -> Result<(), NodeError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    serve_json(node, Some(input), output).await
}

/// Like [`serve`]; with no `input` (a service) the node runs until it is told to quit
/// otherwise (a signal).
pub async fn serve_json<R, W>(node: Node, input: Option<R>, output: W) -> Result<(), NodeError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let input = input.map(|i| Input::Lines(Box::new(i)));
    serve_with(node, input, output, json_line, &mut JsonFace, None).await
}

/// How [`serve_human`] shows the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusDisplay {
    /// A terminal: one status line, refreshed in place every second.
    InPlace,
    /// A log (a file, the journal): the status only when asked (`status`).
    OnRequest,
}

/// How [`serve_human`] reads its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HumanInput {
    /// Word commands, one per line (a pipe, a file, a terminal in canonical mode).
    Lines,
    /// A terminal in non-canonical mode, key by key: single keys act at once
    /// ([`KeyReader`]); the caller sets the terminal's mode and restores it.
    Keys,
}

/// Runs `node` for a person: word commands (`play`, `seek 42`, `help`; a line starting
/// with `{` is a JSON command) from `input`, or single keys ([`HumanInput::Keys`]),
/// events told in words on `output` ([`crate::human`]). With no `input` (a service), the
/// node runs until it is told to quit otherwise (a signal). End of `input` is `quit`.
pub async fn serve_human<R, W>(
    node: Node,
    input: Option<R>,
    output: W,
    status: StatusDisplay,
    mode: HumanInput,
) -> Result<(), NodeError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let in_place = status == StatusDisplay::InPlace;
    let mut face = HumanFace {
        view: HumanView::new(),
        in_place,
        bottom: String::new(),
        typed: None,
    };
    let input = input.map(|i| match mode {
        HumanInput::Lines => Input::Lines(Box::new(i)),
        HumanInput::Keys => Input::Keys(Box::new(i)),
    });
    let refresh = in_place.then_some(STATUS_REFRESH);
    serve_with(node, input, output, word_line, &mut face, refresh).await
}

/// How events (and what is being typed) are shown.
trait Face: Send {
    fn event(&mut self, ev: &NodeEvent) -> String;
    /// The play/pause key's command, where the face follows the playback.
    fn toggle_play(&self) -> Option<NodeCommand> {
        None
    }
    /// The command line being typed changed.
    fn typing(&mut self, _typed: Option<String>) -> String {
        String::new()
    }
}

struct JsonFace;

impl Face for JsonFace {
    fn event(&mut self, ev: &NodeEvent) -> String {
        let mut line = ev.to_line();
        line.push('\n');
        line
    }
}

struct HumanFace {
    view: HumanView,
    in_place: bool,
    /// The status line last shown at the bottom of a terminal.
    bottom: String,
    /// The command being typed (key mode), shown instead of the status line.
    typed: Option<String>,
}

impl HumanFace {
    /// The line kept at the bottom of a terminal: what is typed, else the status.
    fn bottom_line(&self) -> String {
        match &self.typed {
            Some(t) => format!("\r\x1b[K:{t}"),
            None => format!("\r\x1b[K{}", self.bottom),
        }
    }
}

impl Face for HumanFace {
    fn event(&mut self, ev: &NodeEvent) -> String {
        if let NodeEvent::Status(s) = ev {
            self.view.note_status(s);
            let line = self.view.status_line(s);
            if !self.in_place {
                return format!("{line}\n");
            }
            self.bottom = line;
            return self.bottom_line();
        }
        let lines = self.view.lines(ev);
        if !self.in_place {
            return lines.into_iter().map(|l| format!("{l}\n")).collect();
        }
        if lines.is_empty() {
            return String::new();
        }
        // On a terminal each line replaces the bottom line, which is drawn again below.
        let mut text: String = lines
            .into_iter()
            .map(|l| format!("\r\x1b[K{l}\n"))
            .collect();
        text.push_str(&self.bottom_line());
        text
    }

    fn toggle_play(&self) -> Option<NodeCommand> {
        Some(self.view.toggle_play())
    }

    fn typing(&mut self, typed: Option<String>) -> String {
        self.typed = typed;
        if self.in_place {
            self.bottom_line()
        } else {
            String::new()
        }
    }
}

/// How often the in-place status line is refreshed.
const STATUS_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// What a line of input asks.
enum Parsed {
    Command(NodeCommand),
    /// Text for the output (help).
    Text(String),
}

fn json_line(line: &str) -> Result<Parsed, Box<NodeEvent>> {
    parse_command(line)
        .map(Parsed::Command)
        .map_err(|e| Box::new(e.to_event()))
}

fn word_line(line: &str) -> Result<Parsed, Box<NodeEvent>> {
    match parse_word_command(line) {
        Ok(WordLine::Command(c)) => Ok(Parsed::Command(c)),
        Ok(WordLine::Help) => Ok(Parsed::Text(format!("{HELP}\n"))),
        Err(message) => Err(Box::new(NodeEvent::error(message, None))),
    }
}

/// Either an event or text from the input side, for the output.
enum Local {
    Event(Box<NodeEvent>),
    Text(String),
    TogglePlay,
    Typing(Option<String>),
}

type BoxedInput = Box<dyn AsyncRead + Unpin + Send>;

/// Where commands come from: lines, or a terminal key by key.
enum Input {
    Lines(BoxedInput),
    Keys(BoxedInput),
}

/// What the reader does with a line it read.
enum LineOutcome {
    Continue,
    Stop,
}

/// Parses one line and passes it on: a command to the node, text or an error to the output.
fn pass_line(
    line: &str,
    parse: fn(&str) -> Result<Parsed, Box<NodeEvent>>,
    commands: &crate::runtime::Commander,
    local_tx: &mpsc::UnboundedSender<Local>,
) -> LineOutcome {
    if line.is_empty() {
        return LineOutcome::Continue;
    }
    match parse(line) {
        Ok(Parsed::Command(cmd)) => {
            let quit = cmd == NodeCommand::Quit;
            if commands.send(cmd).is_err() || quit {
                return LineOutcome::Stop;
            }
        }
        Ok(Parsed::Text(text)) => {
            let _ = local_tx.send(Local::Text(text));
        }
        Err(e) => {
            let _ = local_tx.send(Local::Event(e));
        }
    }
    LineOutcome::Continue
}

async fn read_lines(
    input: BoxedInput,
    parse: fn(&str) -> Result<Parsed, Box<NodeEvent>>,
    commands: crate::runtime::Commander,
    local_tx: mpsc::UnboundedSender<Local>,
) {
    let mut reader = BufReader::new(input);
    let mut buf = Vec::new();
    loop {
        match read_bounded_line(&mut reader, &mut buf).await {
            Ok(Some(Ok(line))) => {
                if let LineOutcome::Stop = pass_line(&line, parse, &commands, &local_tx) {
                    return;
                }
            }
            Ok(Some(Err(len))) => {
                let _ = local_tx.send(Local::Event(Box::new(NodeEvent::error(
                    format!("command line of {len} bytes is over the limit of {MAX_COMMAND_LINE}"),
                    None,
                ))));
            }
            Ok(None) => {
                tracing::info!("end of input: quitting");
                let _ = commands.send(NodeCommand::Quit);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading commands failed: quitting");
                let _ = commands.send(NodeCommand::Quit);
                return;
            }
        }
    }
}

async fn read_keys(
    mut input: BoxedInput,
    parse: fn(&str) -> Result<Parsed, Box<NodeEvent>>,
    commands: crate::runtime::Commander,
    local_tx: mpsc::UnboundedSender<Local>,
) {
    let mut keys = KeyReader::new();
    let mut buf = [0u8; 256];
    loop {
        let n = match input.read(&mut buf).await {
            Ok(0) => {
                tracing::info!("end of input: quitting");
                let _ = commands.send(NodeCommand::Quit);
                return;
            }
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "reading keys failed: quitting");
                let _ = commands.send(NodeCommand::Quit);
                return;
            }
        };
        for &byte in &buf[..n] {
            let local = match keys.key(byte) {
                KeyAction::Line(line) => {
                    // A typed line leaves the prompt; a key's line never showed one.
                    let _ = local_tx.send(Local::Typing(None));
                    if let LineOutcome::Stop = pass_line(&line, parse, &commands, &local_tx) {
                        return;
                    }
                    continue;
                }
                KeyAction::TogglePlay => Local::TogglePlay,
                KeyAction::Typing(t) => Local::Typing(t),
                KeyAction::Help => Local::Text(format!("{HELP}\n{KEYS_HELP}\n")),
                KeyAction::Nothing => continue,
            };
            let _ = local_tx.send(local);
        }
    }
}

async fn serve_with<W>(
    mut node: Node,
    input: Option<Input>,
    mut output: W,
    parse: fn(&str) -> Result<Parsed, Box<NodeEvent>>,
    face: &mut dyn Face,
    status_every: Option<std::time::Duration>,
) -> Result<(), NodeError>
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let commands = node.commander();
    let (local_tx, mut local_rx) = mpsc::unbounded_channel::<Local>();
    let reader = input.map(|input| match input {
        Input::Lines(i) => tokio::spawn(read_lines(i, parse, commands, local_tx)),
        Input::Keys(i) => tokio::spawn(read_keys(i, parse, commands, local_tx)),
    });
    let refresher = status_every.map(|every| {
        let commands = node.commander();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                ticks.tick().await;
                if commands.send(NodeCommand::Status).is_err() {
                    return;
                }
            }
        })
    });
    let mut write_failed = None;
    loop {
        let text = tokio::select! {
            biased;
            Some(local) = local_rx.recv() => match local {
                Local::Event(ev) => face.event(&ev),
                Local::Text(text) => text,
                Local::TogglePlay => {
                    if let Some(cmd) = face.toggle_play() {
                        let _ = node.commander().send(cmd);
                    }
                    String::new()
                }
                Local::Typing(typed) => face.typing(typed),
            },
            ev = node.next_event() => match ev {
                Some(ev) => face.event(&ev),
                None => break,
            },
        };
        if write_failed.is_some() || text.is_empty() {
            continue;
        }
        let r = async {
            output.write_all(text.as_bytes()).await?;
            output.flush().await
        }
        .await;
        if let Err(e) = r {
            // Nobody reads our events any more: stop the node.
            tracing::warn!(error = %e, "writing events failed: quitting");
            let _ = node.commander().send(NodeCommand::Quit);
            write_failed = Some(e);
        }
    }
    if let Some(r) = reader {
        r.abort();
    }
    if let Some(r) = refresher {
        r.abort();
    }
    node.join().await
}
