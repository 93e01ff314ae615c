//! Serving requests on threads of their own: each serving thread runs a single-threaded
//! runtime and serves the connections it is handed, start to finish, while writes are handed
//! on to the runtime `serve` was called on, which also runs the workers.
//!
//! On a work-stealing runtime a request's wake-ups and the memory it frees often cross to the
//! other worker thread, and waking a parked worker is a system call; with a runtime per core
//! a connection stays on one thread. Reads, which on SQLite run on the calling thread (see the
//! store's `reads`), gain from that. Writes do not: each step of a write transaction goes
//! through sqlx's own SQLite thread, whose answer wakes the writing task, and on a serving
//! thread that task then waited behind every request already queued there, so the single
//! writer connection sat idle between steps (serving writes on those threads too halved
//! member creates). So `keyed` runs a write's handler on the shared runtime, where it waits
//! for nothing else.
//!
//! One task on the shared runtime accepts and hands connections out in turn, so that each
//! thread gets its share: with every thread accepting for itself, whichever was idle took the
//! connections, and the split (and the throughput) varied by a third from run to run.
//!
//! Only where nothing in a request depends on the runtime it was created on: sqlx's
//! PostgreSQL connections are sockets registered with one runtime's reactor, so with
//! PostgreSQL everything stays on the caller's runtime.

use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

type Connection = (std::net::TcpStream, SocketAddr);

/// The client's address, in a request's extensions as `ConnectInfo<PeerAddr>`: what failed
/// logins and sign-ups are counted against.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, TcpListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, Handoff>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, Handoff>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

/// Serves `app` on `listener` until `stopped` turns true, then finishes the requests in
/// flight: on the caller's runtime when `threads` is 0, else on that many serving threads.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    threads: usize,
    stopped: watch::Receiver<bool>,
) -> io::Result<()> {
    if threads == 0 {
        return axum::serve(
            listener,
            app.into_make_service_with_connect_info::<PeerAddr>(),
        )
        .with_graceful_shutdown(crate::until(stopped))
        .await;
    }
    let local = listener.local_addr()?;
    let mut queues = Vec::with_capacity(threads);
    let mut serving = Vec::with_capacity(threads);
    for n in 1..=threads {
        let (queue, incoming) = mpsc::unbounded_channel();
        let incoming = Handoff { incoming, local };
        // On an error, the threads already started serve nothing and stop with the rest.
        serving.push(start_thread(n, incoming, app.clone(), stopped.clone())?);
        queues.push(queue);
    }
    tokio::spawn(hand_out(listener, queues, stopped));
    let mut outcome = Ok(());
    for (thread, finished) in serving {
        let served = finished
            .await
            .unwrap_or_else(|_| Err(io::Error::other("a serving thread stopped early")));
        if outcome.is_ok() {
            outcome = served;
        }
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
    outcome
}

/// Connections handed to one runtime, as axum's listener.
struct Handoff {
    incoming: mpsc::UnboundedReceiver<Connection>,
    local: SocketAddr,
}

impl axum::serve::Listener for Handoff {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let Some((stream, peer)) = self.incoming.recv().await else {
                // The acceptor stopped: so has serving, which stops asking.
                return std::future::pending().await;
            };
            match TcpStream::from_std(stream) {
                Ok(stream) => return (stream, peer),
                Err(err) => tracing::warn!(error = %err, "could not take over a connection"),
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

fn start_thread(
    n: usize,
    incoming: Handoff,
    app: Router,
    stopped: watch::Receiver<bool>,
) -> io::Result<(JoinHandle<()>, oneshot::Receiver<io::Result<()>>)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (done, finished) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name(format!("memberd-serve-{n}"))
        .spawn(move || {
            let served = runtime.block_on(async move {
                axum::serve(
                    incoming,
                    app.into_make_service_with_connect_info::<PeerAddr>(),
                )
                .with_graceful_shutdown(crate::until(stopped))
                .await
            });
            let _ = done.send(served);
        })?;
    Ok((thread, finished))
}

/// Accepts connections and hands them to the serving runtimes in turn.
async fn hand_out(
    listener: TcpListener,
    queues: Vec<mpsc::UnboundedSender<Connection>>,
    stopped: watch::Receiver<bool>,
) {
    let mut stop = pin!(crate::until(stopped));
    let mut next = 0;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => return,
        };
        let (stream, peer) = match accepted {
            Ok(connection) => connection,
            Err(err) if is_about_one_connection(&err) => continue,
            Err(err) => {
                // Out of file descriptors, say: wait rather than spin.
                tracing::error!(error = %err, "could not accept a connection");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        match stream.into_std() {
            Ok(stream) => {
                if hand_to_next(&queues, &mut next, (stream, peer)).is_err() {
                    tracing::error!("every serving thread has stopped: no longer accepting");
                    return;
                }
            }
            Err(err) => tracing::warn!(error = %err, "could not hand a connection over"),
        }
    }
}

/// Sends `item` to the queue at `next` or, if that one's thread has stopped (a panic outside
/// any request), to the next that still takes it; gives it back when none does.
fn hand_to_next<T>(
    queues: &[mpsc::UnboundedSender<T>],
    next: &mut usize,
    item: T,
) -> Result<(), T> {
    let mut item = item;
    for _ in 0..queues.len() {
        let queue = &queues[*next % queues.len()];
        *next = (*next + 1) % queues.len();
        match queue.send(item) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::SendError(back)) => item = back,
        }
    }
    Err(item)
}

fn is_about_one_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_skip_a_serving_thread_that_has_stopped() {
        let (first, mut first_rx) = mpsc::unbounded_channel();
        let (stopped, stopped_rx) = mpsc::unbounded_channel();
        let (third, mut third_rx) = mpsc::unbounded_channel();
        drop(stopped_rx);
        let queues = [first, stopped, third];
        let mut next = 0;
        for n in 1..=4 {
            hand_to_next(&queues, &mut next, n).unwrap();
        }
        let drain = |rx: &mut mpsc::UnboundedReceiver<i32>| {
            std::iter::from_fn(|| rx.try_recv().ok()).collect::<Vec<_>>()
        };
        assert_eq!(drain(&mut first_rx), [1, 3]);
        assert_eq!(drain(&mut third_rx), [2, 4]);

        drop((first_rx, third_rx));
        assert_eq!(hand_to_next(&queues, &mut next, 5), Err(5));
    }
}
