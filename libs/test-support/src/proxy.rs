//! A TCP fault proxy: put it between one component and the broker to simulate an outage for
//! that component alone, without `rabbitmqctl stop_app` disturbing every other test.
//!
//! * [`FaultProxy::cut`] closes every open connection and closes each new one at once, as a
//!   stopped broker would;
//! * [`FaultProxy::stall`] keeps connections open but stops forwarding bytes, as a hung or
//!   partitioned broker would (publishes get no confirm; only a deadline notices);
//! * [`FaultProxy::restore`] forwards again (connections closed by a cut stay closed; the
//!   component under test reconnects).
//!
//! ```no_run
//! # async fn demo() {
//! let proxy = steadfast_test_support::FaultProxy::to_broker().await;
//! let url = proxy.amqp_url(); // give this to the component under test
//! proxy.cut();
//! // ... the component sees the broker go away ...
//! proxy.restore();
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with traffic right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    Stall,
    Cut,
}

/// The mode, and how many cuts have happened: a connection accepted before the latest cut is
/// closed even if the proxy was restored before the connection noticed the cut.
#[derive(Debug, Clone, Copy)]
struct State {
    mode: Mode,
    cuts: u64,
}

/// A loopback TCP proxy to `upstream` whose traffic a test can cut, stall and restore.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<watch::Sender<State>>,
    refused: Arc<AtomicU64>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy on `127.0.0.1:<ephemeral>` forwarding to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fault proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (state, _) = watch::channel(State {
            mode: Mode::Forward,
            cuts: 0,
        });
        let state = Arc::new(state);
        let refused = Arc::new(AtomicU64::new(0));
        let accept = tokio::spawn(accept_loop(
            listener,
            upstream.to_owned(),
            state.clone(),
            refused.clone(),
        ));
        Self {
            addr,
            state,
            refused,
            accept,
        }
    }

    /// A proxy to the broker of `AMQP_URL` (default `127.0.0.1:5672`).
    pub async fn to_broker() -> Self {
        let url = url::Url::parse(&crate::amqp_url()).expect("valid AMQP_URL");
        let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
        let port = url.port().unwrap_or(5672);
        Self::start(&format!("{host}:{port}")).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections were turned away while cut: a test can wait until the component
    /// has tried (and failed) to reach its upstream, instead of sleeping.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    /// `AMQP_URL` with the host and port replaced by the proxy's, for the component under test.
    pub fn amqp_url(&self) -> String {
        let mut url = url::Url::parse(&crate::amqp_url()).expect("valid AMQP_URL");
        url.set_host(Some("127.0.0.1")).expect("set host");
        url.set_port(Some(self.addr.port())).expect("set port");
        url.to_string()
    }

    /// Closes every connection and closes new ones as soon as they are accepted.
    pub fn cut(&self) {
        self.state.send_modify(|s| {
            s.mode = Mode::Cut;
            s.cuts += 1;
        });
    }

    /// Keeps connections open but forwards nothing, in either direction.
    pub fn stall(&self) {
        self.state.send_modify(|s| s.mode = Mode::Stall);
    }

    /// Forwards traffic again.
    pub fn restore(&self) {
        self.state.send_modify(|s| s.mode = Mode::Forward);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Ends every connection task too: they watch the state, whose sender goes away here.
        self.accept.abort();
        self.state.send_modify(|s| {
            s.mode = Mode::Cut;
            s.cuts += 1;
        });
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: String,
    state: Arc<watch::Sender<State>>,
    refused: Arc<AtomicU64>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let current = *state.borrow();
        if current.mode == Mode::Cut {
            drop(client);
            refused.fetch_add(1, Ordering::SeqCst);
            continue;
        }
        let rx = state.subscribe();
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            // Either direction ending (EOF, error, cut) drops all four halves: both sockets close.
            tokio::select! {
                () = pump(client_read, server_write, rx.clone(), current.cuts) => {}
                () = pump(server_read, client_write, rx, current.cuts) => {}
            }
        });
    }
}

/// Copies bytes from `from` to `to` while the proxy forwards; holds them while it stalls;
/// returns when either side closes or a cut happens after this connection was accepted.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut state: watch::Receiver<State>,
    accepted_after_cuts: u64,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buf) => read,
            changed = state.changed() => {
                if changed.is_err() || state.borrow().cuts != accepted_after_cuts {
                    return;
                }
                continue;
            }
        };
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Hold the bytes while stalled; drop the connection if a cut happens meanwhile.
        loop {
            let current = *state.borrow_and_update();
            if current.cuts != accepted_after_cuts {
                return;
            }
            if current.mode == Mode::Forward {
                break;
            }
            if state.changed().await.is_err() {
                return;
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
