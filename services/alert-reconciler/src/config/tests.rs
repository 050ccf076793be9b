use super::*;
use clap::Parser;

const BASE: [&str; 7] = [
    "alert-reconciler",
    "--database-url",
    "postgres://localhost/reconciler",
    "--redis-url",
    "redis://cache:6380/",
    "--api-token",
    "0123456789abcdef",
];

fn parse(extra: &[&str]) -> Result<Config, String> {
    let mut args: Vec<&str> = BASE.to_vec();
    args.extend_from_slice(extra);
    let cli = Cli::try_parse_from(args).map_err(|e| e.to_string())?;
    Config::from_cli(cli).map_err(|e| e.to_string())
}

#[test]
fn a_relative_work_dir_becomes_absolute() {
    // Recipes run inside their run directory; a relative data-file path would not resolve.
    let config = parse(&[
        "--recipes",
        "r.yaml",
        "--executor",
        "local",
        "--work-dir",
        ".dev/recipes",
    ])
    .unwrap();
    let ExecutorConfig::Local { work_dir } = &config.executor else {
        panic!("local executor expected")
    };
    assert!(work_dir.is_absolute(), "{}", work_dir.display());
    assert!(work_dir.ends_with(".dev/recipes"));
}

#[test]
fn defaults_follow_euphrosyne() {
    let config = parse(&["--recipes", "recipes.yaml", "--executor", "local"]).unwrap();
    assert_eq!(config.recipe_timeout, Duration::from_secs(300));
    assert_eq!(config.recipe_redis_address, "cache:6380");
    assert_eq!(config.aggregator_address, "localhost:8080");
    assert_eq!(config.recipes, RecipeSource::File("recipes.yaml".into()));
    assert!(matches!(config.executor, ExecutorConfig::Local { .. }));
    assert!(config.sinks.webex.is_none());
}

#[test]
fn euphrosyne_flags_are_accepted() {
    let config = parse(&[
        "--recipes-configmap",
        "orpheus-operator-recipes",
        "--executor",
        "kubernetes",
        "--recipe-namespace",
        "recipes",
        "--recipe-timeout",
        "120",
        "--redis-address",
        "redis.default.svc:80",
        "--webex-bot-address",
        "https://bot.example.com",
    ])
    .unwrap();
    assert_eq!(config.recipe_timeout, Duration::from_secs(120));
    assert_eq!(config.recipe_redis_address, "redis.default.svc:80");
    assert!(matches!(
        &config.executor,
        ExecutorConfig::Kubernetes { namespace, .. } if namespace == "recipes"
    ));
    assert_eq!(
        config.sinks.bot_url.unwrap().as_str(),
        "https://bot.example.com/"
    );
}

#[test]
fn problems_are_named_precisely() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--executor", "local"],
            "no recipe registry: give --recipes FILE (RECIPES_FILE) or --recipes-configmap NAME",
        ),
        (
            &["--recipes", "r.yaml", "--webex-bot-token", "t"],
            "WEBEX_BOT_TOKEN is set but WEBEX_ROOM_ID is not: the Webex sink needs both",
        ),
        (
            &[
                "--recipes",
                "r.yaml",
                "--webex-bot-token",
                "t",
                "--webex-room-id",
                "r",
            ],
            "WEBEX_WEBHOOK_SECRET is required with the Webex sink: approval callbacks are verified with it",
        ),
        (
            &["--recipes", "r.yaml", "--recipe-timeout", "0"],
            "--recipe-timeout must be greater than zero",
        ),
        (
            &["--recipes", "r.yaml", "--chat-webhook-url", "ftp://x"],
            "--chat-webhook-url must be an http:// or https:// URL, not `ftp://x/`",
        ),
        (
            &[
                "--recipes",
                "r.yaml",
                "--executor",
                "kubernetes",
                "--recipe-namespace",
                "Bad_NS",
            ],
            "--recipe-namespace `Bad_NS` is not a valid Kubernetes name (lower-case letters, digits and '-', at most 63)",
        ),
    ];
    for (args, expected) in cases {
        assert_eq!(parse(args).unwrap_err(), *expected, "{args:?}");
    }
    // clap reads DATABASE_URL from the environment; this case only exists without it.
    if std::env::var_os("DATABASE_URL").is_none() {
        let cli = Cli::try_parse_from(["alert-reconciler", "--recipes", "r.yaml"]).unwrap();
        assert_eq!(
            Config::from_cli(cli).unwrap_err().to_string(),
            "DATABASE_URL is required (incidents are kept in PostgreSQL)"
        );
    }
    let short = Cli::try_parse_from([
        "alert-reconciler",
        "--recipes",
        "r.yaml",
        "--database-url",
        "postgres://x/y",
        "--redis-url",
        "redis://x/",
        "--api-token",
        "short",
    ])
    .unwrap();
    assert_eq!(
        Config::from_cli(short).unwrap_err().to_string(),
        "RECONCILER_API_TOKEN must be at least 16 characters"
    );
}

#[test]
fn webex_sink_with_approvers() {
    let config = parse(&[
        "--recipes",
        "r.yaml",
        "--webex-bot-token",
        "bot",
        "--webex-room-id",
        "room",
        "--webex-webhook-secret",
        "secret",
        "--webex-approvers",
        "alice, bob,",
    ])
    .unwrap();
    let webex = config.sinks.webex.unwrap();
    assert_eq!(webex.approvers, vec!["alice", "bob"]);
    assert_eq!(webex.api_url.as_str(), "https://webexapis.com/v1");
}
