//! The local executor: each recipe is a child process, for machines without a cluster.
//!
//! A run gets a directory `<work dir>/<run id>/` holding `data.json` and one `<recipe>.log`
//! with the recipe's stdout and stderr. `entrypoint` is the program (resolved against the
//! recipe file's directory when it is a relative path, else on `PATH`), never a shell line.
//! Each recipe is a process-group leader so a timeout or a cancellation kills what it spawned
//! too. The exit is reported at once: a non-zero status is a failure with the end of its log
//! as the reason.
//!
//! The processes are not killed when the reconciler stops. The handle `pid:<pid>@<host>` lets
//! the reconciler that resumes the run on the same host (a restart, or the other replica of a
//! failover) watch the process through `/proc` until it ends — it is no longer anyone's child,
//! so its exit status is unknown ([`Exit::Vanished`]) — after checking by its environment that
//! the pid still belongs to that recipe. On another host it cannot be seen at all
//! ([`Attached::Unwatchable`]): only its result or the run's deadline tell.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Attached, ExecError, Exit, ExitEvent, ExitSender, Launch, RecipeClock, human};
use crate::recipes::Recipe;

/// How much of a failed recipe's output goes into its failure reason.
const LOG_TAIL_BYTES: u64 = 1024;
/// How often a process adopted after a failover is checked for having ended.
const ADOPTED_POLL: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct LocalExecutor {
    work_dir: PathBuf,
    runs: Arc<Mutex<HashMap<Uuid, CancellationToken>>>,
    /// `PATH` for recipes: ours, with the directory of `steadfast-recipe` in front.
    path: Option<std::ffi::OsString>,
    /// This host's name, in each handle: a pid means something only on its own host.
    host: String,
}

impl LocalExecutor {
    pub fn new(work_dir: PathBuf) -> Self {
        Self {
            work_dir,
            runs: Arc::new(Mutex::new(HashMap::new())),
            path: recipe_path(),
            host: host_name(),
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
            Ended {
                recipe: recipe.name.clone(),
                attempt: launch.attempt,
            },
            launch.timeout,
            self.token(launch.run_id),
            log_path,
            exits,
        ));
        Ok(format!("pid:{pid}@{}", self.host))
    }

    /// A process started before a restart is not our child: it cannot be waited for. On this
    /// host it is watched through `/proc` until it is gone; elsewhere it cannot be seen.
    pub fn attach(
        &self,
        run: Uuid,
        recipe: &Recipe,
        handle: Option<&str>,
        attempt: u32,
        clock: RecipeClock,
        exits: ExitSender,
    ) -> Attached {
        let ended = Ended {
            recipe: recipe.name.clone(),
            attempt,
        };
        let Some((pid, host)) = handle.and_then(parse_handle) else {
            return Attached::Unwatchable(
                "the reconciler that launched it stopped before recording its process".into(),
            );
        };
        if host != self.host {
            return Attached::Unwatchable(format!(
                "it was launched on {host} by a reconciler that stopped"
            ));
        }
        if is_recipe_process(pid, run, &recipe.name, attempt) {
            tracing::info!(run_id = %run, recipe = %recipe.name, pid, "watching a local recipe started before the restart until it ends");
            tokio::spawn(watch_adopted(
                pid,
                run,
                ended,
                clock,
                self.token(run),
                exits,
            ));
        } else {
            tracing::info!(run_id = %run, recipe = %recipe.name, pid, "a local recipe started before the restart has ended meanwhile");
            ended.send(
                &exits,
                Exit::Vanished("it ended while no reconciler watched it".into()),
            );
        }
        Attached::Watching
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

/// Which launch of which recipe an exit is about.
struct Ended {
    recipe: String,
    attempt: u32,
}

impl Ended {
    fn send(self, exits: &ExitSender, exit: Exit) {
        let _ = exits.send(ExitEvent {
            recipe: self.recipe,
            attempt: self.attempt,
            exit,
        });
    }
}

/// The name of this host, as the kernel knows it (a pod's name in Kubernetes).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "an unknown host".into())
}

/// `pid:<pid>@<host>` → (pid, host); handles of older versions (`pid:<pid>`) name no host.
fn parse_handle(handle: &str) -> Option<(u32, &str)> {
    let (pid, host) = handle.strip_prefix("pid:")?.split_once('@')?;
    Some((pid.parse().ok()?, host))
}

/// Whether `pid` is alive and still that recipe's process (not a reused pid): its environment
/// names the run, the recipe and the attempt. A zombie's environment reads empty: gone.
fn is_recipe_process(pid: u32, run: Uuid, recipe: &str, attempt: u32) -> bool {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let has = |entry: &str| environ.split(|b| *b == 0).any(|e| e == entry.as_bytes());
    has(&format!("STEADFAST_RUN_ID={run}"))
        && has(&format!("STEADFAST_RECIPE={recipe}"))
        && has(&format!("STEADFAST_RECIPE_ATTEMPT={attempt}"))
}

/// Watches a process adopted after a restart until it is gone, or kills it when its own
/// timeout passes (counted from its launch, not from the adoption) or the run is cancelled.
async fn watch_adopted(
    pid: u32,
    run: Uuid,
    ended: Ended,
    clock: RecipeClock,
    cancelled: CancellationToken,
    exits: ExitSender,
) {
    let mut poll = tokio::time::interval(ADOPTED_POLL);
    let deadline = tokio::time::sleep(clock.left());
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = cancelled.cancelled() => {
                kill_process_group(pid).await;
                return;
            }
            () = &mut deadline => {
                kill_process_group(pid).await;
                let why = format!("killed after its {} timeout", human(clock.timeout));
                ended.send(&exits, Exit::TimedOut(why));
                return;
            }
            _ = poll.tick() => {
                if !is_recipe_process(pid, run, &ended.recipe, ended.attempt) {
                    ended.send(&exits, Exit::Vanished("it ended while watched from outside (exit status unknown)".into()));
                    return;
                }
            }
        }
    }
}

async fn watch(
    mut child: Child,
    ended: Ended,
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
    ended.send(&exits, exit);
}

/// Kills the recipe's whole process group (it may have spawned helpers), then the recipe.
async fn kill_group(child: &mut Child) {
    if let Some(pid) = child.id() {
        kill_process_group(pid).await;
    }
    let _ = child.kill().await;
}

/// `kill -- -<pgid>` signals the group without unsafe code; where no `kill` binary exists, a
/// child is still stopped by [`kill_group`]'s direct kill.
async fn kill_process_group(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
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
