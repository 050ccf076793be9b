//! The local executor: each recipe is a child process, for machines without a cluster.
//!
//! A run gets a directory `<work dir>/<run id>/` holding `data.json` and one `<recipe>.log`
//! with the recipe's stdout and stderr. `entrypoint` is the program (resolved against the
//! recipe file's directory when it is a relative path, else on `PATH`), never a shell line.
//! Each recipe is a process-group leader so a timeout or a cancellation kills what it spawned
//! too. The exit is reported at once: a non-zero status is a failure with the end of its log
//! as the reason.
//!
//! The processes are not killed when the reconciler stops: a restarted reconciler finds their
//! results in Redis (they cannot be re-attached, so a process that dies silently meanwhile is
//! only noticed at the run's deadline).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{ExecError, Exit, ExitEvent, ExitSender, Launch, human};
use crate::recipes::Recipe;

/// How much of a failed recipe's output goes into its failure reason.
const LOG_TAIL_BYTES: u64 = 1024;

#[derive(Clone)]
pub struct LocalExecutor {
    work_dir: PathBuf,
    runs: Arc<Mutex<HashMap<Uuid, CancellationToken>>>,
    /// `PATH` for recipes: ours, with the directory of `steadfast-recipe` in front.
    path: Option<std::ffi::OsString>,
}

impl LocalExecutor {
    pub fn new(work_dir: PathBuf) -> Self {
        Self {
            work_dir,
            runs: Arc::new(Mutex::new(HashMap::new())),
            path: recipe_path(),
        }
    }

    fn run_dir(&self, run: Uuid) -> PathBuf {
        self.work_dir.join(run.to_string())
    }

    fn token(&self, run: Uuid) -> CancellationToken {
        self.runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(run)
            .or_default()
            .clone()
    }

    pub async fn launch(
        &self,
        launch: &Launch<'_>,
        exits: ExitSender,
    ) -> Result<String, ExecError> {
        let recipe = launch.recipe;
        let dir = self.run_dir(launch.run_id);
        let data_file = dir.join("data.json");
        write_data_file(&dir, &data_file, launch.data).await?;
        let data_path = data_file.to_string_lossy().into_owned();

        let command = recipe.command();
        let (program, leading) = command.split_first().ok_or(ExecError::EmptyEntrypoint)?;
        let program = resolve(program, recipe.base_dir.as_deref());
        let log_path = dir.join(format!("{}.log", recipe.name));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|source| ExecError::Io {
                action: "open",
                path: log_path.clone(),
                source,
            })?;
        let log_err = log.try_clone().map_err(|source| ExecError::Io {
            action: "open",
            path: log_path.clone(),
            source,
        })?;

        let mut child = Command::new(&program);
        child
            .args(leading)
            .args(launch.arguments(&data_path))
            .envs(launch.environment(&data_path))
            .envs(self.path.iter().map(|p| ("PATH", p)))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .process_group(0);
        let child = child.spawn().map_err(|source| ExecError::Io {
            action: "start",
            path: program.clone(),
            source,
        })?;
        let pid = child.id().unwrap_or_default();
        tokio::spawn(watch(
            child,
            recipe.name.clone(),
            launch.timeout,
            self.token(launch.run_id),
            log_path,
            exits,
        ));
        Ok(format!("pid:{pid}"))
    }

    /// A process started before a restart is not our child: it cannot be waited for, only
    /// heard from (its result) or timed out (the run's deadline).
    pub fn attach(&self, run: Uuid, recipe: &Recipe, handle: Option<&str>) {
        tracing::info!(
            run_id = %run,
            recipe = %recipe.name,
            handle = handle.unwrap_or("unknown"),
            "resumed a local recipe started before the restart; waiting for its result"
        );
    }

    pub fn cancel(&self, run: Uuid) {
        if let Some(token) = self
            .runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&run)
        {
            token.cancel();
        }
    }

    pub async fn cleanup(&self, run: Uuid) {
        if let Some(token) = self
            .runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&run)
        {
            token.cancel();
        }
        let dir = self.run_dir(run);
        if let Err(error) = tokio::fs::remove_dir_all(&dir).await
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(run_id = %run, %error, dir = %dir.display(), "cannot remove the run directory");
        }
    }

    pub async fn collect_garbage(&self, running: &HashSet<Uuid>) {
        let Ok(mut entries) = tokio::fs::read_dir(&self.work_dir).await else {
            return;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let Some(run) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<Uuid>().ok())
            else {
                continue;
            };
            if !running.contains(&run) {
                let _ = tokio::fs::remove_dir_all(entry.path()).await;
            }
        }
    }
}

/// `steadfast-recipe` ships beside `alert-reconciler`: recipes find it on their `PATH` however
/// the reconciler was started (an installed image, `target/debug` in the dev stack, or a test
/// binary in `target/debug/deps`).
fn recipe_path() -> Option<std::ffi::OsString> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe
        .ancestors()
        .skip(1)
        .take(2)
        .find(|dir| dir.join("steadfast-recipe").is_file())?
        .to_owned();
    let inherited = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(dir).chain(std::env::split_paths(&inherited))).ok()
}

/// Writes data.json once per run (all recipes of a run read the same file).
async fn write_data_file(
    dir: &Path,
    path: &Path,
    data: &serde_json::Value,
) -> Result<(), ExecError> {
    if tokio::fs::try_exists(path).await.unwrap_or(false) {
        return Ok(());
    }
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|source| ExecError::Io {
            action: "create",
            path: dir.to_owned(),
            source,
        })?;
    let bytes = serde_json::to_vec_pretty(data).expect("JSON values serialise");
    // Write then rename, so a recipe never reads half a file.
    let partial = dir.join(format!(".data.json.{}", Uuid::new_v4().simple()));
    tokio::fs::write(&partial, bytes)
        .await
        .map_err(|source| ExecError::Io {
            action: "write",
            path: partial.clone(),
            source,
        })?;
    tokio::fs::rename(&partial, path)
        .await
        .map_err(|source| ExecError::Io {
            action: "write",
            path: path.to_owned(),
            source,
        })
}

fn resolve(program: &str, base_dir: Option<&Path>) -> PathBuf {
    let path = Path::new(program);
    match base_dir {
        Some(base) if path.is_relative() && program.contains('/') => base.join(path),
        _ => path.to_owned(),
    }
}

async fn watch(
    mut child: Child,
    recipe: String,
    timeout: Duration,
    cancelled: CancellationToken,
    log: PathBuf,
    exits: ExitSender,
) {
    let exit = tokio::select! {
        status = child.wait() => match status {
            Ok(status) if status.success() => Exit::Succeeded,
            Ok(status) => {
                let how = match status.code() {
                    Some(code) => format!("exited with status {code}"),
                    None => "was killed by a signal".to_owned(),
                };
                Exit::Failed(with_tail(how, &log).await)
            }
            Err(error) => Exit::Failed(format!("could not be waited for: {error}")),
        },
        () = tokio::time::sleep(timeout) => {
            kill_group(&mut child).await;
            Exit::TimedOut(with_tail(format!("killed after its {} timeout", human(timeout)), &log).await)
        }
        () = cancelled.cancelled() => {
            kill_group(&mut child).await;
            return;
        }
    };
    let _ = exits.send(ExitEvent { recipe, exit });
}

/// Kills the recipe's whole process group (it may have spawned helpers), then the recipe.
async fn kill_group(child: &mut Child) {
    if let Some(pid) = child.id() {
        // `kill -- -<pgid>` signals the group without unsafe code; where no `kill` binary
        // exists the direct kill below still stops the recipe itself.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
    }
    let _ = child.kill().await;
}

async fn with_tail(reason: String, log: &Path) -> String {
    match tail(log).await {
        Some(tail) if !tail.trim().is_empty() => format!("{reason}: {}", tail.trim()),
        _ => reason,
    }
}

async fn tail(path: &Path) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = tokio::fs::File::open(path).await.ok()?;
    let length = file.metadata().await.ok()?.len();
    let start = length.saturating_sub(LOG_TAIL_BYTES);
    file.seek(std::io::SeekFrom::Start(start)).await.ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).await.ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}
