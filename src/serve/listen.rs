//! Connections: accepting them up to a cap, the timeouts that close the
//! ones a client has stopped using, and shutdown's drain with a deadline.
//!
//! `axum::serve` has no header-read timeout, cap or drain deadline, so
//! connections are served here with hyper's HTTP/1 builder.

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout, Sleep};

/// What bounds the connections (see [`super::Options`]).
#[derive(Clone, Copy, Debug)]
pub struct Connections {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub drain_timeout: Duration,
}

/// After the drain deadline, how long cancelled requests get to send their
/// 503 before their connections are cut.
const FLUSH_AFTER_CANCEL: Duration = Duration::from_secs(1);

/// Serves `app` until `stop` fires, then drains: no new connections, and
/// the open ones finish their requests. Past the deadline `cancel` is set
/// (requests answer 503 and drop their jobs) and what is left is cut.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Connections,
    mut stop: oneshot::Receiver<()>,
    cancel: watch::Sender<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (closing, _) = watch::channel(false);
    let mut open = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            Some(_) = open.join_next(), if !open.is_empty() => {}
            accepted = accept(&listener, &slots) => {
                if let Some((stream, slot)) = accepted {
                    let conn = connection(stream, slot, app.clone(), limits, closing.subscribe());
                    open.spawn(conn);
                }
            }
        }
    }
    drop(listener);
    closing.send_replace(true);
    if !all_closed_within(&mut open, limits.drain_timeout).await {
        cancel.send_replace(true);
        all_closed_within(&mut open, FLUSH_AFTER_CANCEL).await;
        // Clients that read nothing more are cut off; their requests end with them.
        open.shutdown().await;
    }
}

/// A connection and its slot; past the cap, connections wait in the
/// kernel's backlog until one closes.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> Option<(TcpStream, OwnedSemaphorePermit)> {
    let slot = slots.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, _)) => Some((stream, slot)),
        Err(_) => {
            // Out of file descriptors, or a connection reset before it was
            // taken: wait a moment rather than spin.
            sleep(Duration::from_millis(50)).await;
            None
        }
    }
}

async fn connection(
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    app: Router,
    limits: Connections,
    mut closing: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(WriteStallTimeout::new(stream, limits.idle_timeout));
    let mut builder = http1::Builder::new();
    // hyper runs this timer whenever it waits for a request's head, so it
    // also closes keep-alive connections left idle.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let conn = builder.serve_connection(io, TowerToHyperService::new(app));
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = closing.wait_for(|&c| c) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// Waits for every connection task to end; false if `limit` passed first.
async fn all_closed_within(open: &mut JoinSet<()>, limit: Duration) -> bool {
    timeout(limit, async { while open.join_next().await.is_some() {} })
        .await
        .is_ok()
}

/// A stream whose writes fail once they have waited `limit` for the client
/// to read: a client that stops reading a response loses its connection.
pub struct WriteStallTimeout<S> {
    inner: S,
    limit: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteStallTimeout<S> {
    pub fn new(inner: S, limit: Duration) -> Self {
        WriteStallTimeout {
            inner,
            limit,
            stalled: None,
        }
    }

    /// Passes on a finished write; for a waiting one, fails once the wait
    /// has lasted `limit`.
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let limit = self.limit;
        let stalled = self.stalled.get_or_insert_with(|| Box::pin(sleep(limit)));
        ready!(stalled.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the client read nothing for {limit:?}"),
        )))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteStallTimeout<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteStallTimeout<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes into a socket nobody reads fail after the limit, not never.
    #[tokio::test]
    async fn a_write_nobody_reads_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _reader = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (near, _) = listener.accept().await.unwrap();
        let mut stream = WriteStallTimeout::new(near, Duration::from_millis(200));
        let started = std::time::Instant::now();
        let chunk = [0u8; 1 << 16];
        let err = loop {
            let written = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_write(cx, &chunk));
            if let Err(e) = written.await {
                break e;
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
