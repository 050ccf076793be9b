//! Built-in users: a YAML file of names, roles and argon2 password hashes.
//!
//! ```yaml
//! users:
//!   - name: alice
//!     role: operator
//!     password_hash: "$argon2id$v=19$m=19456,t=2,p=1$..."   # console hash-password
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use serde::Deserialize;

use super::Role;

#[derive(Debug, thiserror::Error)]
pub enum UsersFileError {
    #[error("CONSOLE_USERS_FILE `{path}`: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("CONSOLE_USERS_FILE `{path}`: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("CONSOLE_USERS_FILE `{path}`: user `{user}`: {reason}")]
    User {
        path: PathBuf,
        user: String,
        reason: String,
    },
    #[error("CONSOLE_USERS_FILE `{path}` lists no users")]
    Empty { path: PathBuf },
}

#[derive(Debug, thiserror::Error)]
#[error("cannot hash the password: {0}")]
pub struct HashError(String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    users: Vec<UserEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    name: String,
    role: String,
    password_hash: String,
}

/// A user who may log in.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub role: Role,
    hash: String,
}

/// The users of the file, by name.
#[derive(Debug, Clone, Default)]
pub struct Users {
    by_name: Arc<BTreeMap<String, User>>,
}

const MAX_NAME: usize = 64;

impl Users {
    pub fn load(path: &Path) -> Result<Self, UsersFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| UsersFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, UsersFileError> {
        let file: UsersFile =
            steadfast_service_kit::config::parse_yaml(text).map_err(|e| UsersFileError::Parse {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        if file.users.is_empty() {
            return Err(UsersFileError::Empty {
                path: path.to_owned(),
            });
        }
        let mut by_name = BTreeMap::new();
        for entry in file.users {
            let refuse = |reason: String| UsersFileError::User {
                path: path.to_owned(),
                user: entry.name.clone(),
                reason,
            };
            let name = entry.name.trim();
            if name.is_empty()
                || name.chars().count() > MAX_NAME
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c))
            {
                return Err(refuse(format!(
                    "a name is 1 to {MAX_NAME} letters, digits, `.`, `_`, `@` or `-`"
                )));
            }
            let role = entry.role.parse::<Role>().map_err(refuse)?;
            let parsed = PasswordHash::new(&entry.password_hash).map_err(|e| {
                refuse(format!(
                    "`password_hash` is not a PHC hash string ({e}); make one with `console hash-password`"
                ))
            })?;
            if !parsed.algorithm.as_str().starts_with("argon2") {
                return Err(refuse(format!(
                    "`password_hash` uses `{}`; only argon2 hashes are accepted",
                    parsed.algorithm
                )));
            }
            let user = User {
                name: name.to_owned(),
                role,
                hash: entry.password_hash.clone(),
            };
            if by_name.insert(name.to_owned(), user).is_some() {
                return Err(refuse("is listed twice".to_owned()));
            }
        }
        Ok(Self {
            by_name: Arc::new(by_name),
        })
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The user, if `password` is theirs. Slow on purpose (argon2): call it off the async
    /// threads. An unknown name costs the same as a wrong password, so the time taken does not
    /// tell which names exist.
    pub fn verify(&self, name: &str, password: &str) -> Option<User> {
        let user = self.by_name.get(name.trim());
        let hash = user.map_or(DECOY_HASH.as_str(), |u| u.hash.as_str());
        let parsed = PasswordHash::new(hash).ok()?;
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        user.filter(|_| matches).cloned()
    }
}

/// The hash of a random password nobody knows, verified against for unknown names.
static DECOY_HASH: LazyLock<String> = LazyLock::new(|| {
    let secret: [u8; 16] = rand::random();
    hash_password(&hex::encode(secret)).expect("a non-empty password hashes")
});

/// A fresh argon2id hash (random salt, the crate's recommended parameters).
pub fn hash_password(password: &str) -> Result<String, HashError> {
    if password.is_empty() {
        return Err(HashError("the password is empty".into()));
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| HashError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Users, String> {
        Users::parse(Path::new("users.yaml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_hashed_password_verifies_and_nothing_else_does() {
        let hash = hash_password("correct horse").unwrap();
        let users = parse(&format!(
            "users:\n  - name: alice\n    role: operator\n    password_hash: \"{hash}\"\n"
        ))
        .unwrap();
        let alice = users
            .verify("alice", "correct horse")
            .expect("right password");
        assert_eq!((alice.name.as_str(), alice.role), ("alice", Role::Operator));
        assert!(users.verify("alice", "wrong").is_none());
        assert!(users.verify("bob", "correct horse").is_none());
    }

    #[test]
    fn bad_files_are_refused_naming_the_user_and_the_reason() {
        let hash = hash_password("pw").unwrap();
        let err = parse(&format!(
            "users:\n  - name: alice\n    role: admin\n    password_hash: \"{hash}\"\n"
        ))
        .unwrap_err();
        assert_eq!(
            err,
            "CONSOLE_USERS_FILE `users.yaml`: user `alice`: the role must be `viewer` or `operator`, not `admin`"
        );
        let err = parse("users:\n  - name: bob\n    role: viewer\n    password_hash: hunter2\n")
            .unwrap_err();
        assert!(
            err.starts_with("CONSOLE_USERS_FILE `users.yaml`: user `bob`: `password_hash` is not a PHC hash string"),
            "{err}"
        );
        let err = parse(&format!(
            "users:\n  - name: a\n    role: viewer\n    password_hash: \"{hash}\"\n  - name: a\n    role: viewer\n    password_hash: \"{hash}\"\n"
        ))
        .unwrap_err();
        assert_eq!(
            err,
            "CONSOLE_USERS_FILE `users.yaml`: user `a`: is listed twice"
        );
        let err = parse("users: []\n").unwrap_err();
        assert_eq!(err, "CONSOLE_USERS_FILE `users.yaml` lists no users");
        let err = parse("users:\n  - name: a\n    role: viewer\n    password: x\n").unwrap_err();
        assert!(err.contains("unknown field `password`"), "{err}");
        let err = parse(&format!(
            "users:\n  - name: \"a b\"\n    role: viewer\n    password_hash: \"{hash}\"\n"
        ))
        .unwrap_err();
        assert!(err.contains("user `a b`: a name is 1 to 64"), "{err}");
    }
}
