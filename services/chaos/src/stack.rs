//! The stack as real processes: each service binary is a child of its own (in its own process
//! group, so `kill -9` is real and the terminal's Ctrl-C reaches only the suite, which then
//! stops them in order), with its own loopback ports, its log in `<run dir>/<name>.log`, and a
//! readiness URL polled until it answers or a deadline passes. Against a deployment
//! (`--target`), the stack holds the deployment's processes instead: it starts none, kills
//! them with the command the deployment file gives, and waits for their orchestrator to bring
//! them back.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::time::Instant;

/// How often readiness is polled.
const READY_POLL: Duration = Duration::from_millis(200);
/// How long a process may take to stop after SIGTERM before it gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Log lines shown when a process is not ready or exited.
const TAIL_LINES: usize = 25;

/// Why a process could not be started, made ready or stopped.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("cannot find a free loopback port: {0}")]
    Port(#[source] std::io::Error),
    #[error("cannot open the log {}: {source}", path.display())]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start {name} ({}): {source}", program.display())]
    Spawn {
        name: String,
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("{name} was not ready within {waited:?} ({detail}); last log lines:\n{tail}")]
    NotReady {
        name: String,
        waited: Duration,
        detail: String,
        tail: String,
    },
    #[error("{name} exited ({status}) before it was ready; last log lines:\n{tail}")]
    Exited {
        name: String,
        status: String,
        tail: String,
    },
    #[error("no process named {0} in the stack")]
    Unknown(String),
    #[error("{name} has no kill command in the deployment file")]
    NoKillCommand { name: String },
    #[error("the kill command of {name} failed: {detail}")]
    KillCommand { name: String, detail: String },
}

/// A free TCP port on 127.0.0.1, found by binding port 0. The listener is closed before the
/// service binds it; another process could take it in between, which start-up then reports
/// (services fail on a port conflict).
pub fn free_port() -> Result<u16, StackError> {
    Ok(reserve_port()?.0)
}

/// A free TCP port on 127.0.0.1 and the listener that holds it: while the listener lives, no
/// other `bind(0)` of this process (a fault proxy, say) can be given the port. Drop it just
/// before the process that binds the port starts.
pub fn reserve_port() -> Result<(u16, std::net::TcpListener), StackError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(StackError::Port)?;
    let port = listener.local_addr().map_err(StackError::Port)?.port();
    Ok((port, listener))
}

/// How to tell a process is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// `GET url` answers 200 (a service's `/readyz`).
    Ok200(String),
    /// `GET url` answers at all (the fakes, which have no readiness endpoint: listening is
    /// being ready).
    Answers(String),
}

impl Readiness {
    pub fn url(&self) -> &str {
        match self {
            Self::Ok200(url) | Self::Answers(url) => url,
        }
    }
}

/// Whether a process is ours (faults may hit it) or a stand-in for an outside system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Service,
    Fake,
}

/// Everything needed to start (and restart) one process.
#[derive(Debug, Clone)]
pub struct ProcSpec {
    pub name: String,
    pub role: Role,
    pub launch: Launch,
    pub ready: Readiness,
    /// Base URL of its HTTP API (`http://127.0.0.1:<port>` for a local process).
    pub http: String,
}

/// Who runs a process.
#[derive(Debug, Clone)]
pub enum Launch {
    /// The suite: a child process, killed with SIGKILL and started again.
    Local(Local),
    /// A deployment: killed by running `kill` (a shell command), started again by its
    /// orchestrator; the suite only waits for it to be ready.
    Deployed { kill: Option<String> },
}

/// A process the suite starts.
#[derive(Debug, Clone)]
pub struct Local {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The whole environment besides PATH and HOME: nothing else is inherited, so a stray
    /// `LOKI_URL` or `DATABASE_URL` in the caller's shell cannot leak into the run.
    pub env: Vec<(String, String)>,
    pub log: PathBuf,
}

struct Running {
    child: Child,
    pid: u32,
}

struct Proc {
    spec: ProcSpec,
    running: Option<Running>,
    /// Where the current incarnation's log starts in the (appended) log file.
    log_offset: u64,
    starts: u32,
}

/// The running stack. Dropping it kills every child (`kill_on_drop`), so a panic anywhere
/// leaves no process behind; [`Stack::shutdown`] is the graceful way.
pub struct Stack {
    procs: Vec<Proc>,
    http: reqwest::Client,
    ready_timeout: Duration,
    /// Processes that exited without being told to, as `name: status`.
    pub unexpected_exits: Vec<String>,
    /// Where each local process's pid is written, as `<name>.pid` (for kill commands of a
    /// stack held up for `run --target`).
    pid_dir: Option<PathBuf>,
}

impl Stack {
    pub fn new(ready_timeout: Duration) -> Self {
        Self {
            procs: Vec::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()
                .unwrap_or_default(),
            ready_timeout,
            unexpected_exits: Vec::new(),
            pid_dir: None,
        }
    }

    /// Writes each local process's pid to `<dir>/<name>.pid` whenever it starts.
    pub fn with_pid_files(mut self, dir: PathBuf) -> Self {
        self.pid_dir = Some(dir);
        self
    }

    /// The pid file of `name` (with [`Stack::with_pid_files`]).
    pub fn pid_file(&self, name: &str) -> Option<PathBuf> {
        self.pid_dir.as_ref().map(|d| d.join(format!("{name}.pid")))
    }

    /// Starts every process of `group` and waits until all are ready; groups are started one
    /// after the other (the fakes before the services that need them).
    pub async fn start_group(&mut self, group: Vec<ProcSpec>) -> Result<(), StackError> {
        let first = self.procs.len();
        for spec in group {
            self.procs.push(Proc {
                spec,
                running: None,
                log_offset: 0,
                starts: 0,
            });
            self.spawn(self.procs.len() - 1)?;
        }
        for index in first..self.procs.len() {
            self.wait_ready(index).await?;
        }
        Ok(())
    }

    fn index(&self, name: &str) -> Result<usize, StackError> {
        self.procs
            .iter()
            .position(|p| p.spec.name == name)
            .ok_or_else(|| StackError::Unknown(name.to_owned()))
    }

    pub fn spec(&self, name: &str) -> Option<&ProcSpec> {
        self.procs.iter().map(|p| &p.spec).find(|s| s.name == name)
    }

    pub fn names(&self, role: Role) -> Vec<String> {
        self.procs
            .iter()
            .filter(|p| p.spec.role == role)
            .map(|p| p.spec.name.clone())
            .collect()
    }

    fn spawn(&mut self, index: usize) -> Result<(), StackError> {
        let proc = &mut self.procs[index];
        let Launch::Local(spec) = &proc.spec.launch else {
            // A deployment's process: its orchestrator starts it.
            proc.starts += 1;
            return Ok(());
        };
        let name = &proc.spec.name;
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&spec.log)
                .map_err(|source| StackError::Log {
                    path: spec.log.clone(),
                    source,
                })
        };
        let stdout = open()?;
        let stderr = open()?;
        let offset = stdout.metadata().map(|m| m.len()).unwrap_or(0);
        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .env_clear()
            .envs(
                ["PATH", "HOME"]
                    .into_iter()
                    .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_owned(), v))),
            )
            .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .process_group(0)
            .kill_on_drop(true);
        let child = command.spawn().map_err(|source| StackError::Spawn {
            name: name.clone(),
            program: spec.program.clone(),
            source,
        })?;
        let pid = child.id().unwrap_or_default();
        if let Some(dir) = &self.pid_dir {
            let path = dir.join(format!("{name}.pid"));
            std::fs::write(&path, format!("{pid}\n"))
                .map_err(|source| StackError::Log { path, source })?;
        }
        proc.running = Some(Running { child, pid });
        proc.log_offset = offset;
        proc.starts += 1;
        Ok(())
    }

    /// Polls the readiness URL of process `index` until it holds; fails at the deadline or
    /// when the process exits, with the end of its log.
    async fn wait_ready(&mut self, index: usize) -> Result<Duration, StackError> {
        let started = Instant::now();
        let deadline = started + self.ready_timeout;
        loop {
            let proc = &mut self.procs[index];
            if let Some(running) = proc.running.as_mut()
                && let Ok(Some(status)) = running.child.try_wait()
            {
                proc.running = None;
                return Err(StackError::Exited {
                    name: proc.spec.name.clone(),
                    status: status.to_string(),
                    tail: self.log_tail(index),
                });
            }
            let detail = match probe(&self.http, &self.procs[index].spec.ready).await {
                Ok(()) => return Ok(started.elapsed()),
                Err(why) => why,
            };
            if Instant::now() >= deadline {
                return Err(StackError::NotReady {
                    name: self.procs[index].spec.name.clone(),
                    waited: self.ready_timeout,
                    detail,
                    tail: self.log_tail(index),
                });
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// `kill -9` of process `name` (SIGKILL to the process, which leads its own group; the
    /// services start no children of their own, recipes run in groups of their own), waiting
    /// until it is gone.
    /// A deployment's process is killed by its command instead (which must succeed).
    pub async fn kill(&mut self, name: &str) -> Result<(), StackError> {
        let index = self.index(name)?;
        if let Launch::Deployed { kill } = &self.procs[index].spec.launch {
            let command = kill.clone().ok_or_else(|| StackError::NoKillCommand {
                name: name.to_owned(),
            })?;
            return run_kill_command(name, &command).await;
        }
        if let Some(mut running) = self.procs[index].running.take() {
            let _ = running.child.start_kill();
            let _ = running.child.wait().await;
        }
        Ok(())
    }

    /// Starts `name` again with the same ports and environment and waits until it is ready;
    /// returns how long that took. A deployment's process is only waited for.
    pub async fn restart(&mut self, name: &str) -> Result<Duration, StackError> {
        let index = self.index(name)?;
        self.spawn(index)?;
        self.wait_ready(index).await
    }

    /// Notes processes that exited on their own since the last look (a crash the suite did not
    /// cause is a finding), and restarts them so the run goes on.
    pub async fn reap_unexpected(&mut self) -> Vec<String> {
        let mut found = Vec::new();
        for index in 0..self.procs.len() {
            let proc = &mut self.procs[index];
            let Some(running) = proc.running.as_mut() else {
                continue;
            };
            if let Ok(Some(status)) = running.child.try_wait() {
                let note = format!("{} (pid {}) exited: {status}", proc.spec.name, running.pid);
                proc.running = None;
                found.push(note.clone());
                self.unexpected_exits.push(note);
                let name = self.procs[index].spec.name.clone();
                if let Err(error) = self.restart(&name).await {
                    found.push(format!("{name} could not be restarted: {error}"));
                }
            }
        }
        found
    }

    /// The processes whose readiness does not hold right now, with the reason.
    pub async fn not_ready(&self) -> Vec<String> {
        let mut out = Vec::new();
        for proc in &self.procs {
            if proc.running.is_none() && matches!(proc.spec.launch, Launch::Local(_)) {
                out.push(format!("{}: not running", proc.spec.name));
                continue;
            }
            if let Err(why) = probe(&self.http, &proc.spec.ready).await {
                out.push(format!("{}: {why}", proc.spec.name));
            }
        }
        out
    }

    /// The log of the current incarnation of `name` (empty for a deployment's process: its
    /// logs are where its platform keeps them).
    pub fn current_log(&self, name: &str) -> String {
        let Ok(index) = self.index(name) else {
            return String::new();
        };
        let proc = &self.procs[index];
        match &proc.spec.launch {
            Launch::Local(local) => read_from(&local.log, proc.log_offset),
            Launch::Deployed { .. } => String::new(),
        }
    }

    fn log_tail(&self, index: usize) -> String {
        let proc = &self.procs[index];
        let Launch::Local(local) = &proc.spec.launch else {
            return "(a deployment's process: see its platform's logs)".into();
        };
        let text = read_from(&local.log, proc.log_offset);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
    }

    /// SIGTERM to every process (services first, then the fakes), SIGKILL to those still
    /// there after the grace period.
    pub async fn shutdown(&mut self) {
        for role in [Role::Service, Role::Fake] {
            for proc in self.procs.iter().rev().filter(|p| p.spec.role == role) {
                if let Some(running) = &proc.running {
                    terminate(running.pid);
                }
            }
            let deadline = Instant::now() + STOP_GRACE;
            for proc in self.procs.iter_mut().filter(|p| p.spec.role == role) {
                if let Some(mut running) = proc.running.take() {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if tokio::time::timeout(left, running.child.wait())
                        .await
                        .is_err()
                    {
                        let _ = running.child.start_kill();
                        let _ = running.child.wait().await;
                    }
                }
            }
        }
    }
}

/// How long a deployment's kill command may take.
const KILL_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs a deployment's kill command with `sh -c`; it must exit 0 within the timeout.
async fn run_kill_command(name: &str, command: &str) -> Result<(), StackError> {
    let failed = |detail: String| StackError::KillCommand {
        name: name.to_owned(),
        detail,
    };
    let run = Command::new("sh")
        .args(["-c", command])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(KILL_COMMAND_TIMEOUT, run)
        .await
        .map_err(|_| failed(format!("still running after {KILL_COMMAND_TIMEOUT:?}")))?
        .map_err(|e| failed(format!("cannot run sh: {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(failed(format!(
            "{}: {}",
            output.status,
            stderr.trim().chars().take(300).collect::<String>()
        )))
    }
}

/// SIGTERM through kill(1): the crate forbids `unsafe`, so no libc call.
fn terminate(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

async fn probe(http: &reqwest::Client, ready: &Readiness) -> Result<(), String> {
    match http.get(ready.url()).send().await {
        Ok(response) => match ready {
            Readiness::Answers(_) => Ok(()),
            Readiness::Ok200(_) if response.status() == reqwest::StatusCode::OK => Ok(()),
            Readiness::Ok200(url) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                Err(format!(
                    "{url} answered {status}: {}",
                    body.chars().take(300).collect::<String>()
                ))
            }
        },
        Err(error) => Err(format!("{}: {error}", ready.url())),
    }
}

fn read_from(path: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = file.seek(SeekFrom::Start(offset));
        let mut bytes = Vec::new();
        let _ = file.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    text
}
