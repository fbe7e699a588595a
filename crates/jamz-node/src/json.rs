//! The faces of a headless node: JSON lines (commands from a reader (stdin), events to a
//! writer (stdout), exactly as `docs/node-control.md` specifies) and the same for people
//! (word commands, events in words: [`serve_human`]). A bad line is answered with an
//! `error` and the node goes on. End of input is `quit`.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::control::{MAX_COMMAND_LINE, NodeCommand, NodeEvent, parse_command};
use crate::error::NodeError;
use crate::human::{HELP, HumanView, WordLine, parse_word_command};
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
    let mut format = |e: &NodeEvent| {
        let mut line = e.to_line();
        line.push('\n');
        line
    };
    serve_with(node, input, output, json_line, &mut format, None).await
}

/// How [`serve_human`] shows the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusDisplay {
    /// A terminal: one status line, refreshed in place every second.
    InPlace,
    /// A log (a file, the journal): the status only when asked (`status`).
    OnRequest,
}

/// Runs `node` for a person: word commands (`play`, `seek 42`, `help`; a line starting
/// with `{` is a JSON command) from `input`, events told in words on `output`
/// ([`crate::human`]). With no `input` (a service), the node runs until it is told to
/// quit otherwise (a signal). End of `input` is `quit`.
pub async fn serve_human<R, W>(
    node: Node,
    input: Option<R>,
    output: W,
    status: StatusDisplay,
) -> Result<(), NodeError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut view = HumanView::new();
    let in_place = status == StatusDisplay::InPlace;
    let mut format = move |e: &NodeEvent| {
        // On a terminal every line first clears the status line it replaces.
        let clear = if in_place { "\r\x1b[K" } else { "" };
        match e {
            NodeEvent::Status(s) if in_place => format!("{clear}{}", view.status_line(s)),
            NodeEvent::Status(s) => format!("{}\n", view.status_line(s)),
            ev => view
                .lines(ev)
                .into_iter()
                .map(|l| format!("{clear}{l}\n"))
                .collect(),
        }
    };
    let refresh = in_place.then_some(STATUS_REFRESH);
    serve_with(node, input, output, word_line, &mut format, refresh).await
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
    Event(NodeEvent),
    Text(String),
}

async fn serve_with<R, W>(
    mut node: Node,
    input: Option<R>,
    mut output: W,
    parse: fn(&str) -> Result<Parsed, Box<NodeEvent>>,
    format: &mut (dyn FnMut(&NodeEvent) -> String + Send),
    status_every: Option<std::time::Duration>,
) -> Result<(), NodeError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let commands = node.commander();
    let (local_tx, mut local_rx) = mpsc::unbounded_channel::<Local>();
    let reader = input.map(|input| {
        tokio::spawn(async move {
            let mut reader = BufReader::new(input);
            let mut buf = Vec::new();
            loop {
                match read_bounded_line(&mut reader, &mut buf).await {
                    Ok(Some(Ok(line))) => {
                        if line.is_empty() {
                            continue;
                        }
                        match parse(&line) {
                            Ok(Parsed::Command(cmd)) => {
                                let quit = cmd == NodeCommand::Quit;
                                if commands.send(cmd).is_err() || quit {
                                    return;
                                }
                            }
                            Ok(Parsed::Text(text)) => {
                                let _ = local_tx.send(Local::Text(text));
                            }
                            Err(e) => {
                                let _ = local_tx.send(Local::Event(*e));
                            }
                        }
                    }
                    Ok(Some(Err(len))) => {
                        let _ = local_tx.send(Local::Event(NodeEvent::error(
                            format!(
                                "command line of {len} bytes is over the limit of {MAX_COMMAND_LINE}"
                            ),
                            None,
                        )));
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
        })
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
                Local::Event(ev) => format(&ev),
                Local::Text(text) => text,
            },
            ev = node.next_event() => match ev {
                Some(ev) => format(&ev),
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
