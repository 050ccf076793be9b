//! Binding listeners and serving routers until shutdown.
//!
//! `App::build` binds (so a port conflict fails start-up, and tests can bind port 0 and read
//! the real port back); `App::run` serves with [`serve`] until the token is cancelled.

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// Binds `addr`; the error names the address.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then finishes open requests.
/// Handlers can read the peer's address with `ConnectInfo<SocketAddr>` (the console trusts an
/// authenticating proxy's headers only from configured addresses).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}
