//! HyperFleet's adapter command line against our binary: its override flags and variables
//! (flags > environment > file), `config-dump`, and the refusals of bad values. Observed
//! through `config-dump`, as HyperFleet's own config-loading script observes them.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{Value, json};
use support::{LIVE_ADAPTER, TempDir};

/// An adapter config with a value for every setting the overrides below change.
const ADAPTER: &str = r#"adapter:
  name: test-adapter
  version: "0.2.0"
clients:
  hyperfleet_api:
    base_url: https://file-api.example.com
    version: file-v99
    timeout: 11s
    retry_attempts: 11
    retry_backoff: linear
    base_delay: 11s
    max_delay: 51s
    auth:
      token_path: /file/token
      token_cache_ttl: 11s
  broker:
    subscription_id: file-sub
    topic: file-topic
  kubernetes:
    api_version: file-k8s-v1
    kube_config_path: /file/kubeconfig
    qps: 11.5
    burst: 11
"#;

const TASK: &str = "params: []\n";

/// Prefixes of the variables the adapter reads for its configuration: removed from each
/// child so that the developer's or CI's environment cannot leak into a test.
const CONFIG_VARIABLE_PREFIXES: [&str; 5] = ["HYPERFLEET_", "BROKER_", "LOG_", "ADAPTER_", "AMQP_"];

/// Two configs written to a temporary directory, and the binary run against them.
struct Fixture {
    dir: TempDir,
    adapter: PathBuf,
    task: PathBuf,
}

impl Fixture {
    fn new(adapter: &str) -> Self {
        Self::with_task(adapter, TASK)
    }

    fn with_task(adapter: &str, task: &str) -> Self {
        let dir = TempDir::new();
        let adapter = dir.write("adapter.yaml", adapter);
        let task = dir.write("task.yaml", task);
        Self { dir, adapter, task }
    }

    /// `adapter <subcommand> -c ADAPTER -t TASK <args>` with `env` as the only configuration
    /// variables.
    fn run(&self, subcommand: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_adapter"));
        for (name, _) in std::env::vars() {
            if CONFIG_VARIABLE_PREFIXES.iter().any(|p| name.starts_with(p)) {
                command.env_remove(name);
            }
        }
        command
            .arg(subcommand)
            .arg("-c")
            .arg(&self.adapter)
            .arg("-t")
            .arg(&self.task)
            .args(args)
            .envs(env.iter().copied())
            .output()
            .expect("run the adapter binary")
    }

    /// `config-dump`, which must succeed, parsed back from its YAML.
    fn dump(&self, args: &[&str], env: &[(&str, &str)]) -> Value {
        let output = self.run("config-dump", args, env);
        assert_eq!(
            output.status.code(),
            Some(0),
            "config-dump {args:?} {env:?} failed: {}",
            stderr(&output)
        );
        serde_norway::from_str(&stdout(&output)).expect("config-dump prints YAML")
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The value at `pointer`, `null` when absent.
fn at(document: &Value, pointer: &str) -> Value {
    document.pointer(pointer).cloned().unwrap_or(Value::Null)
}

/// One override: its flag and variable, where it lands, and a value for each (different from
/// each other and from the file's).
struct Case {
    flag: &'static str,
    variable: &'static str,
    pointer: &'static str,
    by_flag: (&'static str, Value),
    by_variable: (&'static str, Value),
}

fn case(
    flag: &'static str,
    variable: &'static str,
    pointer: &'static str,
    by_flag: (&'static str, Value),
    by_variable: (&'static str, Value),
) -> Case {
    Case {
        flag,
        variable,
        pointer,
        by_flag,
        by_variable,
    }
}

fn override_cases() -> Vec<Case> {
    let text = |value: &'static str| (value, json!(value));
    vec![
        case(
            "--hyperfleet-api-base-url",
            "HYPERFLEET_API_BASE_URL",
            "/clients/hyperfleet_api/base_url",
            text("https://cli-api.example.com"),
            text("https://env-api.example.com"),
        ),
        case(
            "--hyperfleet-api-version",
            "HYPERFLEET_API_VERSION",
            "/clients/hyperfleet_api/version",
            text("cli-v77"),
            text("env-v88"),
        ),
        case(
            "--hyperfleet-api-timeout",
            "HYPERFLEET_API_TIMEOUT",
            "/clients/hyperfleet_api/timeout",
            text("33s"),
            ("22000ms", json!("22s")),
        ),
        case(
            "--hyperfleet-api-retry",
            "HYPERFLEET_API_RETRY_ATTEMPTS",
            "/clients/hyperfleet_api/retry_attempts",
            ("33", json!(33)),
            ("22", json!(22)),
        ),
        case(
            "--hyperfleet-api-retry-backoff",
            "HYPERFLEET_API_RETRY_BACKOFF",
            "/clients/hyperfleet_api/retry_backoff",
            text("exponential"),
            text("constant"),
        ),
        case(
            "--hyperfleet-api-base-delay",
            "HYPERFLEET_API_BASE_DELAY",
            "/clients/hyperfleet_api/base_delay",
            text("33s"),
            ("1.5s", json!("1.5s")),
        ),
        case(
            "--hyperfleet-api-max-delay",
            "HYPERFLEET_API_MAX_DELAY",
            "/clients/hyperfleet_api/max_delay",
            ("90s", json!("1m30s")),
            text("52s"),
        ),
        case(
            "--hyperfleet-api-auth-token-path",
            "HYPERFLEET_API_AUTH_TOKEN_PATH",
            "/clients/hyperfleet_api/auth/token_path",
            text("/cli/token"),
            text("/env/token"),
        ),
        case(
            "--hyperfleet-api-auth-token-cache-ttl",
            "HYPERFLEET_API_AUTH_TOKEN_CACHE_TTL",
            "/clients/hyperfleet_api/auth/token_cache_ttl",
            text("33s"),
            text("22s"),
        ),
        case(
            "--broker-subscription-id",
            "HYPERFLEET_BROKER_SUBSCRIPTION_ID",
            "/clients/broker/subscription_id",
            text("cli-sub"),
            text("env-sub"),
        ),
        case(
            "--broker-topic",
            "HYPERFLEET_BROKER_TOPIC",
            "/clients/broker/topic",
            text("cli-topic"),
            text("env-topic"),
        ),
        case(
            "--kubernetes-kube-config-path",
            "HYPERFLEET_KUBERNETES_KUBE_CONFIG_PATH",
            "/clients/kubernetes/kube_config_path",
            text("/cli/kubeconfig"),
            text("/env/kubeconfig"),
        ),
        case(
            "--kubernetes-api-version",
            "HYPERFLEET_KUBERNETES_API_VERSION",
            "/clients/kubernetes/api_version",
            text("cli-k8s-v3"),
            text("env-k8s-v2"),
        ),
        case(
            "--kubernetes-qps",
            "HYPERFLEET_KUBERNETES_QPS",
            "/clients/kubernetes/qps",
            ("33.5", json!(33.5)),
            ("22.5", json!(22.5)),
        ),
        case(
            "--kubernetes-burst",
            "HYPERFLEET_KUBERNETES_BURST",
            "/clients/kubernetes/burst",
            ("33", json!(33)),
            ("22", json!(22)),
        ),
        case(
            "--log-level",
            "LOG_LEVEL",
            "/log/level",
            text("error"),
            text("warn"),
        ),
        case(
            "--log-format",
            "LOG_FORMAT",
            "/log/format",
            text("json"),
            text("text"),
        ),
        case(
            "--log-output",
            "LOG_OUTPUT",
            "/log/output",
            text("stderr"),
            text("stdout"),
        ),
    ]
}

#[test]
fn config_dump_prints_the_files_as_loaded() {
    let fixture = Fixture::new(ADAPTER);
    let output = fixture.run("config-dump", &[], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    for line in [
        "  name: test-adapter",
        "    timeout: 11s",
        "    retry_backoff: linear",
        "    qps: 11.5",
        "params: []",
    ] {
        assert!(text.contains(line), "`{line}` missing from:\n{text}");
    }
    // Neither shown when off or unset, as HyperFleet prints them.
    assert!(!text.contains("debug_config"), "{text}");
    assert!(!text.contains("log:"), "{text}");
}

#[test]
fn config_dump_does_not_need_what_only_a_live_adapter_needs() {
    // HyperFleet's config-loading script dumps configs without an API URL or a broker.
    let fixture = Fixture::new("adapter:\n  name: bare\n");
    let dump = fixture.dump(&[], &[]);
    assert_eq!(at(&dump, "/adapter/name"), "bare");
}

#[test]
fn each_flag_and_variable_overrides_the_file_and_the_flag_wins() {
    let fixture = Fixture::new(ADAPTER);
    let file = fixture.dump(&[], &[]);
    for case in override_cases() {
        let (flag_text, flag_value) = &case.by_flag;
        let (variable_text, variable_value) = &case.by_variable;
        let flag = format!("{}={flag_text}", case.flag);
        let variable = [(case.variable, *variable_text)];
        assert_ne!(at(&file, case.pointer), *flag_value, "{}", case.flag);
        assert_ne!(
            at(&file, case.pointer),
            *variable_value,
            "{}",
            case.variable
        );

        let by_flag = fixture.dump(&[&flag], &[]);
        assert_eq!(at(&by_flag, case.pointer), *flag_value, "{flag}");
        let by_variable = fixture.dump(&[], &variable);
        assert_eq!(
            at(&by_variable, case.pointer),
            *variable_value,
            "{variable:?}"
        );
        let both = fixture.dump(&[&flag], &variable);
        assert_eq!(
            at(&both, case.pointer),
            *flag_value,
            "{flag} beats {variable:?}"
        );
    }
}

#[test]
fn flags_also_take_their_value_as_the_next_argument() {
    let fixture = Fixture::new(ADAPTER);
    let dump = fixture.dump(
        &["--hyperfleet-api-timeout", "33s", "--broker-topic", "t"],
        &[],
    );
    assert_eq!(at(&dump, "/clients/hyperfleet_api/timeout"), "33s");
    assert_eq!(at(&dump, "/clients/broker/topic"), "t");
}

#[test]
fn earlier_names_still_work_and_lose_to_hyperfleets() {
    let fixture = Fixture::new(ADAPTER);
    let path = "/clients/kubernetes/kube_config_path";
    let dump = fixture.dump(&["--kube-config-path=/alias/kubeconfig"], &[]);
    assert_eq!(at(&dump, path), "/alias/kubeconfig");
    let dump = fixture.dump(&[], &[("HYPERFLEET_KUBE_CONFIG_PATH", "/old/kubeconfig")]);
    assert_eq!(at(&dump, path), "/old/kubeconfig");
    let both = [
        ("HYPERFLEET_KUBE_CONFIG_PATH", "/old/kubeconfig"),
        ("HYPERFLEET_KUBERNETES_KUBE_CONFIG_PATH", "/new/kubeconfig"),
    ];
    assert_eq!(at(&fixture.dump(&[], &both), path), "/new/kubeconfig");

    let topic = "/clients/broker/topic";
    let legacy = [("BROKER_TOPIC", "legacy-topic")];
    assert_eq!(at(&fixture.dump(&[], &legacy), topic), "legacy-topic");
    let both = [
        ("BROKER_TOPIC", "legacy-topic"),
        ("HYPERFLEET_BROKER_TOPIC", "std-topic"),
    ];
    assert_eq!(at(&fixture.dump(&[], &both), topic), "std-topic");
    let blank_standard = [
        ("BROKER_TOPIC", "legacy-topic"),
        ("HYPERFLEET_BROKER_TOPIC", ""),
    ];
    assert_eq!(
        at(&fixture.dump(&[], &blank_standard), topic),
        "legacy-topic"
    );
}

#[test]
fn blank_variables_count_as_not_set() {
    // HyperFleet ignores empty variables, which charts render for unset values.
    let fixture = Fixture::new(ADAPTER);
    let blank = [
        ("HYPERFLEET_API_TIMEOUT", ""),
        ("HYPERFLEET_API_RETRY_BACKOFF", " "),
        ("HYPERFLEET_KUBERNETES_BURST", ""),
        ("HYPERFLEET_DEBUG_CONFIG", ""),
        ("LOG_OUTPUT", ""),
        ("HYPERFLEET_MAESTRO_INSECURE", ""),
    ];
    assert_eq!(fixture.dump(&[], &blank), fixture.dump(&[], &[]));
}

#[test]
fn debug_config_takes_an_optional_boolean() {
    let off = Fixture::new(ADAPTER);
    assert_eq!(at(&off.dump(&[], &[]), "/debug_config"), Value::Null);
    assert_eq!(
        at(&off.dump(&["--debug-config"], &[]), "/debug_config"),
        true
    );
    assert_eq!(
        at(&off.dump(&["--debug-config=true"], &[]), "/debug_config"),
        true
    );
    let variable = [("HYPERFLEET_DEBUG_CONFIG", "true")];
    assert_eq!(at(&off.dump(&[], &variable), "/debug_config"), true);

    // Shown only when on, as HyperFleet prints it; the flag turns the file's `true` off.
    let on = Fixture::new(&format!("{ADAPTER}debug_config: true\n"));
    assert_eq!(at(&on.dump(&[], &[]), "/debug_config"), true);
    let flag_off = on.dump(&["--debug-config=false"], &variable);
    assert_eq!(at(&flag_off, "/debug_config"), Value::Null);
}

#[test]
fn serve_check_config_takes_hyperfleets_flags() {
    let fixture = Fixture::new(LIVE_ADAPTER);
    let args = [
        "--check-config",
        "--debug-config=true",
        "--log-output=stderr",
        "--hyperfleet-api-retry-backoff=constant",
        "--kubernetes-qps=5",
    ];
    let output = fixture.run("serve", &args, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output).trim(), "configuration OK");
}

#[test]
fn serve_overrides_reach_config_expressions() {
    // A dry run shows what `config.*` holds: the precondition is met only with the overrides.
    let task = r#"params:
  - name: clusterId
    source: event.id
preconditions:
  - name: overridden
    expression: 'config.log.level == "debug" && config.clients.hyperfleet_api.timeout == "33s"'
"#;
    let fixture = Fixture::with_task(LIVE_ADAPTER, task);
    let event = fixture.dir.write(
        "event.json",
        r#"{"specversion": "1.0", "id": "e1", "source": "s", "type": "t", "data": {}}"#,
    );
    let event = event.to_str().unwrap();
    let precondition = |args: &[&str], env: &[(&str, &str)]| {
        let args = [&["--dry-run-event", event][..], args].concat();
        let output = fixture.run("serve", &args, env);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let trace = stdout(&output);
        let phase = trace
            .lines()
            .find(|l| l.starts_with("Phase 2: Preconditions"));
        phase
            .unwrap_or_else(|| panic!("no preconditions in:\n{trace}"))
            .to_owned()
    };
    assert!(precondition(&[], &[]).ends_with("(NOT MET)"));
    let flags = ["--log-level=debug", "--hyperfleet-api-timeout=33s"];
    assert!(precondition(&flags, &[]).ends_with("(MET)"));
    let variables = [("LOG_LEVEL", "debug"), ("HYPERFLEET_API_TIMEOUT", "33s")];
    assert!(precondition(&[], &variables).ends_with("(MET)"));
}

#[test]
fn short_task_config_flag_names_the_task_config() {
    let fixture = Fixture::new(LIVE_ADAPTER);
    // `run` passes `-t`; a task config that does not parse proves it was read.
    fixture.dir.write("task.yaml", "params: [");
    let output = fixture.run("serve", &["--check-config"], &[]);
    assert_eq!(output.status.code(), Some(78));
    assert!(
        stderr(&output).contains("failed to parse task config YAML"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn maestro_flags_set_the_maestro_section_which_load_does_not_use() {
    let fixture = Fixture::new(LIVE_ADAPTER);
    let flag = "--maestro-grpc-server-address=maestro:8090";
    let output = fixture.run("serve", &["--check-config", flag], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("clients.maestro"),
        "{}",
        stdout(&output)
    );

    let output = fixture.run("serve", &["--check-config", "--strict", flag], &[]);
    assert_eq!(output.status.code(), Some(78));
    let refusal = stderr(&output);
    assert!(refusal.starts_with("invalid configuration: "), "{refusal}");
    assert!(refusal.contains("clients.maestro"), "{refusal}");

    let variables = [
        ("HYPERFLEET_MAESTRO_SOURCE_ID", "env-source"),
        ("HYPERFLEET_MAESTRO_RETRY_ATTEMPTS", "22"),
    ];
    let dump = fixture.dump(
        &[flag, "--maestro-insecure", "--maestro-keepalive-time=33s"],
        &variables,
    );
    assert_eq!(
        at(&dump, "/clients/maestro"),
        json!({
            "grpc_server_address": "maestro:8090",
            "source_id": "env-source",
            "retry_attempts": 22,
            "insecure": true,
            "keepalive": {"time": "33s"},
        })
    );
}

#[test]
fn config_dump_redacts_credentials() {
    let adapter = LIVE_ADAPTER.replace(
        "    base_url: http://127.0.0.1:1\n",
        "    base_url: http://127.0.0.1:1\n    default_headers:\n      Authorization: Bearer s3cret\n      X-Team: fleet\n",
    );
    let fixture = Fixture::new(&adapter);
    let output = fixture.run(
        "config-dump",
        &[
            "--maestro-ca-file=/tls/ca.crt",
            "--maestro-key-file=/tls/client.key",
        ],
        &[("HYPERFLEET_MAESTRO_CERT_FILE", "/tls/client.crt")],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    for secret in ["s3cret", "/tls/"] {
        assert!(!text.contains(secret), "`{secret}` in:\n{text}");
    }
    let dump: Value = serde_norway::from_str(&text).unwrap();
    let headers = at(&dump, "/clients/hyperfleet_api/default_headers");
    assert_eq!(
        headers,
        json!({"Authorization": "**REDACTED**", "X-Team": "fleet"})
    );
    let tls = at(&dump, "/clients/maestro/auth/tls_config");
    assert_eq!(
        tls,
        json!({"ca_file": "**REDACTED**", "cert_file": "**REDACTED**", "key_file": "**REDACTED**"})
    );
}

#[test]
fn config_dump_refuses_a_bad_config_with_78() {
    let fixture = Fixture::new("adapter:\n  version: \"0.2.0\"\n");
    let output = fixture.run("config-dump", &[], &[]);
    assert_eq!(output.status.code(), Some(78));
    assert_eq!(
        stderr(&output).trim(),
        "invalid configuration: adapter.name is required in the adapter config"
    );
    assert!(stdout(&output).is_empty());

    let output = fixture.run("config-dump", &["--hyperfleet-api-retry=0"], &[]);
    assert_eq!(output.status.code(), Some(78));
}

#[test]
fn bad_values_are_refused_with_the_reason() {
    let fixture = Fixture::new(ADAPTER);
    let by_flag = [
        (
            "--log-output=file",
            "invalid value 'file' for '--log-output <LOG_OUTPUT>'\n  [possible values: stdout, stderr]",
        ),
        (
            "--hyperfleet-api-retry-backoff=fibonacci",
            "invalid value 'fibonacci' for '--hyperfleet-api-retry-backoff <BACKOFF>': `fibonacci` is not a retry backoff: use exponential, linear or constant",
        ),
        (
            "--kubernetes-qps=-1",
            "`-1` is not a rate: give requests per second, 0 or more",
        ),
    ];
    // clap names the flag whose variable was bad; --help lists each flag's variable.
    let by_variable = [
        (
            ("LOG_OUTPUT", "Stderr"),
            "invalid value 'Stderr' for '--log-output <LOG_OUTPUT>'",
        ),
        (
            ("HYPERFLEET_API_RETRY_BACKOFF", "jitter"),
            "`jitter` is not a retry backoff: use exponential, linear or constant",
        ),
        (
            ("HYPERFLEET_API_TIMEOUT", "soon"),
            "invalid value 'soon' for '--hyperfleet-api-timeout <DURATION>'",
        ),
    ];
    let runs = by_flag
        .iter()
        .map(|(flag, message)| (vec![*flag], vec![], *message))
        .chain(
            by_variable
                .iter()
                .map(|(variable, message)| (vec![], vec![*variable], *message)),
        );
    for (args, env, message) in runs {
        for subcommand in ["serve", "config-dump"] {
            let output = fixture.run(subcommand, &args, &env);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{subcommand} {args:?} {env:?}"
            );
            let reason = stderr(&output);
            assert!(
                reason.contains(message),
                "expected `{message}` in:\n{reason}"
            );
        }
    }
}
