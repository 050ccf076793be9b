//! A deployment's processes in the stack (`run --target`): never started by the suite, killed
//! by their command, waited for until ready again.

use std::time::Duration;

use steadfast_chaos::stack::{Launch, ProcSpec, Readiness, Role, Stack, StackError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTP server that answers every request `200 OK` (a ready service); its base URL.
async fn ready_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 1024];
                let _ = socket.read(&mut buffer).await;
                let _ = socket
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    format!("http://{address}")
}

fn deployed(name: &str, url: &str, kill: Option<String>) -> ProcSpec {
    ProcSpec {
        name: name.into(),
        role: Role::Service,
        launch: Launch::Deployed { kill },
        ready: Readiness::Ok200(format!("{url}/readyz")),
        http: url.into(),
    }
}

#[tokio::test]
async fn a_deployed_process_is_killed_by_its_command_and_waited_for() {
    let url = ready_server().await;
    let dir = std::env::temp_dir().join(format!("steadfast-chaos-deployed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let marker = dir.join("killed");
    let _ = std::fs::remove_file(&marker);
    let mut stack = Stack::new(Duration::from_secs(10));
    stack
        .start_group(vec![
            deployed(
                "pipeline-herder",
                &url,
                Some(format!("echo pipeline-herder > '{}'", marker.display())),
            ),
            deployed("sentinel", &url, None),
            deployed(
                "adapter",
                &url,
                Some("echo 'no such pod' >&2; exit 3".into()),
            ),
        ])
        .await
        .unwrap();
    assert!(stack.not_ready().await.is_empty());

    stack.kill("pipeline-herder").await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "pipeline-herder\n"
    );
    stack.restart("pipeline-herder").await.unwrap();

    // No command: said so; a failing command: its status and what it printed.
    let error = stack.kill("sentinel").await.unwrap_err();
    assert!(matches!(error, StackError::NoKillCommand { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        "sentinel has no kill command in the deployment file"
    );
    let error = stack.kill("adapter").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "the kill command of adapter failed: exit status: 3: no such pod"
    );
    // Nothing of a deployment is stopped at the end, nor counted as an unexpected exit.
    assert!(stack.reap_unexpected().await.is_empty());
    stack.shutdown().await;
    assert!(stack.not_ready().await.is_empty());
}

#[tokio::test]
async fn a_deployed_process_that_never_gets_ready_is_reported() {
    // A port nobody listens on.
    let port = steadfast_chaos::stack::free_port().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let mut stack = Stack::new(Duration::from_millis(600));
    let error = stack
        .start_group(vec![deployed("sentinel", &url, None)])
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("sentinel was not ready within 600ms"),
        "{text}"
    );
    assert!(
        text.contains("a deployment's process: see its platform's logs"),
        "{text}"
    );
}
