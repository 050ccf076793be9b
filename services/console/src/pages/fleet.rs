//! The fleet: clusters and nodepools with their generation and conditions, each adapter's last
//! report, when the sentinel last published for them, and what is not reconciled and for how
//! long. Read from the HyperFleet API and the sentinel's read API.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Flash, PageError, Section, ago, error_page, not_found, page, upstream_failed, when};
use crate::app::AppState;
use crate::auth::Principal;
use crate::upstream::UpstreamError;
use crate::upstream::fleet::{FleetApi, PAGE_SIZE, RECONCILED, Resource, SentinelResource};

fn fleet(state: &AppState) -> Result<&FleetApi, PageError> {
    state.fleet.as_ref().ok_or_else(|| PageError {
        status: StatusCode::NOT_FOUND,
        title: "HyperFleet API not configured",
        detail: "The console does not know the HyperFleet API: set FLEET_API_URL (and FLEET_API_TOKEN if it asks for one).".into(),
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct FleetQuery {
    label: Option<String>,
    unreconciled: Option<String>,
    page: Option<String>,
}

/// `env=prod, tier=gold` → HyperFleet's search language, every value quoted (`''` for a quote),
/// keys checked so nothing but a label name reaches the query.
pub fn label_search(text: &str) -> Result<Vec<String>, String> {
    let mut terms = Vec::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("`{pair}` is not a label filter: write key=value"))?;
        let key = key.trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c))
        {
            return Err(format!(
                "`{key}` is not a label name (letters, digits, `.`, `_`, `-`, `/`)"
            ));
        }
        terms.push(format!(
            "labels.{key}='{}'",
            value.trim().replace('\'', "''")
        ));
    }
    Ok(terms)
}

fn reconciled_cell(resource: &Resource, now: DateTime<Utc>) -> Markup {
    match resource.unreconciled_since() {
        None => html! { td.good { "reconciled" } },
        Some(since) => html! {
            td.bad {
                "not reconciled"
                @if let Some(since) = since { " for " (ago(now - since).trim_end_matches(" ago")) }
            }
        },
    }
}

fn sentinel_cell(seen: Option<&SentinelResource>, now: DateTime<Utc>) -> Markup {
    html! {
        td {
            @match seen {
                None => "—",
                Some(r) => {
                    @match r.last_published_at {
                        Some(at) => { "published " (when(at, now)) }
                        None => { "not published" }
                    }
                    @if let Some(error) = &r.publish_error { br; span.bad { (error) } }
                }
            }
        }
    }
}

/// `GET /fleet`.
pub async fn list(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Query(query): Query<FleetQuery>,
) -> Response {
    let api = match fleet(&state) {
        Ok(api) => api,
        Err(refusal) => return refusal.into_response(),
    };
    let label = query.label.clone().unwrap_or_default();
    let mut terms = match label_search(&label) {
        Ok(terms) => terms,
        Err(problem) => return error_page(StatusCode::BAD_REQUEST, "Bad filter", &problem),
    };
    let unreconciled = query.unreconciled.as_deref().is_some_and(|v| !v.is_empty());
    if unreconciled {
        terms.push(format!("status.conditions.{RECONCILED}='False'"));
    }
    let page_number = match query
        .page
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        None => 1,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if n >= 1 => n,
            _ => {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "Bad page",
                    &format!("`page` must be a number from 1, not `{text}`."),
                );
            }
        },
    };
    let search = (!terms.is_empty()).then(|| terms.join(" and "));
    let sentinel = async {
        match &state.sentinel {
            Some(api) => Some(api.resources("clusters").await),
            None => None,
        }
    };
    let (clusters, sentinel) = tokio::join!(api.clusters(search.as_deref(), page_number), sentinel);
    let clusters = match clusters {
        Ok(clusters) => clusters,
        Err(UpstreamError::Refused { detail, .. }) => {
            return error_page(StatusCode::BAD_REQUEST, "Bad filter", &detail);
        }
        Err(error) => return upstream_failed("the HyperFleet API", &error),
    };
    let (seen, sentinel_error) = match sentinel {
        Some(Ok(seen)) => (seen, None),
        Some(Err(error)) => (BTreeMap::new(), Some(error.to_string())),
        None => (BTreeMap::new(), None),
    };
    let now = Utc::now();
    let content = html! {
        form.filters method="get" action="/fleet" aria-label="Filter clusters" {
            div.field {
                label for="f-label" { "Labels" }
                input #f-label type="text" name="label" value=(label) placeholder="env=prod, region=eu";
            }
            div.field {
                label for="f-unreconciled" {
                    input #f-unreconciled type="checkbox" name="unreconciled" value="1" checked[unreconciled];
                    " only not reconciled"
                }
            }
            button type="submit" { "Filter" }
            a href="/fleet" { "Clear" }
        }
        @if let Some(error) = &sentinel_error {
            p.failure role="alert" { "The sentinel's read API did not answer: " (error) }
        }
        @if state.sentinel.is_none() {
            p { "Set SENTINEL_URL and SENTINEL_API_TOKEN to see when the sentinel last published for each cluster." }
        }
        @if clusters.items.is_empty() {
            p { "No clusters match." }
        } @else {
            div.scroll { table {
                caption { (clusters.total) " clusters" @if clusters.total > PAGE_SIZE as i64 { ", page " (page_number) } }
                thead { tr {
                    th scope="col" { "Cluster" } th.num scope="col" { "Generation" } th scope="col" { "State" }
                    th scope="col" { "Adapters" } th scope="col" { "Sentinel" }
                } }
                tbody {
                    @for c in &clusters.items {
                        tr {
                            td { a href=(format!("/fleet/clusters/{}", c.id)) { (c.name) } }
                            td.num { (c.generation) }
                            (reconciled_cell(c, now))
                            td {
                                @for a in c.adapter_conditions() {
                                    span.good[a.status == "True"].bad[a.status != "True"] {
                                        (a.kind.trim_end_matches("Successful")) " " (a.status)
                                    }
                                    " "
                                }
                            }
                            (sentinel_cell(seen.get(&c.id), now))
                        }
                    }
                }
            } }
            @if (page_number as i64) * (PAGE_SIZE as i64) < clusters.total {
                p { a href=(next_page(&label, unreconciled, page_number + 1)) { "Next page" } }
            }
        }
    };
    page(
        &principal,
        Section::Fleet,
        "Fleet",
        &Flash::default(),
        content,
    )
    .into_response()
}

fn next_page(label: &str, unreconciled: bool, page: u32) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if !label.is_empty() {
        query.append_pair("label", label);
    }
    if unreconciled {
        query.append_pair("unreconciled", "1");
    }
    query.append_pair("page", &page.to_string());
    format!("/fleet?{}", query.finish())
}

fn conditions_table(resource: &Resource, now: DateTime<Utc>) -> Markup {
    html! {
        div.scroll { table {
            thead { tr {
                th scope="col" { "Condition" } th scope="col" { "Status" } th scope="col" { "Since" }
                th.num scope="col" { "Observed generation" } th scope="col" { "Reason" }
            } }
            tbody {
                @for c in &resource.status.conditions {
                    tr {
                        td { (c.kind) }
                        td.good[c.status == "True"].bad[c.status != "True"] { (c.status) }
                        td { @if let Some(at) = c.last_transition_time { (when(at, now)) } @else { "—" } }
                        td.num { (c.observed_generation.map_or("—".to_owned(), |g| g.to_string())) }
                        td { (c.reason.as_deref().unwrap_or("")) @if let Some(m) = &c.message { ": " (m) } }
                    }
                }
            }
        } }
    }
}

/// `GET /fleet/clusters/{id}`.
pub async fn cluster(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    let api = match fleet(&state) {
        Ok(api) => api,
        Err(refusal) => return refusal.into_response(),
    };
    let sentinel = async {
        match &state.sentinel {
            Some(api) => {
                let (clusters, nodepools) =
                    tokio::join!(api.resources("clusters"), api.resources("nodepools"));
                Some(clusters.and_then(|mut c| {
                    c.extend(nodepools?);
                    Ok(c)
                }))
            }
            None => None,
        }
    };
    let (cluster, nodepools, statuses, sentinel) = tokio::join!(
        api.cluster(&id),
        api.nodepools(&id),
        api.statuses(&id),
        sentinel
    );
    let cluster = match cluster {
        Ok(cluster) => cluster,
        Err(UpstreamError::NotFound | UpstreamError::Refused { .. }) => {
            return not_found(&format!("The HyperFleet API has no cluster `{id}`."));
        }
        Err(error) => return upstream_failed("the HyperFleet API", &error),
    };
    let nodepools = match nodepools {
        Ok(list) => list.items,
        Err(error) => return upstream_failed("the HyperFleet API", &error),
    };
    let statuses = match statuses {
        Ok(list) => list.items,
        Err(error) => return upstream_failed("the HyperFleet API", &error),
    };
    let seen = match sentinel {
        Some(Ok(seen)) => seen,
        _ => BTreeMap::new(),
    };
    let now = Utc::now();
    let content = html! {
        dl.facts {
            dt { "Id" } dd { code { (cluster.id) } }
            dt { "Generation" } dd { (cluster.generation) }
            dt { "State" } dd { @match cluster.unreconciled_since() {
                None => span.good { "reconciled" },
                Some(since) => span.bad { "not reconciled" @if let Some(since) = since { " since " (when(since, now)) } },
            } }
            dt { "Labels" } dd {
                @for (key, _) in &cluster.labels { code { (key) "=" (cluster.label(key).unwrap_or_default()) } " " }
            }
            dt { "Sentinel" } dd {
                @match seen.get(&cluster.id) {
                    None => "—",
                    Some(r) => {
                        @match r.last_published_at { Some(at) => { "last published " (when(at, now)) } None => { "not published since it started" } }
                        @if let Some(g) = r.generation { " (generation " (g) " seen)" }
                    }
                }
            }
            @if let Some(deleted) = cluster.deleted_time { dt { "Deleting since" } dd.bad { (when(deleted, now)) } }
        }
        h2 { "Conditions" }
        (conditions_table(&cluster, now))
        h2 { "Adapters' last reports" }
        @if statuses.is_empty() {
            p { "No adapter has reported yet." }
        } @else {
            div.scroll { table {
                thead { tr {
                    th scope="col" { "Adapter" } th.num scope="col" { "Observed generation" }
                    th scope="col" { "Reported" } th scope="col" { "Conditions" }
                } }
                tbody {
                    @for s in &statuses {
                        tr {
                            td { (s.adapter) }
                            td.num.bad[s.observed_generation < cluster.generation] { (s.observed_generation) }
                            td { @if let Some(at) = s.last_report_time { (when(at, now)) } @else { "—" } }
                            td {
                                @for c in &s.conditions {
                                    span.good[c.status == "True"].bad[c.status != "True"] { (c.kind) "=" (c.status) } " "
                                }
                            }
                        }
                    }
                }
            } }
        }
        h2 { "Nodepools" }
        @if nodepools.is_empty() {
            p { "No nodepools." }
        } @else {
            div.scroll { table {
                thead { tr {
                    th scope="col" { "Nodepool" } th.num scope="col" { "Generation" } th scope="col" { "State" } th scope="col" { "Sentinel" }
                } }
                tbody {
                    @for n in &nodepools {
                        tr {
                            td { (n.name) }
                            td.num { (n.generation) }
                            (reconciled_cell(n, now))
                            (sentinel_cell(seen.get(&n.id), now))
                        }
                    }
                }
            } }
        }
    };
    page(
        &principal,
        Section::Fleet,
        &format!("Cluster {}", cluster.name),
        &Flash::default(),
        content,
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::label_search;

    #[test]
    fn label_filters_become_quoted_search_terms() {
        assert_eq!(
            label_search("env=prod, tier = gold").unwrap(),
            ["labels.env='prod'", "labels.tier='gold'"]
        );
        assert_eq!(
            label_search("team=o'brien").unwrap(),
            ["labels.team='o''brien'"]
        );
        assert!(label_search("").unwrap().is_empty());
        assert_eq!(
            label_search("env").unwrap_err(),
            "`env` is not a label filter: write key=value"
        );
        assert_eq!(
            label_search("env' or 1=1 or labels.x=x").unwrap_err(),
            "`env' or 1` is not a label name (letters, digits, `.`, `_`, `-`, `/`)"
        );
    }
}
