//! The `proxy` fault: each service process reaches the broker through TCP fault proxies the
//! suite owns (`steadfast_test_support::FaultProxy`, in this process), so one service's broker
//! connection can be stalled (bytes held: publishes get no confirm, heartbeats stop) and then
//! cut, while every other service keeps its own connection.
//!
//! With a host list in `AMQP_URL` (a cluster), a service gets one proxy per node, its
//! `AMQP_URL` listing them in the nodes' order: the service fails over between nodes as it
//! would without the suite (a killed node closes the proxied connection, the service moves on
//! to the next host), and a `proxy` fault stalls and cuts all of that service's proxies
//! together. Stalling only the node it happens to use would turn the fault into a fail-over to
//! another node, which the `broker` fault already covers; what only a proxy can show is a
//! service whose broker hangs, whichever node it uses.

use std::collections::HashMap;

use steadfast_test_support::FaultProxy;

use crate::stack::{Launch, ProcSpec, Role};

/// Why a proxy could not be set up or used.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("invalid AMQP URL {0}")]
    Url(String),
    #[error("no broker proxy for {0}")]
    Unknown(String),
}

/// The proxies of every service process, by process name.
#[derive(Default)]
pub struct BrokerProxies {
    by_process: HashMap<String, Vec<FaultProxy>>,
}

impl BrokerProxies {
    /// Puts service `spec` behind proxies of its own to `upstreams` (one per broker node) and
    /// points its `AMQP_URL` at them; fakes are left alone (they use no broker), and so are a
    /// deployment's processes (the suite cannot change their environment).
    pub async fn route(
        &mut self,
        spec: &mut ProcSpec,
        upstreams: &[String],
    ) -> Result<(), ProxyError> {
        let Launch::Local(local) = &mut spec.launch else {
            return Ok(());
        };
        if spec.role != Role::Service {
            return Ok(());
        }
        let mut proxies = Vec::new();
        let mut urls = Vec::new();
        for upstream in upstreams {
            let mut url =
                reqwest::Url::parse(upstream).map_err(|_| ProxyError::Url(upstream.clone()))?;
            let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
            let port = url.port().unwrap_or(5672);
            let proxy = FaultProxy::start(&format!("{host}:{port}")).await;
            url.set_port(Some(proxy.addr().port()))
                .map_err(|()| ProxyError::Url(upstream.clone()))?;
            urls.push(url.to_string());
            proxies.push(proxy);
        }
        let list = urls.join(",");
        match local.env.iter_mut().find(|(k, _)| k == "AMQP_URL") {
            Some((_, value)) => *value = list,
            None => local.env.push(("AMQP_URL".into(), list)),
        }
        self.by_process.insert(spec.name.clone(), proxies);
        Ok(())
    }

    /// The processes that have proxies, sorted (the fault's rotation).
    pub fn processes(&self) -> Vec<String> {
        let mut names: Vec<String> = self.by_process.keys().cloned().collect();
        names.sort();
        names
    }

    fn each(&self, name: &str, action: impl Fn(&FaultProxy)) -> Result<(), ProxyError> {
        let proxies = self
            .by_process
            .get(name)
            .ok_or_else(|| ProxyError::Unknown(name.to_owned()))?;
        proxies.iter().for_each(action);
        Ok(())
    }

    /// `name`'s connections stay open but nothing passes, either way.
    pub fn stall(&self, name: &str) -> Result<(), ProxyError> {
        self.each(name, FaultProxy::stall)
    }

    /// `name`'s connections are closed, and new ones closed at once.
    pub fn cut(&self, name: &str) -> Result<(), ProxyError> {
        self.each(name, FaultProxy::cut)
    }

    /// `name` may connect again.
    pub fn restore(&self, name: &str) -> Result<(), ProxyError> {
        self.each(name, FaultProxy::restore)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::Readiness;

    fn spec(name: &str, role: Role) -> ProcSpec {
        ProcSpec {
            name: name.into(),
            role,
            launch: Launch::Local(crate::stack::Local {
                program: "/bin/true".into(),
                args: Vec::new(),
                env: vec![("AMQP_URL".into(), "amqp://unused".into())],
                log: "/dev/null".into(),
            }),
            ready: Readiness::Answers("http://127.0.0.1:1/".into()),
            http: "http://127.0.0.1:1".into(),
        }
    }

    fn amqp_url(spec: &ProcSpec) -> &str {
        match &spec.launch {
            Launch::Local(local) => &local.env[0].1,
            Launch::Deployed { .. } => "",
        }
    }

    #[tokio::test]
    async fn each_service_gets_one_proxy_per_node_and_fakes_none() {
        let upstreams = [
            "amqp://guest:guest@127.0.0.1:5701/%2f".to_owned(),
            "amqp://guest:guest@127.0.0.1:5702/%2f".to_owned(),
        ];
        let mut proxies = BrokerProxies::default();
        let mut service = spec("sentinel", Role::Service);
        let mut fake = spec("fake-kube", Role::Fake);
        proxies.route(&mut service, &upstreams).await.unwrap();
        proxies.route(&mut fake, &upstreams).await.unwrap();
        let url = amqp_url(&service);
        let hosts: Vec<&str> = url.split(',').collect();
        assert_eq!(hosts.len(), 2, "{url}");
        for host in hosts {
            assert!(host.starts_with("amqp://guest:guest@127.0.0.1:"), "{host}");
            assert!(
                !host.contains(":5701/") && !host.contains(":5702/"),
                "{host}"
            );
        }
        assert_eq!(amqp_url(&fake), "amqp://unused");
        // A deployment's process is left alone: the suite cannot change its environment.
        let mut deployed = spec("adapter", Role::Service);
        deployed.launch = Launch::Deployed { kill: None };
        proxies.route(&mut deployed, &upstreams).await.unwrap();
        assert_eq!(proxies.processes(), vec!["sentinel".to_owned()]);
        proxies.stall("sentinel").unwrap();
        proxies.cut("sentinel").unwrap();
        proxies.restore("sentinel").unwrap();
        assert!(proxies.stall("fake-kube").is_err());
    }
}
