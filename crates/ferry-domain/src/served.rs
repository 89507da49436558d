//! What a target serves: a release with the configuration revision delivered with it.
//! Written as one label, `VERSION` (revision 0: no configuration) or `VERSION@N`, where a
//! deployment remembers what each target served before it (to go back to that exact pair)
//! and in the releases a rollback may go back to; `@` is not in the version alphabet, so a
//! label reads back unambiguously, and a label ferry stored before configuration existed
//! reads as revision 0.

use std::fmt;

/// A release and the configuration revision delivered with it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Served {
    pub version: String,
    /// 0: no configuration.
    pub config: u64,
}

impl Served {
    pub fn new(version: impl Into<String>, config: u64) -> Served {
        Served {
            version: version.into(),
            config,
        }
    }

    /// `VERSION`, or `VERSION@N` for revision N.
    pub fn label(&self) -> String {
        match self.config {
            0 => self.version.clone(),
            n => format!("{}@{n}", self.version),
        }
    }

    /// Reads a label back: `VERSION@N` with N a positive number is revision N; anything
    /// else is a version with revision 0.
    pub fn parse(label: &str) -> Served {
        if let Some((version, n)) = label.rsplit_once('@') {
            if let Ok(config) = n.parse::<u64>() {
                if config > 0 && !n.starts_with('0') && !n.starts_with('+') {
                    return Served::new(version, config);
                }
            }
        }
        Served::new(label, 0)
    }
}

/// For people: `1.2.0`, or `1.2.0 with configuration 3`.
impl fmt::Display for Served {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.config {
            0 => f.write_str(&self.version),
            n => write!(f, "{} with configuration {n}", self.version),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_back() {
        for (label, version, config) in [
            ("1.2.0", "1.2.0", 0),
            ("1.2.0@3", "1.2.0", 3),
            ("1.0+build.7@12", "1.0+build.7", 12),
            ("1.2.0@0", "1.2.0@0", 0),
            ("1.2.0@03", "1.2.0@03", 0),
            ("1.2.0@+3", "1.2.0@+3", 0),
            ("1.2.0@x", "1.2.0@x", 0),
            ("1.2.0@", "1.2.0@", 0),
        ] {
            let served = Served::parse(label);
            assert_eq!(served, Served::new(version, config), "{label}");
            if served.config > 0 || !label.contains('@') {
                assert_eq!(served.label(), label);
            }
        }
        assert_eq!(
            Served::new("1.0", 2).to_string(),
            "1.0 with configuration 2"
        );
        assert_eq!(Served::new("1.0", 0).to_string(), "1.0");
    }
}
