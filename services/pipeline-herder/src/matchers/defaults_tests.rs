//! Every shipped default matcher against a real-looking GitLab job log, and genuine failures
//! (compile errors, failing tests) that none of them may claim.

use super::*;

const RUNNER_HEADER: &str = "\x1b[0KRunning with gitlab-runner 17.5.0 (7ad2a5a8)\x1b[0;m\n\x1b[0K  on kernel-runner-03 t3_xYz9a, system ID: r_8fJ2k1\x1b[0;m\nsection_start:1730000000:prepare_executor\r\x1b[0K\x1b[0K\x1b[36;1mPreparing the \"docker\" executor\x1b[0;m\x1b[0;m\n";

fn failed_job<'a>(failure_reason: Option<&'a str>) -> JobFacts<'a> {
    JobFacts {
        status: "failed",
        name: "build x86_64",
        web_url: "https://gitlab.com/cki-project/kernel-ark/-/jobs/8123456",
        failure_reason,
    }
}

/// The matcher that decides `log` for a failed job with `failure_reason`, and its evidence.
fn decide(log: &str, failure_reason: Option<&str>) -> Option<(String, Evidence)> {
    let set = MatcherSet::default_set();
    let trace = Trace::from_bytes(format!("{RUNNER_HEADER}{log}").into_bytes());
    let evaluation = set.evaluate(&failed_job(failure_reason), Some(&trace));
    evaluation
        .first_match()
        .map(|(i, evidence)| (set.matchers()[i].name.clone(), evidence.clone()))
}

fn assert_decides(matcher: &str, log: &str, failure_reason: Option<&str>) -> Evidence {
    let (name, evidence) = decide(log, failure_reason)
        .unwrap_or_else(|| panic!("no matcher matched; expected `{matcher}`"));
    assert_eq!(name, matcher, "evidence: {evidence:?}");
    evidence
}

#[test]
fn the_defaults_load_without_warnings_and_retry_with_growing_delays() {
    let set = MatcherSet::default_set();
    assert!(set.warnings().is_empty(), "{:?}", set.warnings());
    let image_pull = &set.matchers()[0];
    assert_eq!(image_pull.name, "image-pull");
    assert_eq!(image_pull.action, Action::Retry);
    assert_eq!(image_pull.retry_limit, 3);
    assert_eq!(image_pull.delay_for_retry(1), Duration::from_secs(300));
    assert_eq!(image_pull.delay_for_retry(3), Duration::from_secs(1800));
    assert_eq!(
        image_pull.delay_for_retry(9),
        Duration::from_secs(1800),
        "the last delay repeats"
    );
    let no_trace = set
        .matchers()
        .iter()
        .find(|m| m.name == "no-trace")
        .unwrap();
    assert_eq!(no_trace.action, Action::Report, "inherited from its group");
}

#[test]
fn image_pull_failures() {
    let evidence = assert_decides(
        "image-pull",
        "Using Docker executor with image quay.io/cki/builder-rawhide:latest ...\n\
         Pulling docker image quay.io/cki/builder-rawhide:latest ...\n\
         \x1b[0;33mWARNING: Failed to pull image with policy \"always\": Error response from daemon: Get \"https://quay.io/v2/\": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers) (manager.go:250:15s)\x1b[0;m\n\
         \x1b[31;1mERROR: Job failed: failed to pull image \"quay.io/cki/builder-rawhide:latest\" with specified policies [always]: Error response from daemon: Get \"https://quay.io/v2/\": net/http: request canceled (manager.go:250:15s)\x1b[0;m\n",
        Some("runner_system_failure"),
    );
    let line = evidence.line.unwrap();
    assert!(
        line.starts_with(
            "ERROR: Job failed: failed to pull image \"quay.io/cki/builder-rawhide:latest\""
        ),
        "{line}"
    );
    assert!(
        !line.contains('\x1b'),
        "the excerpt has no escape sequences: {line:?}"
    );
    assert_decides(
        "image-pull",
        "Using Kubernetes executor with image registry.gitlab.com/cki-project/containers/builder-fedora:latest ...\n\
         Waiting for pod cki-runners/runner-t3xyz9a-project-18194050-concurrent-0-abcd1234 to be running, status is Pending\n\
         \tWaiting on container build: ErrImagePull: rpc error: code = Unknown desc = reading manifest latest: received unexpected HTTP status: 502 Bad Gateway\n\
         \x1b[31;1mERROR: Job failed (system failure): prepare environment: waiting for pod running: pulling image \"registry.gitlab.com/cki-project/containers/builder-fedora:latest\": image pull failed: Back-off pulling image \"registry.gitlab.com/cki-project/containers/builder-fedora:latest\"\x1b[0;m\n",
        Some("runner_system_failure"),
    );
    assert_decides(
        "image-pull",
        "Pulling docker image docker.io/library/fedora:41 ...\n\
         \x1b[31;1mERROR: Job failed: toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit\x1b[0;m\n",
        Some("script_failure"),
    );
}

#[test]
fn a_full_disk() {
    assert_decides(
        "no-space-left",
        "$ make -j$(nproc) INSTALL_MOD_STRIP=1 targz-pkg\n\
           CC      drivers/gpu/drm/amd/amdgpu/amdgpu_device.o\n\
         /usr/bin/ld: final link failed: No space left on device\n\
         make[2]: *** [scripts/Makefile.vmlinux:37: vmlinux] Error 1\n\
         \x1b[31;1mERROR: Job failed: exit code 2\x1b[0;m\n",
        Some("script_failure"),
    );
    assert_decides(
        "no-space-left",
        "Pulling docker image quay.io/cki/builder-rawhide:latest ...\n\
         \x1b[31;1mERROR: Job failed: failed to register layer: write /usr/lib64/libLLVM.so.19: no space left on device (docker.go:712:3s)\x1b[0;m\n",
        Some("runner_system_failure"),
    );
    assert_decides(
        "no-space-left",
        "Traceback (most recent call last):\n  File \"/usr/lib/python3.13/shutil.py\", line 273, in copyfile\nOSError: [Errno 28] No space left on device: '/builds/kernel/artifacts/kernel.tar.gz'\n",
        None,
    );
}

#[test]
fn an_oom_killed_build() {
    assert_decides(
        "oom-killed",
        "  CC [M]  drivers/net/ethernet/mellanox/mlx5/core/en_main.o\n\
         gcc: fatal error: Killed signal terminated program cc1\n\
         compilation terminated.\n\
         make[5]: *** [scripts/Makefile.build:229: drivers/net/ethernet/mellanox/mlx5/core/en_main.o] Error 1\n\
         \x1b[31;1mERROR: Job failed: exit code 2\x1b[0;m\n",
        Some("script_failure"),
    );
    assert_decides(
        "oom-killed",
        "  LD [M]  fs/btrfs/btrfs.ko\n\x1b[31;1mERROR: Job failed: exit code 137\x1b[0;m\n",
        Some("script_failure"),
    );
    assert_decides(
        "oom-killed",
        "\x1b[31;1mERROR: Job failed (system failure): pod \"cki-runners/runner-abc-project-1-concurrent-0\" status is \"Failed\": container \"build\" terminated: OOMKilled (exit code 137)\x1b[0;m\n",
        Some("runner_system_failure"),
    );
}

#[test]
fn dns_failures() {
    assert_decides(
        "dns-failure",
        "$ git fetch --depth 1 origin\n\
         fatal: unable to access 'https://gitlab.com/cki-project/kernel-ark.git/': Could not resolve host: gitlab.com\n\
         \x1b[31;1mERROR: Job failed: exit code 128\x1b[0;m\n",
        Some("script_failure"),
    );
    assert_decides(
        "dns-failure",
        "$ dnf -y install rpm-build\n\
         Curl error (6): Couldn't resolve host name for https://mirrors.fedoraproject.org/metalink?repo=fedora-41&arch=x86_64 [Could not resolve host: mirrors.fedoraproject.org]\n",
        Some("script_failure"),
    );
    assert_decides(
        "dns-failure",
        "Uploading artifacts...\nWARNING: Uploading artifacts as \"archive\" to coordinator... error  error=couldn't execute POST against https://gitlab.com/api/v4/jobs/8123456/artifacts: dial tcp: lookup gitlab.com on 10.96.0.10:53: server misbehaving\n",
        Some("script_failure"),
    );
}

#[test]
fn network_timeouts_and_resets() {
    assert_decides(
        "network-failure",
        "$ git clone https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git\n\
         Cloning into 'linux'...\n\
         error: RPC failed; curl 56 Recv failure: Connection reset by peer\n\
         error: 6893 bytes of body are still expected\n\
         fetch-pack: unexpected disconnect while reading sideband packet\n\
         fatal: early EOF\n",
        Some("script_failure"),
    );
    assert_decides(
        "network-failure",
        "$ curl -fsSL -o kernel.tar.gz https://s3.amazonaws.com/arr-cki-prod-trusted-artifacts/kernel.tar.gz\n\
         curl: (28) Failed to connect to s3.amazonaws.com port 443 after 130417 ms: Couldn't connect to server\n",
        Some("script_failure"),
    );
    assert_decides(
        "network-failure",
        "Downloading artifacts for build x86_64 (8123400)...\n\
         \x1b[31;1mERROR: Downloading artifacts from coordinator... error\x1b[0;m  \x1b[31;1merror\x1b[0;m=couldn't execute GET against https://gitlab.com/api/v4/jobs/8123400/artifacts?: Get \"https://gitlab.com/api/v4/jobs/8123400/artifacts?\": net/http: TLS handshake timeout\n",
        Some("runner_system_failure"),
    );
}

#[test]
fn runner_system_failures() {
    // Only GitLab's failure reason says what happened.
    assert_decides(
        "runner-system-failure",
        "Preparing environment\nRunning on runner-t3xyz9a-project-1-concurrent-0 via kernel-runner-03...\n",
        Some("runner_system_failure"),
    );
    // The log says it although the reason is vague.
    assert_decides(
        "runner-system-failure-log",
        "\x1b[31;1mERROR: Job failed (system failure): prepare environment: setting up trapping scripts: unable to upgrade connection: container not found (\"build\")\x1b[0;m\n",
        Some("unknown_failure"),
    );
}

#[test]
fn stuck_jobs_and_gitlab_failures() {
    assert_decides("stuck-or-timeout", "", Some("stuck_or_timeout_failure"));
    assert_decides(
        "gitlab-infrastructure",
        "Job succeeded\n",
        Some("data_integrity_failure"),
    );
    assert_decides("gitlab-infrastructure", "", Some("scheduler_failure"));
}

#[test]
fn a_failed_job_without_a_log_is_reported() {
    let set = MatcherSet::default_set();
    let evaluation = set.evaluate(
        &failed_job(Some("unknown_failure")),
        Some(&Trace::default()),
    );
    let (index, evidence) = evaluation.first_match().unwrap();
    assert_eq!(set.matchers()[index].name, "no-trace");
    assert_eq!(set.matchers()[index].action, Action::Report);
    assert_eq!(evidence.reason, "the log is empty");
}

#[test]
fn genuine_failures_are_left_alone() {
    for log in [
        // A failing selftest.
        "$ make -C tools/testing/selftests TARGETS=net run_tests\n\
         # selftests: net: fib_tests.sh\n\
         not ok 12 selftests: net: fib_tests.sh # exit=1\n\
         # Totals: pass:41 fail:1 xfail:0 xpass:0 skip:3 error:0\n\
         make: *** [Makefile:151: run_tests] Error 1\n\
         \x1b[31;1mERROR: Job failed: exit code 2\x1b[0;m\n",
        // A compile error.
        "  CC      kernel/sched/core.o\n\
         kernel/sched/core.c:4321:9: error: implicit declaration of function 'update_rq_clock_task' [-Werror=implicit-function-declaration]\n\
         make[4]: *** [scripts/Makefile.build:229: kernel/sched/core.o] Error 1\n\
         \x1b[31;1mERROR: Job failed: exit code 2\x1b[0;m\n",
        // A checkpatch complaint that mentions a timeout in a commit message.
        "$ scripts/checkpatch.pl --strict -g HEAD\n\
         WARNING: Possible unwrapped commit description (prefer a maximum 75 chars per line)\n\
         #7: net: fix connect timeout handling when the peer closes early\n\
         total: 0 errors, 1 warnings, 42 lines checked\n\
         \x1b[31;1mERROR: Job failed: exit code 1\x1b[0;m\n",
    ] {
        assert_eq!(decide(log, Some("script_failure")), None, "claimed:\n{log}");
    }
}

#[test]
fn only_the_tail_within_maximum_artifact_size_counts() {
    let set = MatcherSet::from_yaml(
        "matchers:\n  - name: disk\n    maximum_artifact_size: 64\n    messages: ['No space left on device']\n",
    )
    .unwrap();
    let early = format!("No space left on device\n{}\n", "x".repeat(200));
    let job = failed_job(None);
    let verdict = &set
        .evaluate(&job, Some(&Trace::from_bytes(early.into_bytes())))
        .verdicts[0];
    assert!(matches!(verdict, Verdict::NoMatch { .. }), "{verdict:?}");
    let late = format!("{}\nNo space left on device\n", "x".repeat(200));
    let verdict = &set
        .evaluate(&job, Some(&Trace::from_bytes(late.into_bytes())))
        .verdicts[0];
    assert!(matches!(verdict, Verdict::Matched(_)), "{verdict:?}");
}
