//! The status/control Unix socket, served by tokio.
//!
//! Owns binding (refusing when another daemon answers on the path, replacing a stale
//! socket file, mode 0660), the per-connection limits (8 clients, 64 KiB lines, 30 s idle)
//! and answering each line from the latest [`Status`] in a `watch` channel. Control
//! requests are handed to the frame thread through a channel and answered with what it
//! replies; this module never touches frames or engines itself.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, oneshot, watch};

use super::{Control, Reply, Request, Status};

/// Most simultaneous clients: a status socket is for a few tools, not a crowd.
pub const MAX_CLIENTS: usize = 8;
/// Longest request line; a real request is under 100 bytes.
pub const MAX_LINE: usize = 64 * 1024;
/// Clients silent this long are dropped.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Error)]
pub enum SocketError {
    #[error(
        "another stylerd is already running on socket {0}; stop it or set control.socket to another path"
    )]
    InUse(PathBuf),
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    #[error("cannot create socket {path}: {source}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A control request on its way to the frame thread, with where to send the answer.
pub struct ControlRequest {
    pub control: Control,
    pub reply: oneshot::Sender<Reply>,
}

/// One answer line, newline-terminated.
fn line_of(reply: &Reply) -> String {
    let mut text = serde_json::to_string(reply)
        .unwrap_or_else(|e| format!("{{\"error\":\"cannot encode the answer: {e}\"}}"));
    text.push('\n');
    text
}

/// Binds the socket, replacing a stale one but never a live daemon's.
pub fn bind(path: &Path) -> Result<UnixListener, SocketError> {
    let bind_err = |source| SocketError::Bind {
        path: path.into(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(SocketError::NotASocket(path.into()));
        }
        Ok(_) => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(SocketError::InUse(path.into()));
            }
            std::fs::remove_file(path).map_err(bind_err)?;
        }
        Err(_) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(bind_err)?;
            }
        }
    }
    let listener = UnixListener::bind(path).map_err(bind_err)?;
    // Owner and group (the `video`/`stylerd` group under systemd) only; never world-writable.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(bind_err)?;
    Ok(listener)
}

/// Serves clients until `shutdown` turns true; removes the socket file on the way out.
pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    status: watch::Receiver<Status>,
    control: Option<crossbeam_channel::Sender<ControlRequest>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        tokio::select! {
            _ = shutdown.changed() => if *shutdown.borrow() { break },
            accepted = listener.accept() => {
                let Ok((mut stream, _)) = accepted else { continue };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    let line = line_of(&Reply::error(format!("too many clients (limit {MAX_CLIENTS})")));
                    let _ = stream.write_all(line.as_bytes()).await;
                    continue;
                };
                let (status, control) = (status.clone(), control.clone());
                tokio::spawn(async move {
                    client(stream, status, control).await;
                    drop(permit);
                });
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

async fn client(
    stream: UnixStream,
    status: watch::Receiver<Status>,
    control: Option<crossbeam_channel::Sender<ControlRequest>>,
) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        let mut limited = (&mut reader).take(MAX_LINE as u64 + 1);
        let n = match tokio::time::timeout(IDLE_TIMEOUT, limited.read_until(b'\n', &mut line)).await
        {
            Ok(Ok(n)) => n,
            // Idle too long, or the peer went away.
            _ => return,
        };
        if n == 0 {
            return;
        }
        let content = line.len() - usize::from(line.last() == Some(&b'\n'));
        if content > MAX_LINE {
            let e = Reply::error(format!(
                "request line longer than {MAX_LINE} bytes; closing"
            ));
            let _ = write.write_all(line_of(&e).as_bytes()).await;
            return;
        }
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        let answer = answer(trimmed, &status, control.as_ref()).await;
        if write.write_all(line_of(&answer).as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn answer(
    line: &[u8],
    status: &watch::Receiver<Status>,
    control: Option<&crossbeam_channel::Sender<ControlRequest>>,
) -> Reply {
    let command = match Request::parse(line).and_then(Request::into_control) {
        Ok(Some(c)) => c,
        Ok(None) => return Reply::Status(Box::new(status.borrow().clone())),
        Err(e) => return Reply::error(e),
    };
    let Some(control) = control else {
        return Reply::error(
            "this socket is read-only; set control.allow-control = true to allow control commands",
        );
    };
    send(control, command).await
}

/// Hands a checked command to the frame thread and waits (up to 10 s) for its answer; shared
/// by the socket and the HTTP API. Failures to deliver become `{"error": ...}` replies.
pub async fn send(control: &crossbeam_channel::Sender<ControlRequest>, command: Control) -> Reply {
    deliver(control, command).await.unwrap_or_else(Reply::error)
}

/// [`send`], telling a command the frame thread answered (`Ok`, perhaps with an error the
/// request caused) from one it never answered (`Err`: busy, stopping, timed out).
pub async fn deliver(
    control: &crossbeam_channel::Sender<ControlRequest>,
    command: Control,
) -> Result<Reply, &'static str> {
    let (reply, answer) = oneshot::channel();
    let request = ControlRequest {
        control: command,
        reply,
    };
    // A bounded channel: a full one means the frame thread is far behind.
    match control.try_send(request) {
        Ok(()) => {}
        Err(crossbeam_channel::TrySendError::Full(_)) => {
            return Err("the frame thread is busy with other commands; try again");
        }
        Err(crossbeam_channel::TrySendError::Disconnected(_)) => {
            return Err("the daemon is stopping");
        }
    }
    match tokio::time::timeout(Duration::from_secs(10), answer).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(_)) => Err("the daemon is stopping"),
        Err(_) => Err("the frame thread did not answer within 10 s"),
    }
}
