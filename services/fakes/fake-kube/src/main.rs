//! `fake-kube`: the fake Kubernetes API server for the local dev stack.
//!
//! Settings (environment): `FAKE_KUBE_LISTEN` (default `127.0.0.1:8091`),
//! `FAKE_KUBE_KUBECONFIG` (where to write a kubeconfig pointing at it; default
//! `.dev/fake-kube.kubeconfig`), `FAKE_KUBE_COMPLETE_JOBS_AFTER` (seconds after which a Job
//! succeeds; default 2, `0` leaves Jobs running). Stops on SIGINT/SIGTERM.

use std::time::Duration;

use fake_kube::{FakeKube, FakeKubeOptions};

const HELP: &str = "fake-kube: an in-memory Kubernetes API server for local development

Environment:
  FAKE_KUBE_LISTEN                 address to serve on            [default: 127.0.0.1:8091]
  FAKE_KUBE_KUBECONFIG             kubeconfig file to write       [default: .dev/fake-kube.kubeconfig]
  FAKE_KUBE_COMPLETE_JOBS_AFTER    seconds until a Job succeeds   [default: 2; 0 = never]
";

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--help" || a == "-h") {
        print!("{HELP}");
        return Ok(());
    }
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let listen = var("FAKE_KUBE_LISTEN", "127.0.0.1:8091");
    let kubeconfig = var("FAKE_KUBE_KUBECONFIG", ".dev/fake-kube.kubeconfig");
    let complete_after: u64 = var("FAKE_KUBE_COMPLETE_JOBS_AFTER", "2")
        .parse()
        .map_err(|e| anyhow::anyhow!("FAKE_KUBE_COMPLETE_JOBS_AFTER must be whole seconds: {e}"))?;

    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let options = FakeKubeOptions {
        complete_jobs_after: (complete_after > 0).then(|| Duration::from_secs(complete_after)),
        ..FakeKubeOptions::default()
    };
    let fake = FakeKube::serve(listener, options);
    if let Some(dir) = std::path::Path::new(&kubeconfig).parent() {
        std::fs::create_dir_all(dir)?;
    }
    fake.write_kubeconfig(std::path::Path::new(&kubeconfig))?;
    println!(
        "fake-kube serving {} (kubeconfig: {kubeconfig})",
        fake.url()
    );

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    fake.shutdown();
    Ok(())
}
