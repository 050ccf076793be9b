//! Sharding a fleet between replicas: replica `index` of `count` handles the resources whose
//! id hashes to `index`. The hash is FNV-1a (64-bit) of the id's UTF-8 bytes, modulo `count`:
//! stable across restarts, versions and machines, so the replicas agree on who owns what with
//! no coordination, and every resource belongs to exactly one replica.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// `INDEX/COUNT`, e.g. `0/3`.
    pub fn parse(text: &str) -> Result<Self, ShardError> {
        let malformed = || ShardError::Malformed { text: text.into() };
        let (index, count) = text.split_once('/').ok_or_else(malformed)?;
        let number = |s: &str| s.trim().parse::<u32>().map_err(|_| malformed());
        let shard = Self {
            index: number(index)?,
            count: number(count)?,
        };
        shard.validate()?;
        Ok(shard)
    }

    pub fn validate(&self) -> Result<(), ShardError> {
        if self.count == 0 {
            return Err(ShardError::NoReplicas);
        }
        if self.index >= self.count {
            return Err(ShardError::IndexOutOfRange {
                index: self.index,
                count: self.count,
            });
        }
        Ok(())
    }

    /// Whether this replica handles the resource with `id`.
    pub fn owns(&self, id: &str) -> bool {
        fnv1a(id.as_bytes()) % u64::from(self.count) == u64::from(self.index)
    }
}

/// Why a shard cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("shard `{text}` must be INDEX/COUNT, e.g. 0/3")]
    Malformed { text: String },
    #[error("shard.count must be at least 1")]
    NoReplicas,
    #[error("shard.index must be below shard.count ({index} is not below {count})")]
    IndexOutOfRange { index: u32, count: u32 },
}

/// FNV-1a, 64 bit.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hashes_never_change() {
        // Published FNV-1a 64 test vectors: a change here would reshuffle every fleet.
        assert_eq!(fnv1a(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn every_id_belongs_to_exactly_one_shard_and_shards_are_balanced() {
        let shards: Vec<Shard> = (0..4).map(|index| Shard { index, count: 4 }).collect();
        let mut sizes = [0u32; 4];
        for i in 0..10_000 {
            let id = uuid::Uuid::now_v7().to_string() + &i.to_string();
            let owners: Vec<u32> = shards
                .iter()
                .filter(|s| s.owns(&id))
                .map(|s| s.index)
                .collect();
            assert_eq!(owners.len(), 1, "{id}");
            sizes[owners[0] as usize] += 1;
        }
        for size in sizes {
            assert!((2_200..2_800).contains(&size), "{sizes:?}");
        }
    }

    #[test]
    fn parses_and_validates() {
        assert_eq!(Shard::parse("1/3").unwrap(), Shard { index: 1, count: 3 });
        assert_eq!(
            Shard::parse("3/3").unwrap_err().to_string(),
            "shard.index must be below shard.count (3 is not below 3)"
        );
        assert!(Shard::parse("x").is_err());
        assert!(Shard::parse("0/0").is_err());
    }
}
