//! What the reconciler tells people, independent of where: the analysis of an investigation,
//! the outcome of an action, the closing of an incident. Reports are built from the stored
//! recipe results when a run completes, stored in the outbox, and rendered by each sink.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::results::message::{Link, ResultBody};
use crate::store::incidents::IncidentRow;
use crate::store::runs::{RecipeRunRow, RecipeState};

/// The incident a report is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentRef {
    pub id: Uuid,
    pub title: String,
    pub group_key: String,
    pub external_url: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub opened_at: DateTime<Utc>,
}

impl IncidentRef {
    pub fn of(row: &IncidentRow) -> Self {
        Self {
            id: row.id,
            title: row.title.clone(),
            group_key: row.group_key.clone(),
            external_url: row.group_data["externalURL"].as_str().map(str::to_owned),
            labels: serde_json::from_value(row.labels.clone()).unwrap_or_default(),
            opened_at: row.opened_at,
        }
    }

    /// `severity` label, if any.
    pub fn severity(&self) -> Option<&str> {
        self.labels.get("severity").map(String::as_str)
    }
}

/// One recipe's contribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub recipe: String,
    /// successful, failed, unknown, timed_out, cancelled.
    pub status: String,
    pub analysis: String,
    pub links: Vec<Link>,
    /// Why it failed, timed out or has no result, when the reconciler knows.
    pub detail: Option<String>,
    /// Why it was launched again, once per re-run (its earlier answer was lost).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reruns: Vec<String>,
}

/// A suggested action, with the approval that runs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionOffer {
    pub name: String,
    pub description: String,
    /// `None` when no enabled action recipe has that name (shown, not approvable).
    pub approval_id: Option<Uuid>,
    pub suggested_by: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Report {
    /// The investigation is over.
    Analysis {
        incident: IncidentRef,
        run_id: Uuid,
        findings: Vec<Finding>,
        actions: Vec<ActionOffer>,
        /// Euphrosyne's concatenated analysis, for its bot interface.
        euphrosyne_analysis: String,
    },
    /// An approved action finished.
    Outcome {
        incident: IncidentRef,
        run_id: Uuid,
        action: String,
        approved_by: String,
        forced: bool,
        finding: Finding,
    },
    /// The incident closed (`resolved` or `expired`).
    Closed {
        incident: IncidentRef,
        state: String,
        reason: String,
    },
}

impl Report {
    pub fn incident(&self) -> &IncidentRef {
        match self {
            Self::Analysis { incident, .. }
            | Self::Outcome { incident, .. }
            | Self::Closed { incident, .. } => incident,
        }
    }

    /// A stable name for the outbox dedupe key.
    pub fn key(&self) -> String {
        match self {
            Self::Analysis { run_id, .. } => format!("analysis:{run_id}"),
            Self::Outcome { run_id, .. } => format!("outcome:{run_id}"),
            Self::Closed { state, .. } => format!("closed:{state}"),
        }
    }
}

/// A recipe's stored result body.
pub fn body_of(row: &RecipeRunRow) -> ResultBody {
    row.results
        .clone()
        .and_then(|r| serde_json::from_value(r).ok())
        .unwrap_or_default()
}

pub fn finding_of(row: &RecipeRunRow) -> Finding {
    let body = body_of(row);
    Finding {
        recipe: row.recipe.clone(),
        status: row.state.clone(),
        analysis: body.analysis,
        links: body.links,
        detail: row.detail.clone(),
        reruns: row.reruns.0.clone(),
    }
}

/// A suggested action and the recipes that suggested it.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggested {
    pub name: String,
    pub data: Value,
    pub suggested_by: Vec<String>,
}

/// The findings of a debugging run and the union of the actions its recipes suggested (in
/// the order first suggested; the parameters of the first suggestion win).
pub fn aggregate(rows: &[RecipeRunRow]) -> (Vec<Finding>, Vec<Suggested>) {
    let findings = rows.iter().map(finding_of).collect();
    let mut suggested: Vec<Suggested> = Vec::new();
    for row in rows {
        if !matches!(
            row.state(),
            RecipeState::Successful | RecipeState::Failed | RecipeState::Unknown
        ) {
            continue;
        }
        for action in body_of(row).actions {
            match suggested.iter_mut().find(|s| s.name == action.name) {
                Some(existing) => existing.suggested_by.push(row.recipe.clone()),
                None => suggested.push(Suggested {
                    name: action.name,
                    data: action.data,
                    suggested_by: vec![row.recipe.clone()],
                }),
            }
        }
    }
    (findings, suggested)
}

/// Euphrosyne's analysis text: one sentence per successful recipe.
pub fn euphrosyne_analysis(incident: Uuid, findings: &[Finding]) -> String {
    findings
        .iter()
        .filter(|f| f.status == RecipeState::Successful.as_str())
        .map(|f| {
            format!(
                "Recipe '{}' completed successfully in response to incident '{incident}': {} ",
                f.recipe, f.analysis
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sqlx::types::Json;

    fn row(recipe: &str, state: RecipeState, results: Option<Value>) -> RecipeRunRow {
        let spec = crate::recipes::RecipeSet::parse(
            &format!("debugging:\n  {recipe}:\n    entrypoint: x\n"),
            None,
        )
        .unwrap()
        .debugging[recipe]
            .clone();
        RecipeRunRow {
            run_id: Uuid::nil(),
            recipe: recipe.into(),
            spec: Json(spec),
            state: state.as_str().into(),
            handle: None,
            launched_at: None,
            finished_at: None,
            detail: None,
            results,
            attempt: 1,
            reruns: Json(Vec::new()),
        }
    }

    #[test]
    fn unions_actions_and_keeps_first_parameters() {
        let rows = vec![
            row(
                "a",
                RecipeState::Successful,
                Some(
                    json!({"analysis": "pod OOM", "actions": [{"name": "restart", "data": {"pod": "p1"}}, "jira"]}),
                ),
            ),
            row(
                "b",
                RecipeState::Failed,
                Some(json!({"actions": [{"name": "restart", "data": {"pod": "p2"}}]})),
            ),
            row("c", RecipeState::TimedOut, None),
        ];
        let (findings, suggested) = aggregate(&rows);
        assert_eq!(findings.len(), 3);
        assert_eq!(suggested.len(), 2);
        assert_eq!(suggested[0].name, "restart");
        assert_eq!(suggested[0].data, json!({"pod": "p1"}));
        assert_eq!(suggested[0].suggested_by, vec!["a", "b"]);
        assert_eq!(suggested[1].name, "jira");
        let id = Uuid::nil();
        assert_eq!(
            euphrosyne_analysis(id, &findings),
            format!("Recipe 'a' completed successfully in response to incident '{id}': pod OOM ")
        );
    }
}
