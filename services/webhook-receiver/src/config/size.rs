//! Sizes as `MAX_BODY_SIZE` takes them.

/// Why a size cannot be read; each message quotes the text as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("`{text}` is not a size (e.g. 1048576, 512KiB, 1MiB)")]
    NotASize { text: String },
    #[error("`{text}`: unknown size unit `{unit}` (use B, KiB or MiB)")]
    UnknownUnit { text: String, unit: String },
    #[error("`{text}` is too large")]
    TooLarge { text: String },
}

/// `1048576`, `512KiB`, `1MiB`, `2MB`, `64k`.
pub fn parse_size(text: &str) -> Result<usize, SizeError> {
    let s = text.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| SizeError::NotASize { text: text.into() })?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1024,
        "kb" => 1000,
        "m" | "mib" => 1024 * 1024,
        "mb" => 1_000_000,
        other => {
            return Err(SizeError::UnknownUnit {
                text: text.into(),
                unit: other.into(),
            });
        }
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| SizeError::TooLarge { text: text.into() })
}
