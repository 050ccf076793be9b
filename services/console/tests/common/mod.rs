//! A console under test: its own broker namespace (and so its own Redis session keys), the
//! users `alice` (operator) and `victor` (viewer), optionally a real pipeline-herder behind it;
//! and a [`Browser`] that keeps cookies and does not follow redirects, so tests see every
//! answer the way a browser receives it.

#![allow(dead_code)]

pub mod alerts;
pub mod fleet;
pub mod poison;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use console::App;
use console::auth::users::{Users, hash_password};
use console::config::{AuthConfig, Config, IpRange, ProbeTarget, ProxyAuth, Upstream};
use reqwest::StatusCode;
use steadfast_test_support::{TestBroker, TestDatabase, eventually_async, redis_url};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const WAIT: Duration = Duration::from_secs(20);
pub const ALICE_PASSWORD: &str = "alice-password-1";
pub const VICTOR_PASSWORD: &str = "victor-password-1";
pub const HERDER_TOKEN: &str = "herder-admin-token";

#[derive(Default)]
pub struct Options {
    /// Start a real pipeline-herder and point the console at it.
    pub herder: bool,
    /// Trust `X-Forwarded-User` from these ranges; these proxy users are operators.
    pub proxy: Option<(Vec<&'static str>, Vec<&'static str>)>,
    /// Start the real alert-reconciler and webhook-receiver and point the console at them.
    pub alerts: bool,
    /// Start the HyperFleet API stand-in and the real sentinel, and point the console at them.
    pub fleet: bool,
    /// How long the reconciler's approvals last (default an hour).
    pub approval_ttl: Option<Duration>,
    pub session_ttl: Option<Duration>,
}

pub struct Herder {
    pub url: String,
    pub database: TestDatabase,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
    _gitlab: fake_gitlab::FakeGitLab,
}

pub struct Harness {
    pub broker: TestBroker,
    pub url: String,
    pub metrics: String,
    pub herder: Option<Herder>,
    pub alerts: Option<alerts::AlertStack>,
    pub fleet: Option<fleet::FleetStack>,
    pub config: Config,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

fn users() -> Users {
    let yaml = format!(
        "users:\n  - name: alice\n    role: operator\n    password_hash: \"{}\"\n  - name: victor\n    role: viewer\n    password_hash: \"{}\"\n",
        hash_password(ALICE_PASSWORD).unwrap(),
        hash_password(VICTOR_PASSWORD).unwrap()
    );
    Users::parse(Path::new("users.yaml"), &yaml).expect("valid users")
}

async fn start_herder(broker: &TestBroker) -> Herder {
    let gitlab = fake_gitlab::FakeGitLab::start().await;
    let yaml = format!(
        "gitlab_instances:\n  gitlab.test:\n    api_url: {}\n    token_env: TEST_GITLAB_TOKEN\n\
matchers:\n  - name: image-pull\n    retry_delays: [1s]\n    messages:\n      - 'failed to pull image'\n",
        gitlab.api_url()
    );
    let env = |name: &str| (name == "TEST_GITLAB_TOKEN").then(|| "glpat-test".to_owned());
    let settings = pipeline_herder::HerderSettings::from_yaml(&yaml, Path::new("."), &env)
        .expect("valid herder settings");
    let database = TestDatabase::new().await;
    let config = pipeline_herder::Config {
        namespace: broker.namespace.clone(),
        broker: TestBroker::config_for("pipeline-herder"),
        database_url: database.url.clone(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: "127.0.0.1:0".parse().unwrap(),
        shutdown_timeout: Duration::from_secs(5),
        admin_token: Some(HERDER_TOKEN.into()),
        herder: settings,
    };
    let app = pipeline_herder::App::build(config)
        .await
        .expect("build the herder");
    let url = format!("http://{}", app.http_addr());
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let task = tokio::spawn(async move { app.run(stop).await.expect("herder ran") });
    wait_ready(&url).await;
    Herder {
        url,
        database,
        shutdown,
        task,
        _gitlab: gitlab,
    }
}

pub async fn wait_ready(url: &str) {
    let client = reqwest::Client::new();
    eventually_async(&format!("{url} to be ready"), WAIT, || async {
        let response = client.get(format!("{url}/readyz")).send().await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        steadfast_test_support::init_test_logging();
        let broker = TestBroker::new().await;
        let herder = if options.herder {
            Some(start_herder(&broker).await)
        } else {
            None
        };
        let alerts = if options.alerts {
            Some(
                alerts::AlertStack::start(
                    &broker,
                    options.approval_ttl.unwrap_or(Duration::from_secs(3600)),
                )
                .await,
            )
        } else {
            None
        };
        let fleet = if options.fleet {
            Some(fleet::FleetStack::start(&broker).await)
        } else {
            None
        };
        let proxy = options.proxy.map(|(ranges, operators)| ProxyAuth {
            trusted: ranges
                .iter()
                .map(|r| r.parse::<IpRange>().unwrap())
                .collect(),
            operators: operators.iter().map(|o| o.to_string()).collect(),
        });
        let config = Config {
            namespace: broker.namespace.clone(),
            broker: TestBroker::config_for("console"),
            amqp_url: steadfast_test_support::amqp_url(),
            redis_url: redis_url(),
            http_listen: "127.0.0.1:0".parse().unwrap(),
            metrics_listen: "127.0.0.1:0".parse().unwrap(),
            shutdown_timeout: Duration::from_secs(5),
            auth: AuthConfig {
                users: users(),
                proxy,
                session_ttl: options.session_ttl.unwrap_or(Duration::from_secs(3600)),
                secure_cookies: false,
            },
            herder: herder.as_ref().map(|h| Upstream {
                url: h.url.parse().unwrap(),
                token: HERDER_TOKEN.into(),
            }),
            reconciler: alerts.as_ref().map(|a| Upstream {
                url: a.reconciler_url.parse().unwrap(),
                token: alerts::RECONCILER_TOKEN.into(),
            }),
            fleet: fleet.as_ref().map(|f| Upstream {
                url: f.api_url().parse().unwrap(),
                token: String::new(),
            }),
            receiver_metrics: alerts
                .as_ref()
                .map(|a| a.receiver_metrics_url.parse().unwrap()),
            sentinel: fleet.as_ref().map(|f| Upstream {
                url: f.sentinel_url.parse().unwrap(),
                token: fleet::SENTINEL_TOKEN.into(),
            }),
            probes: herder
                .iter()
                .map(|h| ProbeTarget {
                    name: "pipeline-herder",
                    url: h.url.parse().unwrap(),
                })
                .chain(alerts.iter().flat_map(|a| {
                    [
                        ProbeTarget {
                            name: "webhook-receiver",
                            url: a.receiver_url.parse().unwrap(),
                        },
                        ProbeTarget {
                            name: "alert-reconciler",
                            url: a.reconciler_url.parse().unwrap(),
                        },
                    ]
                }))
                .chain(fleet.iter().map(|f| ProbeTarget {
                    name: "sentinel",
                    url: f.sentinel_url.parse().unwrap(),
                }))
                .collect(),
            management_url: None,
            refresh: Duration::from_secs(1),
        };
        let app = App::build(config.clone()).await.expect("build the console");
        let url = format!("http://{}", app.http_addr());
        let metrics = format!("http://{}", app.metrics_addr());
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let task = tokio::spawn(async move { app.run(stop).await.expect("console ran") });
        wait_ready(&url).await;
        Self {
            broker,
            url,
            metrics,
            herder,
            alerts,
            fleet,
            config,
            shutdown,
            task: Some(task),
        }
    }

    pub fn browser(&self) -> Browser {
        Browser::new(&self.url)
    }

    /// A browser already signed in as `user`.
    pub async fn signed_in(&self, user: &str) -> Browser {
        let mut browser = self.browser();
        let password = match user {
            "alice" => ALICE_PASSWORD,
            "victor" => VICTOR_PASSWORD,
            other => panic!("no test user {other}"),
        };
        let page = browser.login(user, password).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        browser
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("the console stops within its shutdown timeout")
                .unwrap();
        }
        if let Some(herder) = self.herder.take() {
            herder.shutdown.cancel();
            let _ = herder.task.await;
        }
        if let Some(alerts) = self.alerts.take() {
            alerts.stop().await;
        }
        if let Some(fleet) = self.fleet.take() {
            fleet.stop().await;
        }
    }
}

/// One answer as a browser sees it.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub body: String,
}

impl Page {
    /// The page's CSRF token (every signed-in page has one in its sign-out form).
    pub fn csrf(&self) -> String {
        hidden_value(&self.body, "csrf").expect("a csrf field on the page")
    }

    pub fn contains(&self, text: &str) -> bool {
        self.body.contains(text)
    }
}

/// The value of the hidden input `name` in `html`.
pub fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// Cookies and requests, like a browser that shows redirects instead of following them.
pub struct Browser {
    base: String,
    client: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
    /// Sent as `X-Forwarded-User` (as if through the authenticating proxy).
    pub forwarded_user: Option<String>,
}

impl Browser {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
            forwarded_user: None,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let mut request = request.header("cookie", self.cookie_header());
        if let Some(user) = &self.forwarded_user {
            request = request.header("x-forwarded-user", user);
        }
        let response = request.send().await.expect("the console answers");
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        let set_cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for cookie in &set_cookies {
            let pair = cookie.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || cookie.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let body = response.text().await.unwrap();
        Page {
            status,
            location,
            set_cookies,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request).await
    }

    /// Opens the login page and submits it.
    pub async fn login(&mut self, user: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        assert_eq!(form.status, StatusCode::OK);
        let token = hidden_value(&form.body, "login_token").expect("a login token");
        self.post(
            "/login",
            &[
                ("login_token", &token),
                ("next", "/"),
                ("user", user),
                ("password", password),
            ],
        )
        .await
    }

    /// Opens `page` and posts `form` to `action` with the page's CSRF token.
    pub async fn submit(&mut self, page: &str, action: &str, form: &[(&str, &str)]) -> Page {
        let opened = self.get(page).await;
        assert_eq!(opened.status, StatusCode::OK, "{page}: {}", opened.body);
        let csrf = opened.csrf();
        let mut fields: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        fields.extend_from_slice(form);
        self.post(action, &fields).await
    }
}

/// Whether `addr` answers at all (for the shutdown test).
pub async fn answers(addr: SocketAddr) -> bool {
    tokio::net::TcpStream::connect(addr).await.is_ok()
}
