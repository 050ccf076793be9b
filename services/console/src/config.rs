//! The console's settings, resolved and checked once at start-up.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use steadfast_messaging::{BrokerConfig, Namespace};
use steadfast_service_kit::config::format_duration;

use crate::auth::users::{Users, UsersFileError};
use crate::cli::ServeArgs;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no way to log in: set CONSOLE_USERS_FILE (built-in users) or CONSOLE_TRUSTED_PROXIES (an authenticating proxy such as oauth2-proxy), or both"
    )]
    NoLogin,
    #[error(transparent)]
    Users(#[from] UsersFileError),
    #[error("CONSOLE_TRUSTED_PROXIES: `{value}` is not an IP address or CIDR range ({reason})")]
    Proxy { value: String, reason: String },
    #[error("CONSOLE_OPERATORS is set but CONSOLE_TRUSTED_PROXIES is not: it names proxy users")]
    OperatorsWithoutProxy,
    #[error("STEADFAST_NAMESPACE: {0}")]
    Namespace(String),
    #[error("AMQP_URL: {0}")]
    AmqpUrl(String),
    #[error("REDIS_URL is required: the console keeps its sessions in Redis")]
    NoRedis,
    #[error("REDIS_URL is not a Redis URL: {0}")]
    RedisUrl(String),
    #[error("{name} `{value}` is not an http(s) URL{reason}")]
    Url {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("{token} is set but {url} is not: say where that API is")]
    TokenWithoutUrl {
        url: &'static str,
        token: &'static str,
    },
    #[error("{url} is set but {token} is not: the console calls that API with it")]
    MissingToken {
        url: &'static str,
        token: &'static str,
    },
    #[error("CONSOLE_SESSION_TTL must be between 1 minute and 7 days, not {0}")]
    SessionTtl(String),
    #[error("CONSOLE_REFRESH must be between 1 second and 1 hour, not {0}")]
    Refresh(String),
}

/// An API the console calls with a bearer token.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub url: url::Url,
    pub token: String,
}

/// A service whose `/readyz` the overview shows.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    pub name: &'static str,
    pub url: url::Url,
}

/// Who may log in, and how.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub users: Users,
    /// `None` when no proxy is trusted.
    pub proxy: Option<ProxyAuth>,
    pub session_ttl: Duration,
    /// `Secure` cookies (the console is reached over https).
    pub secure_cookies: bool,
}

#[derive(Debug, Clone)]
pub struct ProxyAuth {
    pub trusted: Vec<IpRange>,
    /// Proxy users (names or e-mails, lower-cased) with the operator role.
    pub operators: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub namespace: Namespace,
    pub broker: BrokerConfig,
    pub amqp_url: String,
    pub redis_url: String,
    pub http_listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    pub shutdown_timeout: Duration,
    pub auth: AuthConfig,
    pub herder: Option<Upstream>,
    pub reconciler: Option<Upstream>,
    /// The HyperFleet API (its token may be empty: not every installation asks for one).
    pub fleet: Option<Upstream>,
    /// The sentinel's read API.
    pub sentinel: Option<Upstream>,
    /// The receiver's metrics listener.
    pub receiver_metrics: Option<url::Url>,
    /// Every service the overview probes, in display order.
    pub probes: Vec<ProbeTarget>,
    pub management_url: Option<String>,
    pub refresh: Duration,
}

impl Config {
    pub fn from_args(args: &ServeArgs) -> Result<Self, ConfigError> {
        let common = &args.common;
        let namespace = Namespace::new(common.namespace.clone())
            .map_err(|e| ConfigError::Namespace(e.to_string()))?;
        let broker = BrokerConfig::new(&common.amqp_url, crate::SERVICE)
            .map_err(|e| ConfigError::AmqpUrl(e.to_string()))?;
        let redis_url = present(&common.redis_url).ok_or(ConfigError::NoRedis)?;
        redis::Client::open(redis_url.as_str())
            .map_err(|e| ConfigError::RedisUrl(e.to_string()))?;

        let users = match present(&args.users_file) {
            Some(path) => Users::load(std::path::Path::new(&path))?,
            None => Users::default(),
        };
        let trusted = args
            .trusted_proxies
            .iter()
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<IpRange>().map_err(|reason| ConfigError::Proxy {
                    value: v.to_owned(),
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let operators: BTreeSet<String> = args
            .operators
            .iter()
            .map(|v| v.trim().to_lowercase())
            .filter(|v| !v.is_empty())
            .collect();
        if trusted.is_empty() && !operators.is_empty() {
            return Err(ConfigError::OperatorsWithoutProxy);
        }
        if users.is_empty() && trusted.is_empty() {
            return Err(ConfigError::NoLogin);
        }
        let public_url = present(&args.public_url)
            .map(|u| http_url("CONSOLE_PUBLIC_URL", &u))
            .transpose()?;
        if !(Duration::from_secs(60)..=Duration::from_secs(7 * 86_400)).contains(&args.session_ttl)
        {
            return Err(ConfigError::SessionTtl(format_duration(args.session_ttl)));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&args.refresh) {
            return Err(ConfigError::Refresh(format_duration(args.refresh)));
        }

        let herder = upstream(
            ("HERDER_URL", &args.herder_url),
            ("HERDER_ADMIN_TOKEN", &args.herder_token),
        )?;
        let reconciler = upstream(
            ("RECONCILER_URL", &args.reconciler_url),
            ("RECONCILER_API_TOKEN", &args.reconciler_token),
        )?;
        let fleet = present(&args.fleet_api_url)
            .map(|url| {
                Ok::<_, ConfigError>(Upstream {
                    url: http_url("FLEET_API_URL", &url)?,
                    token: present(&args.fleet_api_token).unwrap_or_default(),
                })
            })
            .transpose()?;
        if fleet.is_none() && present(&args.fleet_api_token).is_some() {
            return Err(ConfigError::TokenWithoutUrl {
                url: "FLEET_API_URL",
                token: "FLEET_API_TOKEN",
            });
        }
        // The sentinel's URL alone is for its /readyz; with the token, its read API too.
        let sentinel = match (present(&args.sentinel_url), present(&args.sentinel_token)) {
            (Some(url), Some(token)) => Some(Upstream {
                url: http_url("SENTINEL_URL", &url)?,
                token,
            }),
            (None, Some(_)) => {
                return Err(ConfigError::TokenWithoutUrl {
                    url: "SENTINEL_URL",
                    token: "SENTINEL_API_TOKEN",
                });
            }
            _ => None,
        };
        let receiver_metrics = present(&args.receiver_metrics_url)
            .map(|url| http_url("RECEIVER_METRICS_URL", &url))
            .transpose()?;
        let mut probes = Vec::new();
        let targets: [(&'static str, &'static str, Option<String>); 5] = [
            (
                "webhook-receiver",
                "RECEIVER_URL",
                args.receiver_url.clone(),
            ),
            ("pipeline-herder", "HERDER_URL", args.herder_url.clone()),
            (
                "alert-reconciler",
                "RECONCILER_URL",
                args.reconciler_url.clone(),
            ),
            ("sentinel", "SENTINEL_URL", args.sentinel_url.clone()),
            ("adapter", "ADAPTER_URL", args.adapter_url.clone()),
        ];
        for (name, variable, value) in targets {
            if let Some(value) = present(&value) {
                probes.push(ProbeTarget {
                    name,
                    url: http_url(variable, &value)?,
                });
            }
        }

        Ok(Self {
            namespace,
            broker,
            amqp_url: common.amqp_url.clone(),
            redis_url,
            http_listen: common.http_listen(),
            metrics_listen: common.metrics_listen,
            shutdown_timeout: common.shutdown_timeout,
            auth: AuthConfig {
                users,
                proxy: (!trusted.is_empty()).then_some(ProxyAuth { trusted, operators }),
                session_ttl: args.session_ttl,
                secure_cookies: public_url.is_some_and(|u| u.scheme() == "https"),
            },
            herder,
            reconciler,
            fleet,
            sentinel,
            receiver_metrics,
            probes,
            management_url: present(&args.management_url),
            refresh: args.refresh,
        })
    }

    /// One paragraph for `--check-config` and the start-up log (no secrets).
    pub fn summary(&self) -> String {
        let login = match (&self.auth.proxy, self.auth.users.len()) {
            (Some(proxy), 0) => format!("through a proxy ({} trusted ranges)", proxy.trusted.len()),
            (Some(proxy), n) => format!(
                "{n} built-in users, or through a proxy ({} trusted ranges)",
                proxy.trusted.len()
            ),
            (None, n) => format!("{n} built-in users"),
        };
        let apis: Vec<&str> = [
            self.herder.as_ref().map(|_| "pipeline-herder"),
            self.reconciler.as_ref().map(|_| "alert-reconciler"),
            self.fleet.as_ref().map(|_| "HyperFleet API"),
            self.sentinel.as_ref().map(|_| "sentinel"),
        ]
        .into_iter()
        .flatten()
        .collect();
        format!(
            "namespace {}; login {login}; sessions last {}; APIs: {}; probes: {}",
            self.namespace.as_str(),
            format_duration(self.auth.session_ttl),
            if apis.is_empty() {
                "none".to_owned()
            } else {
                apis.join(", ")
            },
            if self.probes.is_empty() {
                "none".to_owned()
            } else {
                self.probes
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        )
    }
}

fn present(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn http_url(name: &'static str, value: &str) -> Result<url::Url, ConfigError> {
    let invalid = |reason: String| ConfigError::Url {
        name,
        value: value.to_owned(),
        reason,
    };
    let url = url::Url::parse(value).map_err(|e| invalid(format!(": {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(String::new()));
    }
    Ok(url)
}

fn upstream(
    (url_name, url): (&'static str, &Option<String>),
    (token_name, token): (&'static str, &Option<String>),
) -> Result<Option<Upstream>, ConfigError> {
    let Some(url) = present(url) else {
        return Ok(None);
    };
    let url = http_url(url_name, &url)?;
    let token = present(token).ok_or(ConfigError::MissingToken {
        url: url_name,
        token: token_name,
    })?;
    Ok(Some(Upstream { url, token }))
}

/// An address or a CIDR range (`10.0.0.0/8`, `127.0.0.1`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    base: IpAddr,
    prefix: u8,
}

impl IpRange {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 peer may arrive as an IPv4-mapped IPv6 address on a dual-stack listener.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.base, ip) {
            (IpAddr::V4(base), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(base) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(base), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(base) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for IpRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let base: IpAddr = address
            .parse()
            .map_err(|_| format!("`{address}` is not an IP address"))?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("the prefix length must be 0 to {max}, not `{p}`"))?,
        };
        Ok(Self { base, prefix })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::Cli;

    fn users_file() -> tempfile_path::TempFile {
        let hash = crate::auth::users::hash_password("pw").unwrap();
        tempfile_path::TempFile::with(&format!(
            "users:\n  - name: alice\n    role: operator\n    password_hash: \"{hash}\"\n"
        ))
    }

    fn load(args: &[&str]) -> Result<Config, String> {
        let mut argv = vec!["console", "--redis-url", "redis://127.0.0.1:6379"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        Config::from_args(&cli.serve).map_err(|e| e.to_string())
    }

    #[test]
    fn a_way_in_is_required_and_each_refusal_names_its_variable() {
        assert_eq!(
            load(&[]).unwrap_err(),
            "no way to log in: set CONSOLE_USERS_FILE (built-in users) or CONSOLE_TRUSTED_PROXIES (an authenticating proxy such as oauth2-proxy), or both"
        );
        let file = users_file();
        let path = file.path();
        let ok = load(&["--users-file", path]).unwrap();
        assert_eq!(ok.auth.users.len(), 1);
        assert!(ok.auth.proxy.is_none() && !ok.auth.secure_cookies);
        assert!(
            ok.summary().contains("login 1 built-in users"),
            "{}",
            ok.summary()
        );

        assert_eq!(
            load(&["--users-file", path, "--herder-url", "http://herder:8080"]).unwrap_err(),
            "HERDER_URL is set but HERDER_ADMIN_TOKEN is not: the console calls that API with it"
        );
        assert_eq!(
            load(&["--users-file", path, "--receiver-url", "receiver:8080"]).unwrap_err(),
            "RECEIVER_URL `receiver:8080` is not an http(s) URL"
        );
        assert_eq!(
            load(&["--trusted-proxies", "10.0.0.0/8,proxy.local"]).unwrap_err(),
            "CONSOLE_TRUSTED_PROXIES: `proxy.local` is not an IP address or CIDR range (`proxy.local` is not an IP address)"
        );
        assert_eq!(
            load(&["--users-file", path, "--operators", "pat"]).unwrap_err(),
            "CONSOLE_OPERATORS is set but CONSOLE_TRUSTED_PROXIES is not: it names proxy users"
        );
        assert_eq!(
            load(&["--users-file", path, "--session-ttl", "30s"]).unwrap_err(),
            "CONSOLE_SESSION_TTL must be between 1 minute and 7 days, not 30s"
        );
        assert_eq!(
            load(&["--users-file", path, "--sentinel-token", "t"]).unwrap_err(),
            "SENTINEL_API_TOKEN is set but SENTINEL_URL is not: say where that API is"
        );
        let open_fleet =
            load(&["--users-file", path, "--fleet-api-url", "http://fleet:8000"]).unwrap();
        assert_eq!(
            open_fleet.fleet.unwrap().token,
            "",
            "a HyperFleet API without a token"
        );
        assert!(
            load(&["--users-file", "/nonexistent/users.yaml"])
                .unwrap_err()
                .starts_with("CONSOLE_USERS_FILE `/nonexistent/users.yaml`: ")
        );
        // A blank users file (a ConfigMap key left empty) is no users file.
        assert!(load(&["--users-file", "", "--trusted-proxies", "10.0.0.1"]).is_ok());
        let mut argv = vec!["console", "--users-file", path];
        argv.extend(["--redis-url", ""]);
        let cli = Cli::try_parse_from(argv).unwrap();
        assert_eq!(
            Config::from_args(&cli.serve).unwrap_err().to_string(),
            "REDIS_URL is required: the console keeps its sessions in Redis"
        );
    }

    #[test]
    fn proxies_upstreams_and_https_are_read() {
        let config = load(&[
            "--trusted-proxies",
            "10.0.0.0/8, 127.0.0.1",
            "--operators",
            "Pat@Example.com",
            "--public-url",
            "https://console.example.com",
            "--herder-url",
            "http://herder:8080",
            "--herder-token",
            "t0ken",
            "--sentinel-url",
            "http://sentinel:8080",
        ])
        .unwrap();
        let proxy = config.auth.proxy.as_ref().unwrap();
        assert_eq!(proxy.trusted.len(), 2);
        assert!(proxy.operators.contains("pat@example.com"));
        assert!(config.auth.secure_cookies);
        assert_eq!(config.herder.as_ref().unwrap().token, "t0ken");
        let probes: Vec<&str> = config.probes.iter().map(|p| p.name).collect();
        assert_eq!(probes, ["pipeline-herder", "sentinel"]);
        let summary = config.summary();
        assert!(
            !summary.contains("t0ken"),
            "no secrets in the summary: {summary}"
        );
        assert!(summary.contains("APIs: pipeline-herder"), "{summary}");
    }

    #[test]
    fn ranges_match_what_they_cover() {
        let range: IpRange = "10.1.0.0/16".parse().unwrap();
        assert!(range.contains("10.1.200.3".parse().unwrap()));
        assert!(!range.contains("10.2.0.1".parse().unwrap()));
        assert!(range.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one: IpRange = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let all: IpRange = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        let v6: IpRange = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        assert_eq!(
            "10.0.0.0/33".parse::<IpRange>().unwrap_err(),
            "the prefix length must be 0 to 32, not `33`"
        );
        assert_eq!(
            "proxy.local".parse::<IpRange>().unwrap_err(),
            "`proxy.local` is not an IP address"
        );
    }

    /// A file that is deleted when dropped (no tempfile crate for one test helper).
    mod tempfile_path {
        pub struct TempFile(String);

        impl TempFile {
            pub fn with(text: &str) -> Self {
                let path = std::env::temp_dir().join(format!(
                    "console-users-{}.yaml",
                    crate::auth::session::random_token()
                ));
                std::fs::write(&path, text).unwrap();
                Self(path.display().to_string())
            }

            pub fn path(&self) -> &str {
                &self.0
            }
        }

        impl Drop for TempFile {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }
}
