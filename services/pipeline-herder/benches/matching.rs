//! Matching a 100 MiB job log against the default matchers plus 100 extra patterns, next to
//! ripgrep (`rg -f`) on the same file and the same patterns, in the same run.
//!
//!   cargo bench -p pipeline-herder --bench matching
//!   BENCH_LOG_MIB=200 cargo bench -p pipeline-herder --bench matching
//!
//! Ours is `MatcherSet::evaluate` — the whole decision over the log: one scan for all
//! patterns, then every matcher's verdict. The log is in memory, as the herder holds the tail
//! it fetched; ripgrep reads the same file from the page cache (its process start, ~1-2 ms,
//! is included). Both engines see identical regexes (plain messages escaped the same way).
//! The log is a synthetic kernel CI log: build and test output with a transient failure
//! every ~40 000 lines, as logs of retried jobs look. At the end the ratio of the medians is
//! printed; the target is ours ≥ 0.5 × ripgrep.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use pipeline_herder::matchers::{DEFAULT_MATCHERS_YAML, JobFacts, MatcherSet, Trace};

const GROUP: &str = "match_log";

fn main() {
    let mib: usize = std::env::var("BENCH_LOG_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let dir = data_dir();
    std::fs::create_dir_all(&dir).expect("create the bench data directory");
    let log_path = dir.join(format!("kernel-ci-{mib}MiB.log"));
    let log = ensure_log(&log_path, mib << 20);
    let matchers = MatcherSet::from_yaml(&matchers_yaml()).expect("valid bench matchers");
    let patterns_path = dir.join("patterns.txt");
    std::fs::write(&patterns_path, matchers.patterns().join("\n") + "\n").expect("write patterns");
    println!(
        "log: {} ({} MiB), {} matchers, {} patterns ({})",
        log_path.display(),
        log.len() >> 20,
        matchers.matchers().len(),
        matchers.pattern_count(),
        patterns_path.display()
    );

    let job = JobFacts {
        status: "failed",
        name: "build x86_64",
        web_url: "https://gitlab.com/cki-project/kernel-ark/-/jobs/1",
        failure_reason: Some("script_failure"),
    };
    let trace = Trace::from_bytes(log.clone());
    // Both must find the failures, or the comparison means nothing.
    let evaluation = matchers.evaluate(&job, Some(&trace));
    let (first, _) = evaluation
        .first_match()
        .expect("the log has a known failure");
    assert_eq!(matchers.matchers()[first].name, "image-pull");
    let rg_lines = ripgrep(&patterns_path, &log_path);
    println!(
        "ours: first match `{}`; ripgrep: {rg_lines} matching lines",
        matchers.matchers()[first].name
    );

    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(15))
        .configure_from_args();
    let mut group = criterion.benchmark_group(GROUP);
    group.throughput(Throughput::Bytes(log.len() as u64));
    group.bench_function("pipeline-herder", |b| {
        b.iter(|| std::hint::black_box(matchers.evaluate(&job, Some(&trace))))
    });
    group.bench_function("ripgrep", |b| b.iter(|| ripgrep(&patterns_path, &log_path)));
    group.finish();
    criterion.final_summary();
    report(log.len() as f64);
}

/// Default matchers with every window widened to the whole log, plus one matcher with the
/// 100 extra patterns.
fn matchers_yaml() -> String {
    let mut yaml = DEFAULT_MATCHERS_YAML.replace(
        "    messages:\n",
        "    maximum_artifact_size: 268435456\n    messages:\n",
    );
    yaml.push_str(
        "\n  - name: site-specific\n    maximum_artifact_size: 268435456\n    messages:\n",
    );
    for i in 0..100 {
        let line = match i % 4 {
            0 => format!(
                "      - 'ERROR: infra-{i:03}: lease expired while waiting for an executor'\n"
            ),
            1 => format!(
                "      - regex: 'runner-{i:03}: (connection|stream) (closed|reset) after [0-9]+ retries'\n"
            ),
            2 => {
                format!("      - 'beaker: reservation R:{i:03} aborted by the external watchdog'\n")
            }
            _ => format!(
                "      - regex: 's3-{i:03}\\.amazonaws\\.com: (SlowDown|InternalError|ServiceUnavailable)'\n"
            ),
        };
        yaml.push_str(&line);
    }
    yaml
}

/// Runs `rg --count -f patterns log` and returns the number of matching lines.
fn ripgrep(patterns: &Path, log: &Path) -> u64 {
    let output = Command::new("rg")
        .args(["--no-config", "--count", "-f"])
        .arg(patterns)
        .arg(log)
        .output()
        .expect("ripgrep (`rg`, Debian package ripgrep) must be installed");
    assert!(
        output.status.success(),
        "rg failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("rg --count prints a number")
}

/// `target/bench-data/pipeline-herder`.
fn data_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("bench-data").join("pipeline-herder")
}

/// The synthetic log, written once and reused while its size is right.
fn ensure_log(path: &Path, size: usize) -> Vec<u8> {
    if let Ok(existing) = std::fs::read(path)
        && existing.len() == size
    {
        return existing;
    }
    let log = synthetic_log(size);
    std::fs::write(path, &log).expect("write the bench log");
    log
}

/// A deterministic kernel CI log of exactly `size` bytes.
fn synthetic_log(size: usize) -> Vec<u8> {
    const DIRS: &[&str] = &[
        "drivers/net/ethernet/intel/e1000e",
        "drivers/gpu/drm/amd/amdgpu",
        "fs/xfs/libxfs",
        "net/ipv4",
        "kernel/sched",
        "mm",
        "sound/soc/codecs",
        "arch/x86/kvm/vmx",
    ];
    const FILES: &[&str] = &[
        "core", "main", "netdev", "ioctl", "debugfs", "trace", "fair", "slab",
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = String::with_capacity(size + 256);
    out.push_str("Running with gitlab-runner 17.5.0 (7ad2a5a8)\n  on kernel-runner-03 t3_xYz9a\n");
    let mut line = 0u64;
    while out.len() < size {
        line += 1;
        let r = next();
        let dir = DIRS[(r % DIRS.len() as u64) as usize];
        let file = FILES[((r >> 8) % FILES.len() as u64) as usize];
        let _ = match (r >> 16) % 10 {
            0..=5 => writeln!(out, "  CC [M]  {dir}/{file}_{}.o", (r >> 24) % 997),
            6 => writeln!(out, "  LD [M]  {dir}/{file}.ko"),
            7 => writeln!(
                out,
                "[{:6}.{:06}] {file}: probe of {:04x}:{:02x}:00.0 returned 0 after {} usecs",
                line / 1000,
                (r >> 20) % 1_000_000,
                (r >> 32) % 0xffff,
                (r >> 40) % 0xff,
                (r >> 48) % 5000
            ),
            8 => writeln!(
                out,
                "ok {} selftests: {file}: {file}_test_{}.sh",
                line % 400,
                (r >> 24) % 50
            ),
            _ => writeln!(
                out,
                "{dir}/{file}.c:{}:{}: warning: unused variable 'ret_{}' [-Wunused-variable]",
                (r >> 20) % 4000,
                (r >> 32) % 80,
                (r >> 40) % 99
            ),
        };
        if line.is_multiple_of(40_000) {
            out.push_str("WARNING: Failed to pull image with policy \"always\": Error response from daemon: Get \"https://quay.io/v2/\": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)\n");
        }
    }
    out.truncate(size - 200);
    out.truncate(out.rfind('\n').map_or(0, |n| n + 1));
    out.push_str("\x1b[31;1mERROR: Job failed: failed to pull image \"quay.io/cki/builder-rawhide:latest\": net/http: request canceled\x1b[0;m\n");
    while out.len() < size {
        out.push('\n');
    }
    out.into_bytes()
}

/// Reads criterion's medians for both functions and prints MB/s and the ratio.
fn report(bytes: f64) {
    let base = std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir().join("../../criterion"));
    let median = |function: &str| -> Option<f64> {
        let path = base.join(GROUP).join(function).join("new/estimates.json");
        let text = std::fs::read_to_string(path).ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        json["median"]["point_estimate"].as_f64()
    };
    let (Some(ours), Some(rg)) = (median("pipeline-herder"), median("ripgrep")) else {
        println!(
            "(no criterion estimates found under {}; ratio not computed)",
            base.display()
        );
        return;
    };
    let rate = |ns: f64| bytes / (ns / 1e9) / 1e6;
    println!(
        "\nsummary: pipeline-herder {:.0} MB/s, ripgrep {:.0} MB/s, ratio {:.2} (target >= 0.50)",
        rate(ours),
        rate(rg),
        rate(ours) / rate(rg)
    );
}
