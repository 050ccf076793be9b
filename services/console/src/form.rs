//! Form bodies (`application/x-www-form-urlencoded`), read once by the CSRF check and handed to
//! the handler. A list of pairs rather than a struct: a selection of messages arrives as the
//! same field repeated (`id=a&id=b`), which serde's form decoding does not collect.

use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct FormFields(Vec<(String, String)>);

impl FormFields {
    pub fn parse(body: &[u8]) -> Self {
        Self(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, trimmed; `None` when absent or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Every non-blank value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect()
    }
}

/// A Go-style duration typed into a form (`90s`, `2h`), with the field named in the error.
pub fn duration_field(field: &str, value: &str) -> Result<Duration, String> {
    steadfast_service_kit::config::parse_duration(value).map_err(|e| format!("`{field}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_fields_are_all_kept() {
        let form = FormFields::parse(b"csrf=abc&id=one&id=&id=two%20x&reason=+disk+full+");
        assert_eq!(form.get("csrf"), Some("abc"));
        assert_eq!(form.all("id"), vec!["one", "two x"]);
        assert_eq!(form.get("reason"), Some("disk full"));
        assert_eq!(form.get("missing"), None);
    }
}
