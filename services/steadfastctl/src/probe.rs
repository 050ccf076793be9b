//! `steadfastctl probe URL`: one GET, success only on a 2xx answer. Compose runs it as each
//! service's healthcheck; what it prints on failure is what `docker inspect` shows as the
//! health log, so it names the status and the start of the body (the readiness report).

use std::time::Duration;

/// At most this much of a failing answer's body is printed.
const BODY_EXCERPT: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{url} is not a valid http(s) URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("GET {url}")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("GET {url} answered {status}: {body}")]
    NotReady {
        url: String,
        status: reqwest::StatusCode,
        body: String,
    },
}

/// GETs `url` and returns the answer's first line on a 2xx status.
pub async fn probe(url: &str, timeout: Duration) -> Result<String, ProbeError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| ProbeError::BadUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ProbeError::BadUrl {
            url: url.to_owned(),
            reason: format!("scheme {} is not http or https", parsed.scheme()),
        });
    }
    // reqwest's message repeats the URL; ours says it once.
    let request_error = |source: reqwest::Error| ProbeError::Request {
        url: url.to_owned(),
        source: source.without_url(),
    };
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(request_error)?;
    let response = client.get(parsed).send().await.map_err(request_error)?;
    let status = response.status();
    let body = response.text().await.map_err(request_error)?;
    let body = excerpt(&body);
    if !status.is_success() {
        return Err(ProbeError::NotReady {
            url: url.to_owned(),
            status,
            body,
        });
    }
    Ok(format!("{status} {body}\n"))
}

/// The body on one line, cut at a character boundary.
fn excerpt(body: &str) -> String {
    let one_line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(BODY_EXCERPT) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}
