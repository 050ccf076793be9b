//! Runs HyperFleet's own configs through our `adapter` and `sentinel` binaries and compares the
//! outcome with what HyperFleet's tests, scripts and docs say (the expectations are ours, in
//! `services/adapter/tests/hyperfleet-conformance.yaml`). Prints one row per case:
//!
//! ```text
//! file | HyperFleet's expectation | ours | match
//! ```
//!
//! and exits 1 if any case does not match or a config file of the snapshot has no case.
//! Front door: `scripts/hyperfleet-conformance.sh SNAPSHOT_DIR`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output};

use clap::Parser;
use serde::Deserialize;
use serde_json::Value;

#[derive(Parser)]
#[command(about = "Compare our loaders and dry run with HyperFleet's expectations")]
struct Args {
    /// The expectations (services/adapter/tests/hyperfleet-conformance.yaml).
    #[arg(long)]
    cases: PathBuf,
    /// A checkout of openshift-hyperfleet/hyperfleet-adapter.
    #[arg(long)]
    adapter_snapshot: PathBuf,
    /// A checkout of openshift-hyperfleet/hyperfleet-sentinel.
    #[arg(long)]
    sentinel_snapshot: PathBuf,
    #[arg(long)]
    adapter_bin: PathBuf,
    #[arg(long)]
    sentinel_bin: PathBuf,
}

#[derive(Deserialize)]
struct CasesFile {
    cases: Vec<Case>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
enum Repo {
    HyperfleetAdapter,
    HyperfleetSentinel,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum Expect {
    Load,
    Refuse,
    Maestro,
    NotApplicable,
    Covered,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    repo: Repo,
    file: String,
    config: Option<String>,
    #[serde(default)]
    covers: Vec<String>,
    #[serde(default)]
    remaps: BTreeMap<String, String>,
    hyperfleet: Option<String>,
    expect: Expect,
    why: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    warnings: Option<usize>,
    strict: Option<Vec<String>>,
    #[serde(default)]
    messages: Vec<String>,
    dry_run: Option<DryRunCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DryRunCase {
    /// The environment of HyperFleet's dry-run script (usually none: no API base URL).
    #[serde(default)]
    env: BTreeMap<String, String>,
    event: String,
    api_responses: Option<String>,
    discovery: Option<String>,
    verdict: String,
    failed_phase: Option<String>,
    error: Option<String>,
    resources: Vec<String>,
    #[serde(default)]
    payload: BTreeMap<String, BTreeMap<String, Value>>,
}

/// One row of the table.
struct Row {
    file: String,
    expectation: String,
    ours: String,
    matched: bool,
    /// What did not match, for the lines under the table.
    problems: Vec<String>,
}

/// The directories whose YAML files must all have a case.
const COVERED_DIRS: [(Repo, &str); 5] = [
    (Repo::HyperfleetAdapter, "charts/examples"),
    (Repo::HyperfleetAdapter, "configs"),
    (Repo::HyperfleetAdapter, "test/testdata"),
    (Repo::HyperfleetSentinel, "configs"),
    (Repo::HyperfleetSentinel, "internal/config/testdata"),
];

fn main() -> ExitCode {
    let args = Args::parse();
    let text = match std::fs::read_to_string(&args.cases) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("cannot read {}: {e}", args.cases.display());
            return ExitCode::from(2);
        }
    };
    let cases: CasesFile = match serde_norway::from_str(&text) {
        Ok(cases) => cases,
        Err(e) => {
            eprintln!("{} is not valid: {e}", args.cases.display());
            return ExitCode::from(2);
        }
    };
    let runner = Runner { args: &args };
    let mut rows: Vec<Row> = cases.cases.iter().map(|c| runner.run(c)).collect();
    rows.extend(runner.uncovered(&cases.cases));
    print_table(&rows);
    print_sources(&cases.cases);
    let failed = rows.iter().filter(|r| !r.matched).count();
    println!(
        "\n{} case(s): {} match, {} do not",
        rows.len(),
        rows.len() - failed,
        failed
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

struct Runner<'a> {
    args: &'a Args,
}

impl Runner<'_> {
    fn root(&self, repo: Repo) -> &Path {
        match repo {
            Repo::HyperfleetAdapter => &self.args.adapter_snapshot,
            Repo::HyperfleetSentinel => &self.args.sentinel_snapshot,
        }
    }

    fn path(&self, repo: Repo, file: &str) -> PathBuf {
        self.root(repo).join(file)
    }

    fn run(&self, case: &Case) -> Row {
        let mut row = Row {
            file: format!("{}: {}", short(case.repo), case.file),
            expectation: expectation(case),
            ours: String::new(),
            matched: true,
            problems: Vec::new(),
        };
        if !self.path(case.repo, &case.file).is_file() {
            row.ours = "file not in the snapshot".into();
            row.matched = false;
            return row;
        }
        match case.expect {
            Expect::NotApplicable => row.ours = "not run".into(),
            Expect::Covered => row.ours = "see the case that loads it".into(),
            Expect::Load | Expect::Refuse | Expect::Maestro => self.load(case, &mut row),
        }
        if let Some(dry_run) = &case.dry_run {
            self.dry_run(case, dry_run, &mut row);
        }
        row.matched = row.problems.is_empty();
        row
    }

    /// The binary and arguments that load the case's files, with the case's environment.
    fn command(&self, case: &Case, extra: &[&str]) -> Command {
        self.command_with(case, extra, &case.env)
    }

    fn command_with(&self, case: &Case, extra: &[&str], env: &BTreeMap<String, String>) -> Command {
        let mut command = match case.repo {
            Repo::HyperfleetAdapter => {
                let mut c = Command::new(&self.args.adapter_bin);
                c.arg("serve").arg("--task-config");
                c.arg(self.path(case.repo, &case.file));
                if let Some(config) = &case.config {
                    c.arg("--config").arg(self.path(case.repo, config));
                }
                for (from, to) in &case.remaps {
                    c.arg("--remap-path")
                        .arg(format!("{from}={}", self.path(case.repo, to).display()));
                }
                c
            }
            Repo::HyperfleetSentinel => {
                let mut c = Command::new(&self.args.sentinel_bin);
                c.arg("serve")
                    .arg("--config")
                    .arg(self.path(case.repo, &case.file));
                c
            }
        };
        command.args(extra);
        // Only what the case says: nothing from the caller's shell leaks in.
        command.env_clear();
        if let Ok(path) = std::env::var("PATH") {
            command.env("PATH", path);
        }
        command.envs(env);
        command
    }

    fn load(&self, case: &Case, row: &mut Row) {
        let output = run(self.command(case, &["--check-config"]));
        let code = output.status.code();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        match case.expect {
            Expect::Load => {
                let warnings = warning_count(&stdout);
                row.ours = match code {
                    Some(0) if warnings == 0 => "loads".into(),
                    Some(0) => format!("loads, {warnings} warning(s)"),
                    _ => format!("refused: {}", first_line(&stderr)),
                };
                if code != Some(0) {
                    row.problems.push(format!("exit {code:?}: {stderr}"));
                    return;
                }
                if let Some(expected) = case.warnings
                    && expected != warnings
                {
                    row.problems.push(format!(
                        "{warnings} warning(s), expected {expected}:\n{stdout}"
                    ));
                }
                if let Some(words) = &case.strict {
                    self.strict(case, words, row);
                }
            }
            Expect::Refuse => {
                row.ours = if code == Some(78) {
                    format!("refused: {}", first_line(&stderr))
                } else {
                    format!("exit {code:?}")
                };
                if code != Some(78) {
                    row.problems.push(format!("exit {code:?}, expected 78"));
                }
                for message in case.messages.iter().filter(|m| !stderr.contains(*m)) {
                    row.problems
                        .push(format!("no `{message}` in the refusal:\n{stderr}"));
                }
            }
            Expect::Maestro => {
                row.ours = format!("not supported: Maestro ({})", first_line(&stderr));
                if code != Some(78) || !stderr.contains("maestro transport is not supported") {
                    row.problems.push(format!(
                        "exit {code:?}, expected 78 with \"maestro transport is not supported\": {stderr}"
                    ));
                }
            }
            Expect::NotApplicable | Expect::Covered => {}
        }
    }

    fn strict(&self, case: &Case, words: &[String], row: &mut Row) {
        let output = run(self.command(case, &["--check-config", "--strict"]));
        let stderr = String::from_utf8_lossy(&output.stderr);
        let code = output.status.code();
        if words.is_empty() {
            if code != Some(0) {
                row.problems
                    .push(format!("--strict refused it (exit {code:?}): {stderr}"));
            }
            return;
        }
        row.ours.push_str("; --strict refuses");
        if code != Some(78) {
            row.problems
                .push(format!("--strict: exit {code:?}, expected 78"));
        }
        for word in words.iter().filter(|w| !stderr.contains(w.as_str())) {
            row.problems
                .push(format!("--strict does not name `{word}`:\n{stderr}"));
        }
    }

    fn dry_run(&self, case: &Case, expected: &DryRunCase, row: &mut Row) {
        let mut extra: Vec<String> = vec![
            "--dry-run-output".into(),
            "json".into(),
            "--dry-run-event".into(),
            self.path(case.repo, &expected.event).display().to_string(),
        ];
        for (flag, file) in [
            ("--dry-run-api-responses", &expected.api_responses),
            ("--dry-run-discovery", &expected.discovery),
        ] {
            if let Some(file) = file {
                extra.push(flag.into());
                extra.push(self.path(case.repo, file).display().to_string());
            }
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let output = run(self.command_with(case, &extra, &expected.env));
        let trace: Value = match serde_json::from_slice(&output.stdout) {
            Ok(trace) => trace,
            Err(e) => {
                row.problems.push(format!(
                    "dry run printed no JSON trace ({e}): {}",
                    String::from_utf8_lossy(&output.stderr)
                ));
                row.ours.push_str("; dry run did not run");
                return;
            }
        };
        let verdict = trace["verdict"].as_str().unwrap_or_default();
        let resources = resource_lines(&trace);
        row.ours.push_str(&format!(
            "; dry run {verdict}: {}",
            if resources.is_empty() {
                "no resources".into()
            } else {
                resources.join(", ")
            }
        ));
        if verdict != expected.verdict {
            row.problems
                .push(format!("verdict {verdict}, expected {}", expected.verdict));
        }
        if let Some(phase) = &expected.failed_phase {
            match trace["errors"].get(phase).and_then(Value::as_str) {
                None => row
                    .problems
                    .push(format!("no error in phase {phase}: {}", trace["errors"])),
                Some(error) => {
                    if let Some(wanted) = &expected.error
                        && !error.contains(wanted.as_str())
                    {
                        row.problems
                            .push(format!("{phase} error `{error}` lacks `{wanted}`"));
                    }
                }
            }
        }
        if resources != expected.resources {
            row.problems.push(format!(
                "resources {resources:?}, expected {:?}",
                expected.resources
            ));
        }
        for (payload, pointers) in &expected.payload {
            let built = &trace["payloads"][payload];
            if built.is_null() {
                row.problems.push(format!("no payload {payload}"));
                continue;
            }
            for (pointer, value) in pointers {
                let found = built.pointer(pointer).unwrap_or(&Value::Null);
                if found != value {
                    row.problems
                        .push(format!("{payload}{pointer} = {found}, expected {value}"));
                }
            }
        }
    }

    /// Rows for YAML files of the snapshot that no case names.
    fn uncovered(&self, cases: &[Case]) -> Vec<Row> {
        let named: BTreeSet<(Repo, &str)> = cases
            .iter()
            .flat_map(|c| {
                std::iter::once(c.file.as_str())
                    .chain(c.config.as_deref())
                    .chain(c.covers.iter().map(String::as_str))
                    .map(move |f| (c.repo, f))
            })
            .collect();
        let mut rows = Vec::new();
        for (repo, dir) in COVERED_DIRS {
            let root = self.root(repo);
            for file in yaml_files(&root.join(dir)) {
                let relative = file
                    .strip_prefix(root)
                    .expect("under the root")
                    .display()
                    .to_string();
                if !named.contains(&(repo, relative.as_str())) {
                    rows.push(Row {
                        file: format!("{}: {relative}", short(repo)),
                        expectation: "(no case: what should it do?)".into(),
                        ours: "not run".into(),
                        matched: false,
                        problems: vec!["add a case to hyperfleet-conformance.yaml".into()],
                    });
                }
            }
        }
        rows
    }
}

fn run(mut command: Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

fn short(repo: Repo) -> &'static str {
    match repo {
        Repo::HyperfleetAdapter => "adapter",
        Repo::HyperfleetSentinel => "sentinel",
    }
}

fn expectation(case: &Case) -> String {
    let outcome = match case.expect {
        Expect::Load => "loads",
        Expect::Refuse => "refused",
        Expect::Maestro => "loads (Maestro transport)",
        Expect::NotApplicable => "not an adapter or sentinel config",
        Expect::Covered => "loads with its pair",
    };
    let mut text = outcome.to_owned();
    if let Some(dry_run) = &case.dry_run {
        text.push_str(&format!("; dry run {}", dry_run.verdict));
    }
    text
}

/// `N warning(s)` from `configuration OK` output.
fn warning_count(stdout: &str) -> usize {
    stdout
        .lines()
        .find_map(|l| {
            l.split_once(" warning(s)")
                .and_then(|(n, _)| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    line.trim_start_matches("invalid configuration: ")
        .to_owned()
}

/// `create Namespace abc123`, `create ConfigMap ns/name`, `delete configmap0`.
fn resource_lines(trace: &Value) -> Vec<String> {
    trace["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let operation = r["operation"].as_str().filter(|o| !o.is_empty())?;
            let kind = r["kind"].as_str().unwrap_or_default();
            if kind.is_empty() {
                return Some(format!("{operation} {}", r["name"].as_str()?));
            }
            let name = r["resourceName"].as_str().unwrap_or_default();
            Some(match r["namespace"].as_str() {
                Some(ns) => format!("{operation} {kind} {ns}/{name}"),
                None => format!("{operation} {kind} {name}"),
            })
        })
        .collect()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// Where HyperFleet says what each case should do.
fn print_sources(cases: &[Case]) {
    println!("\nWhere HyperFleet says so:");
    for case in cases {
        let source = case.hyperfleet.as_deref().or(case.why.as_deref());
        if let Some(source) = source {
            println!("  - {}: {}: {source}", short(case.repo), case.file);
        }
    }
}

fn print_table(rows: &[Row]) {
    println!("| file | HyperFleet's expectation | ours | match |");
    println!("|---|---|---|---|");
    for row in rows {
        println!(
            "| {} | {} | {} | {} |",
            row.file,
            row.expectation,
            row.ours.replace('|', "\\|"),
            if row.matched { "yes" } else { "NO" }
        );
    }
    for row in rows.iter().filter(|r| !r.problems.is_empty()) {
        println!("\n{}:", row.file);
        for problem in &row.problems {
            println!("  - {problem}");
        }
    }
}
