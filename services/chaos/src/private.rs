//! Infrastructure a run owns (`--infra private`, the default): its own Redis, PostgreSQL and
//! RabbitMQ (one node, or three clustered with `--cluster`), started for the run under
//! `<run dir>/{redis,pg,rabbitmq}`, on free loopback ports, and stopped and deleted at the end.
//! Because nobody else uses them, the `broker`, `postgres` and `redis` faults may stop and kill
//! them; the machine's shared instances (5672, 5432, 6379) are never touched.
//!
//! * Redis: `redis-server` as a child process, no persistence (`--save "" --appendonly no`):
//!   a restart loses everything, which is what a Redis restart in production does to the
//!   reconciler's pub/sub and to a non-persistent result list.
//! * PostgreSQL: the installed server (`/usr/lib/postgresql/<v>/bin`), a cluster made by
//!   `initdb` with trust authentication, `fsync=off` (a test server: its data is thrown away;
//!   commits stay synchronous, so an immediate stop loses nothing that was acknowledged).
//!   PostgreSQL refuses to run as root, so `initdb` and `postgres` run as the `postgres` user
//!   through `setpriv`, which execs (no fork): the child's pid is the postmaster's, so the
//!   suite signals it directly.
//! * RabbitMQ: `scripts/rabbitmq-cluster.sh` with a directory, base port and node-name prefix
//!   of the run's own, so it cannot collide with a developer's cluster or another run.
//!
//! [`PrivateInfra`] stops everything on drop too (a panic, an early return, Ctrl-C while
//! starting): Drop cannot await, so it signals and waits synchronously, with deadlines.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sqlx::Connection;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::stack::free_port;

/// How long a server may take to accept connections after it was started.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long a server may take to stop after it was told to.
const STOP_DEADLINE: Duration = Duration::from_secs(15);
/// How often a start or a stop is checked.
const POLL: Duration = Duration::from_millis(100);
/// The cluster script (the suite runs from the repository's root, like scripts/chaos.sh).
const CLUSTER_SCRIPT: &str = "scripts/rabbitmq-cluster.sh";

/// Why the run's own infrastructure could not be started, stopped or hit.
#[derive(Debug, thiserror::Error)]
pub enum PrivateError {
    #[error("cannot find a free port: {0}")]
    Port(#[from] crate::stack::StackError),
    #[error("cannot prepare {}: {source}", path.display())]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start {what}: {source}")]
    Spawn {
        what: String,
        source: std::io::Error,
    },
    #[error("{what} failed ({status}); see {}", log.display())]
    Command {
        what: String,
        status: String,
        log: PathBuf,
    },
    #[error("{what} did not {event} within {waited:?}; see {}", log.display())]
    Timeout {
        what: &'static str,
        event: &'static str,
        waited: Duration,
        log: PathBuf,
    },
    #[error("{what} exited ({status}) while starting; see {}", log.display())]
    Exited {
        what: &'static str,
        status: String,
        log: PathBuf,
    },
    #[error("no PostgreSQL server installed (looked for /usr/lib/postgresql/*/bin/postgres)")]
    NoPostgres,
    #[error("no `postgres` user on this machine (PostgreSQL refuses to run as root)")]
    NoPostgresUser,
    #[error("{0} is not running")]
    NotRunning(&'static str),
    #[error("{0}")]
    Refused(String),
}

fn dir_error(path: &Path) -> impl FnOnce(std::io::Error) -> PrivateError + '_ {
    move |source| PrivateError::Dir {
        path: path.to_owned(),
        source,
    }
}

fn log_file(path: &Path) -> Result<std::fs::File, PrivateError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(dir_error(path))
}

/// Sends `signal` (e.g. `QUIT`) to `pid` through kill(1): the crate forbids `unsafe`.
fn signal(pid: u32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Waits (blocking: used from Drop) until `pid` is gone or `deadline` passed.
fn wait_gone_blocking(pid: u32, deadline: Duration) -> bool {
    let until = std::time::Instant::now() + deadline;
    while Path::new(&format!("/proc/{pid}")).exists() {
        // A zombie is gone as far as the server is concerned (tokio reaps it later).
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if state
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'))
        {
            return true;
        }
        if std::time::Instant::now() >= until {
            return false;
        }
        std::thread::sleep(POLL);
    }
    true
}

/// Waits until `child` exited or `deadline` passed; true if it exited.
async fn wait_exit(child: &mut Child, deadline: Duration) -> bool {
    tokio::time::timeout(deadline, child.wait()).await.is_ok()
}

// --- Redis -------------------------------------------------------------------------------------

/// The run's `redis-server`.
pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    fn new(dir: PathBuf) -> Result<Self, PrivateError> {
        std::fs::create_dir_all(&dir).map_err(dir_error(&dir))?;
        Ok(Self {
            port: free_port()?,
            log: dir.join("redis.log"),
            dir,
            child: None,
        })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts it (on its port, the same on every start) and waits until it answers PING.
    pub async fn start(&mut self) -> Result<(), PrivateError> {
        let log = log_file(&self.log)?;
        let stderr = log.try_clone().map_err(dir_error(&self.log))?;
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--dir",
                &self.dir.display().to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            // Its own group: the terminal's Ctrl-C reaches the suite only, which stops it last.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| PrivateError::Spawn {
                what: "redis-server".into(),
                source,
            })?;
        self.child = Some(child);
        let deadline = Instant::now() + START_DEADLINE;
        let url = self.url();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(PrivateError::Exited {
                    what: "redis-server",
                    status: status.to_string(),
                    log: self.log.clone(),
                });
            }
            if ping(&url).await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(PrivateError::Timeout {
                    what: "redis-server",
                    event: "answer PING",
                    waited: START_DEADLINE,
                    log: self.log.clone(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// `kill -9`, waiting until it is gone.
    pub async fn kill(&mut self) -> Result<(), PrivateError> {
        let mut child = self.child.take().ok_or(PrivateError::NotRunning("redis"))?;
        let _ = child.start_kill();
        let _ = child.wait().await;
        Ok(())
    }

    fn stop_blocking(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Nothing to save (no persistence): SIGKILL is a clean enough stop.
            let _ = child.start_kill();
            if let Some(pid) = child.id() {
                wait_gone_blocking(pid, STOP_DEADLINE);
            }
        }
    }
}

async fn ping(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let attempt = async {
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .ok()
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Some(_))
    )
}

// --- PostgreSQL --------------------------------------------------------------------------------

/// The run's PostgreSQL server, run as the `postgres` user.
pub struct PostgresServer {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    sockets: PathBuf,
    log: PathBuf,
    uid: u32,
    gid: u32,
    child: Option<Child>,
}

/// The newest installed server's bin directory.
fn postgres_bin() -> Result<PathBuf, PrivateError> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| PrivateError::NoPostgres)?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("postgres").is_file() && bin.join("initdb").is_file())
                .then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .ok_or(PrivateError::NoPostgres)
}

/// The uid and gid of the `postgres` user, from /etc/passwd.
fn postgres_user() -> Result<(u32, u32), PrivateError> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&"postgres") && fields.len() > 3)
        .and_then(|fields| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
        .ok_or(PrivateError::NoPostgresUser)
}

impl PostgresServer {
    /// `initdb` into `root/data` (owned by `postgres`), sockets in `root/sockets`.
    async fn init(root: PathBuf) -> Result<Self, PrivateError> {
        let bin = postgres_bin()?;
        let (uid, gid) = postgres_user()?;
        let data = root.join("data");
        let sockets = root.join("sockets");
        for dir in [&root, &data, &sockets] {
            std::fs::create_dir_all(dir).map_err(dir_error(dir))?;
            std::os::unix::fs::chown(dir, Some(uid), Some(gid)).map_err(dir_error(dir))?;
        }
        let server = Self {
            port: free_port()?,
            bin,
            log: root.join("postgres.log"),
            data,
            sockets,
            uid,
            gid,
            child: None,
        };
        let log = log_file(&server.log)?;
        let stderr = log.try_clone().map_err(dir_error(&server.log))?;
        let status = server
            .as_postgres("initdb")
            .args(["--auth=trust", "--username=postgres", "--encoding=UTF8"])
            .args(["--locale=C", "--no-sync", "--no-instructions", "-D"])
            .arg(&server.data)
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .status()
            .await
            .map_err(|source| PrivateError::Spawn {
                what: "initdb".into(),
                source,
            })?;
        if !status.success() {
            return Err(PrivateError::Command {
                what: "initdb".into(),
                status: status.to_string(),
                log: server.log.clone(),
            });
        }
        Ok(server)
    }

    /// `program` of the server's bin directory, run as `postgres` (setpriv execs it).
    fn as_postgres(&self, program: &str) -> Command {
        let mut command = Command::new("setpriv");
        command
            .args([
                format!("--reuid={}", self.uid),
                format!("--regid={}", self.gid),
                "--clear-groups".to_owned(),
                "--".to_owned(),
            ])
            .arg(self.bin.join(program))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .process_group(0);
        command
    }

    /// `postgres://postgres@127.0.0.1:<port>` (no database).
    pub fn base_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// Starts the server and waits until it accepts a connection.
    pub async fn start(&mut self) -> Result<(), PrivateError> {
        let log = log_file(&self.log)?;
        let stderr = log.try_clone().map_err(dir_error(&self.log))?;
        let child = self
            .as_postgres("postgres")
            .arg("-D")
            .arg(&self.data)
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.sockets.display()
            ))
            // A throw-away server: fsync and full-page writes guard against the machine
            // crashing, which the suite never does (what PostgreSQL wrote survives its own
            // crash in the page cache). Never `synchronous_commit=off`: a commit would then be
            // acknowledged before its WAL is written, and the `postgres` fault (an immediate
            // stop) would lose acknowledged commits — the suite's loss, not the services'.
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "max_connections=300"])
            .args(["-c", "shared_buffers=64MB"])
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| PrivateError::Spawn {
                what: "postgres".into(),
                source,
            })?;
        self.child = Some(child);
        let deadline = Instant::now() + START_DEADLINE;
        let url = format!("{}/postgres", self.base_url());
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(PrivateError::Exited {
                    what: "postgres",
                    status: status.to_string(),
                    log: self.log.clone(),
                });
            }
            let attempt = tokio::time::timeout(Duration::from_secs(3), async {
                let mut conn = sqlx::PgConnection::connect(&url).await.ok()?;
                sqlx::query("SELECT 1").execute(&mut conn).await.ok()?;
                let _ = conn.close().await;
                Some(())
            });
            if let Ok(Some(())) = attempt.await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(PrivateError::Timeout {
                    what: "postgres",
                    event: "accept connections",
                    waited: START_DEADLINE,
                    log: self.log.clone(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// PostgreSQL's immediate shutdown (SIGQUIT to the postmaster: every backend is ended at
    /// once, no checkpoint, crash recovery at the next start), waiting until it is gone.
    pub async fn stop_immediate(&mut self) -> Result<(), PrivateError> {
        let mut child = self
            .child
            .take()
            .ok_or(PrivateError::NotRunning("postgres"))?;
        if let Some(pid) = child.id() {
            signal(pid, "QUIT");
        }
        if !wait_exit(&mut child, STOP_DEADLINE).await {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        Ok(())
    }

    fn stop_blocking(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                // Fast shutdown; SIGKILL of the postmaster alone would orphan its backends.
                signal(pid, "INT");
                if !wait_gone_blocking(pid, STOP_DEADLINE) {
                    signal(pid, "QUIT");
                    wait_gone_blocking(pid, STOP_DEADLINE);
                }
            }
            let _ = child.start_kill();
        }
    }
}

// --- RabbitMQ ----------------------------------------------------------------------------------

/// The run's RabbitMQ node(s), through scripts/rabbitmq-cluster.sh.
pub struct RabbitCluster {
    pub nodes: usize,
    base_port: u16,
    dir: PathBuf,
    prefix: String,
    log: PathBuf,
    started: bool,
}

/// A base port B such that B.., B+10000.. and B+20000.. (AMQP, management, distribution; one
/// per node) are all free right now.
fn rabbit_base_port(nodes: usize, seed: u32) -> Result<u16, PrivateError> {
    let nodes = u16::try_from(nodes).unwrap_or(9);
    let free = |port: u16| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
    // 20000..24000: below the ephemeral range for AMQP and management; the script accepts
    // up to 45000 (distribution ports are +20000).
    for attempt in 0..200u32 {
        let base = 20_000 + u16::try_from((seed.wrapping_add(attempt * 97)) % 4_000).unwrap_or(0);
        if (0..nodes).all(|n| {
            [base + n, base + 10_000 + n, base + 20_000 + n]
                .into_iter()
                .all(free)
        }) {
            return Ok(base);
        }
    }
    Err(PrivateError::Port(crate::stack::StackError::Port(
        std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "no free port range for RabbitMQ",
        ),
    )))
}

impl RabbitCluster {
    fn new(dir: PathBuf, tag: &str, nodes: usize, seed: u32) -> Result<Self, PrivateError> {
        std::fs::create_dir_all(&dir).map_err(dir_error(&dir))?;
        Ok(Self {
            nodes,
            base_port: rabbit_base_port(nodes, seed)?,
            log: dir.join("script.log"),
            dir,
            prefix: format!("chaos-{tag}"),
            started: false,
        })
    }

    fn command(&self, args: &[&str]) -> Result<std::process::Command, PrivateError> {
        let log = log_file(&self.log)?;
        let mut command = std::process::Command::new(CLUSTER_SCRIPT);
        command
            .args(args)
            .env("RABBITMQ_CLUSTER_NODES", self.nodes.to_string())
            .env("RABBITMQ_CLUSTER_BASE_PORT", self.base_port.to_string())
            .env("RABBITMQ_CLUSTER_DIR", &self.dir)
            .env("RABBITMQ_CLUSTER_NAME_PREFIX", &self.prefix)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        Ok(command)
    }

    /// Runs the script with `args` and waits until it is done (it waits for its own
    /// conditions: a node booted, rejoined, its port closed ...).
    async fn script(&self, args: &[&str]) -> Result<(), PrivateError> {
        let mut command = Command::from(self.command(args)?);
        command.kill_on_drop(true);
        let what = format!("{CLUSTER_SCRIPT} {}", args.join(" "));
        let status = command
            .status()
            .await
            .map_err(|source| PrivateError::Spawn {
                what: what.clone(),
                source,
            })?;
        if status.success() {
            Ok(())
        } else {
            Err(PrivateError::Command {
                what,
                status: status.to_string(),
                log: self.log.clone(),
            })
        }
    }

    async fn start(&mut self) -> Result<(), PrivateError> {
        // Marked started first: a start that failed halfway still leaves nodes to stop.
        self.started = true;
        self.script(&["start"]).await
    }

    /// `stop_app` on node `n`; returns once its AMQP port is closed.
    pub async fn stop_app(&self, n: usize) -> Result<(), PrivateError> {
        self.script(&["stop-app", &n.to_string()]).await
    }

    /// `start_app` on node `n`; returns once it serves again.
    pub async fn start_app(&self, n: usize) -> Result<(), PrivateError> {
        self.script(&["start-app", &n.to_string()]).await
    }

    /// `kill -9` of node `n`'s Erlang VM.
    pub async fn kill(&self, n: usize) -> Result<(), PrivateError> {
        self.script(&["kill", &n.to_string()]).await
    }

    /// Starts node `n` again; returns once it rejoined the cluster.
    pub async fn restart(&self, n: usize) -> Result<(), PrivateError> {
        self.script(&["restart", &n.to_string()]).await
    }

    /// Every node's AMQP URL (the services get them as one host list).
    pub fn amqp_urls(&self) -> Vec<String> {
        (0..self.nodes)
            .map(|n| format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.amqp_port(n)))
            .collect()
    }

    fn amqp_port(&self, n: usize) -> usize {
        usize::from(self.base_port) + n
    }

    /// Every node's management API (any of them serves the whole cluster's).
    pub fn management_urls(&self) -> Vec<String> {
        (0..self.nodes)
            .map(|n| {
                format!(
                    "http://127.0.0.1:{}",
                    usize::from(self.base_port) + 10_000 + n
                )
            })
            .collect()
    }

    fn stop_blocking(&mut self, purge: bool) {
        if !self.started {
            return;
        }
        self.started = false;
        let args: &[&str] = if purge {
            &["stop", "--purge"]
        } else {
            &["stop"]
        };
        if let Ok(mut command) = self.command(args) {
            let _ = command.status();
        }
    }
}

// --- all three ---------------------------------------------------------------------------------

/// The run's Redis, PostgreSQL and RabbitMQ.
pub struct PrivateInfra {
    pub redis: RedisServer,
    pub postgres: PostgresServer,
    pub rabbit: RabbitCluster,
    dirs: Vec<PathBuf>,
    keep: bool,
    stopped: bool,
}

impl PrivateInfra {
    /// Starts all three at once under `run_dir` (RabbitMQ is the slow one); `tag` makes the
    /// node names unique, `nodes` is 1 (single broker) or 3 (`--cluster`). With `keep`, the
    /// data directories stay after the run (the processes are stopped all the same).
    pub async fn start(
        run_dir: &Path,
        tag: &str,
        nodes: usize,
        keep: bool,
    ) -> Result<Self, PrivateError> {
        let redis_dir = run_dir.join("redis");
        let pg_dir = run_dir.join("pg");
        let rabbit_dir = run_dir.join("rabbitmq");
        let seed = u32::from_str_radix(tag.get(..8).unwrap_or(tag), 16).unwrap_or(0);
        let mut infra = Self {
            redis: RedisServer::new(redis_dir.clone())?,
            postgres: PostgresServer::init(pg_dir.clone()).await?,
            rabbit: RabbitCluster::new(rabbit_dir.clone(), tag, nodes, seed)?,
            dirs: vec![redis_dir, pg_dir, rabbit_dir],
            keep,
            stopped: false,
        };
        // On an error here, `infra` is dropped: whatever did start is stopped.
        let (redis, postgres, rabbit) = tokio::join!(
            infra.redis.start(),
            infra.postgres.start(),
            infra.rabbit.start()
        );
        redis?;
        postgres?;
        rabbit?;
        Ok(infra)
    }

    /// Stops everything and (without `keep`) deletes the data directories; returns what went
    /// wrong. Blocking (a few seconds): called once, at the end, or from Drop.
    pub fn stop(&mut self) -> Vec<String> {
        if self.stopped {
            return Vec::new();
        }
        self.stopped = true;
        self.redis.stop_blocking();
        self.postgres.stop_blocking();
        self.rabbit.stop_blocking(!self.keep);
        let mut problems = Vec::new();
        if !self.keep {
            for dir in &self.dirs {
                if let Err(error) = std::fs::remove_dir_all(dir)
                    && error.kind() != std::io::ErrorKind::NotFound
                {
                    problems.push(format!("cannot delete {}: {error}", dir.display()));
                }
            }
        }
        problems
    }
}

impl Drop for PrivateInfra {
    fn drop(&mut self) {
        for problem in self.stop() {
            eprintln!("[chaos] {problem}");
        }
    }
}

/// The infrastructure of a run: with `--infra private`, its own (started here, the time it
/// took printed) and the URLs pointing at it; with `--infra shared`, the URLs given, after
/// refusing fault kinds that would stop what others use. A cluster's management API is node
/// 1's, with the others' as fallbacks ([`crate::infra::Management::with_fallbacks`]).
pub async fn provide(
    args: &crate::cli::RunArgs,
    run_dir: &Path,
    tag: &str,
) -> Result<(Option<PrivateInfra>, crate::cli::InfraArgs), PrivateError> {
    let mut infra = args.infra.clone();
    if infra.mode == crate::cli::InfraMode::Shared {
        let refused: Vec<&str> = args
            .faults
            .iter()
            .filter(|k| k.needs_private_infra())
            .map(|k| k.as_str())
            .collect();
        if !refused.is_empty() {
            return Err(PrivateError::Refused(format!(
                "fault kind(s) {} stop or kill RabbitMQ, PostgreSQL or Redis, and --infra shared \
                 uses the machine's instances, which serve other users: use --infra private \
                 (the default) or drop them from --faults",
                refused.join(", ")
            )));
        }
        if infra.cluster {
            return Err(PrivateError::Refused(
                "--cluster starts a RabbitMQ cluster of the run's own: it needs --infra private"
                    .into(),
            ));
        }
        return Ok((None, infra));
    }
    let nodes = if infra.cluster { 3 } else { 1 };
    let started = Instant::now();
    eprintln!(
        "[chaos] starting the run's own Redis, PostgreSQL and RabbitMQ ({}) under {}",
        if nodes == 1 {
            "one node".to_owned()
        } else {
            format!("a cluster of {nodes} nodes")
        },
        run_dir.display()
    );
    let owned = PrivateInfra::start(run_dir, tag, nodes, args.keep).await?;
    eprintln!(
        "[chaos] private infrastructure ready in {:.1}s: redis :{}, postgres :{}, rabbitmq {}",
        started.elapsed().as_secs_f64(),
        owned.redis.port,
        owned.postgres.port,
        owned.rabbit.amqp_urls().join(" "),
    );
    infra.amqp_url = owned.rabbit.amqp_urls().join(",");
    // One URL, what every user of the field expects; the other nodes' for failing over.
    let mut management = owned.rabbit.management_urls();
    infra.management_url = management.remove(0);
    infra.management_fallbacks = management;
    infra.management_user = "guest".into();
    infra.management_password = "guest".into();
    infra.redis_url = owned.redis.url();
    infra.database_base = owned.postgres.base_url();
    Ok((Some(owned), infra))
}
