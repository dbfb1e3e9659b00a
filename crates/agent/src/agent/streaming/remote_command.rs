//! The remote-command WebSocket protocol kubectl 1.31+ speaks for `exec` and `attach`
//! (`v5.channel.k8s.io`, and `v4.channel.k8s.io` without the close signal), served for a
//! command the agent started ([`LocalExec`]).
//!
//! Every binary message is one channel's data, the channel its first byte: 0 stdin, 1 stdout,
//! 2 stderr, 3 error (the outcome, a `Status` as JSON), 4 resize (`{"Width":..,"Height":..}`),
//! and in v5 255 the close signal (`[255, channel]`: the client's stdin ended). As the
//! kubelet's, the server first writes an empty message on its lowest writable channel, then
//! the command's output, then the outcome on the error channel, and closes.

use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::agent::runtime::{LocalExec, StreamOptions};

/// The subprotocols served, most preferred first.
pub const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
/// v5's close signal: the client will send no more on the channel in its second byte.
const CLOSE: u8 = 255;

/// The outcome of a command as the error channel carries it (the kubelet's `writeStatus`).
pub fn outcome_status(outcome: &Result<i32, String>) -> Value {
    match outcome {
        Ok(0) => json!({"metadata": {}, "status": "Success"}),
        Ok(code) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("command terminated with non-zero exit code: exit status {code}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        Err(why) => {
            let why = format!("error executing command in container: {why}");
            json!({
                "metadata": {},
                "status": "Failure",
                "message": format!("Internal error occurred: {why}"),
                "reason": "InternalError",
                "details": {"causes": [{"message": why}]},
                "code": 500,
            })
        }
    }
}

/// One channel's message.
fn frame(channel: u8, data: &[u8]) -> Message {
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(channel);
    out.extend_from_slice(data);
    Message::Binary(Bytes::from(out))
}

/// What a client's message asks.
#[derive(Debug, PartialEq, Eq)]
enum FromClient<'a> {
    Stdin(&'a [u8]),
    CloseStdin,
    Resize { width: u16, height: u16 },
    Ignored,
}

fn parse_client(data: &[u8], v5: bool) -> FromClient<'_> {
    match data.split_first() {
        Some((&STDIN, rest)) => FromClient::Stdin(rest),
        Some((&CLOSE, [STDIN, ..])) if v5 => FromClient::CloseStdin,
        Some((&RESIZE, rest)) => {
            let size: Value = serde_json::from_slice(rest).unwrap_or_default();
            let dim = |k: &str| {
                size[k]
                    .as_u64()
                    .and_then(|v| u16::try_from(v).ok())
                    .unwrap_or(0)
            };
            FromClient::Resize {
                width: dim("Width"),
                height: dim("Height"),
            }
        }
        _ => FromClient::Ignored,
    }
}

/// Forwards what `from` yields on `channel` until it ends.
async fn pump(mut from: Box<dyn AsyncRead + Send + Unpin>, channel: u8, to: mpsc::Sender<Message>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buf).await {
            // A terminal whose last user exited reads as an error (EIO): the end, too.
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.send(frame(channel, &buf[..n])).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Serves `exec` (or why it could not start) over `socket` until the command ends or the
/// client goes away (then the command is killed).
pub async fn serve(
    socket: WebSocket,
    protocol: &str,
    opts: StreamOptions,
    exec: Result<Box<LocalExec>, String>,
) {
    let v5 = protocol == PROTOCOLS[0];
    let (mut sink, mut incoming) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Message>(16);
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            let closing = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || closing {
                return;
            }
        }
    });
    let first = match (opts.stdout, opts.stderr) {
        (true, _) => STDOUT,
        (false, true) => STDERR,
        _ => ERROR,
    };
    let _ = tx.send(frame(first, &[])).await;
    let outcome = match exec {
        Ok(exec) => run(*exec, &mut incoming, &tx, v5).await,
        Err(why) => Some(Err(why)),
    };
    if let Some(outcome) = outcome {
        let status = outcome_status(&outcome).to_string();
        let _ = tx.send(frame(ERROR, status.as_bytes())).await;
        // A normal closure: kubectl takes any other as the streams' failure.
        let normal = CloseFrame {
            code: close_code::NORMAL,
            reason: Default::default(),
        };
        let _ = tx.send(Message::Close(Some(normal))).await;
    }
    drop(tx);
    let _ = writer.await;
}

/// Runs the command's streams: its exit code, or `None` when the client went away first.
async fn run(
    mut exec: LocalExec,
    incoming: &mut futures::stream::SplitStream<WebSocket>,
    tx: &mpsc::Sender<Message>,
    v5: bool,
) -> Option<Result<i32, String>> {
    let mut outputs = tokio::task::JoinSet::new();
    if let Some(out) = exec.stdout.take() {
        outputs.spawn(pump(out, STDOUT, tx.clone()));
    }
    if let Some(err) = exec.stderr.take() {
        outputs.spawn(pump(err, STDERR, tx.clone()));
    }
    let mut stdin = exec.stdin.take();
    let resize = exec.resize.take();
    let mut child = exec.child;
    let finished = async {
        let status = child.wait().await;
        while outputs.join_next().await.is_some() {}
        status
    };
    tokio::pin!(finished);
    loop {
        tokio::select! {
            status = &mut finished => {
                return Some(match status {
                    Ok(s) => {
                        use std::os::unix::process::ExitStatusExt;
                        Ok(s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)))
                    }
                    Err(e) => Err(e.to_string()),
                });
            }
            m = incoming.next() => {
                let data = match m {
                    Some(Ok(Message::Binary(data))) => data,
                    // The client is gone: nobody reads the outcome; the command is killed when
                    // it is dropped.
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                    Some(Ok(_)) => continue,
                };
                match parse_client(&data, v5) {
                    FromClient::Stdin(bytes) => {
                        if let Some(w) = stdin.as_mut()
                            && w.write_all(bytes).await.is_err()
                        {
                            stdin = None;
                        }
                    }
                    FromClient::CloseStdin => stdin = None,
                    FromClient::Resize { width, height } => {
                        if let Some(r) = &resize {
                            r(width, height);
                        }
                    }
                    FromClient::Ignored => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_zero_exit_is_reported_with_its_code_as_upstream() {
        let s = outcome_status(&Ok(3));
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
        assert_eq!(outcome_status(&Ok(0))["status"], "Success");
        let failed = outcome_status(&Err("no such command".into()));
        assert_eq!(failed["reason"], "InternalError");
        assert_eq!(
            failed["message"],
            "Internal error occurred: error executing command in container: no such command"
        );
    }

    #[test]
    fn client_messages_are_read_by_their_channel() {
        assert_eq!(parse_client(b"\0hi", true), FromClient::Stdin(b"hi"));
        assert_eq!(parse_client(&[255, 0], true), FromClient::CloseStdin);
        assert_eq!(parse_client(&[255, 0], false), FromClient::Ignored);
        assert_eq!(
            parse_client(b"\x04{\"Width\":80,\"Height\":24}", true),
            FromClient::Resize {
                width: 80,
                height: 24
            }
        );
        assert_eq!(parse_client(b"", true), FromClient::Ignored);
    }
}
