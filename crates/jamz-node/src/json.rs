//! The JSON-lines face of a node: commands from a reader (stdin), events to a
//! writer (stdout), exactly as `docs/node-control.md` specifies. A bad line is
//! answered with an `error` event and the node goes on. End of input is `quit`.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::control::{MAX_COMMAND_LINE, NodeCommand, NodeEvent, parse_command};
use crate::error::NodeError;
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
    serve_with(node, input, output, |e| e.to_line()).await
}

/// Like [`serve`], with events printed for people (`event: {json}`).
pub async fn serve_plain<R, W>(node: Node, input: R, output: W) -> Result<(), NodeError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    serve_with(node, input, output, |e| {
        let line = e.to_line();
        match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(serde_json::Value::Object(mut m)) => {
                let name = m
                    .remove("event")
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                format!("{name}: {}", serde_json::Value::Object(m))
            }
            _ => line,
        }
    })
    .await
}

async fn serve_with<R, W>(
    mut node: Node,
    input: R,
    mut output: W,
    format: impl Fn(&NodeEvent) -> String,
) -> Result<(), NodeError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let commands = node.commander();
    let (local_tx, mut local_rx) = mpsc::unbounded_channel::<NodeEvent>();
    let reader = tokio::spawn(async move {
        let mut reader = BufReader::new(input);
        let mut buf = Vec::new();
        loop {
            match read_bounded_line(&mut reader, &mut buf).await {
                Ok(Some(Ok(line))) => {
                    if line.is_empty() {
                        continue;
                    }
                    match parse_command(&line) {
                        Ok(cmd) => {
                            let quit = cmd == NodeCommand::Quit;
                            if commands.send(cmd).is_err() || quit {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = local_tx.send(e.to_event());
                        }
                    }
                }
                Ok(Some(Err(len))) => {
                    let _ = local_tx.send(NodeEvent::error(
                        format!(
                            "command line of {len} bytes is over the limit of {MAX_COMMAND_LINE}"
                        ),
                        None,
                    ));
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
    });
    let mut write_failed = None;
    loop {
        let ev = tokio::select! {
            biased;
            Some(ev) = local_rx.recv() => ev,
            ev = node.next_event() => match ev {
                Some(ev) => ev,
                None => break,
            },
        };
        if write_failed.is_some() {
            continue;
        }
        let mut line = format(&ev);
        line.push('\n');
        let r = async {
            output.write_all(line.as_bytes()).await?;
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
    reader.abort();
    node.join().await
}
