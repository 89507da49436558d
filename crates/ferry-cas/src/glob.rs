//! The patterns of `ignore` in `ferry.toml`, matched against `/`-separated release paths:
//! `*` matches within one path component, `?` one character, and a `**` component any
//! number of components (so `cache/**` covers `cache` itself and everything below it).

/// A compiled `ignore` pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    components: Vec<String>,
}

impl Glob {
    /// Compiles a pattern; `None` for an empty one.
    pub fn new(pattern: &str) -> Option<Glob> {
        let components: Vec<String> = pattern
            .split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        (!components.is_empty()).then_some(Glob { components })
    }

    /// Whether `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        let path: Vec<&str> = path.split('/').collect();
        let pattern: Vec<&str> = self.components.iter().map(String::as_str).collect();
        match_components(&pattern, &path)
    }
}

fn match_components(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| match_components(rest, &path[skip..])),
        Some((first, rest)) => match path.split_first() {
            Some((name, path_rest)) => {
                match_component(first.as_bytes(), name.as_bytes())
                    && match_components(rest, path_rest)
            }
            None => false,
        },
    }
}

fn match_component(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| match_component(rest, &name[skip..])),
        Some((b'?', rest)) => !name.is_empty() && match_component(rest, &name[1..]),
        Some((c, rest)) => name.first() == Some(c) && match_component(rest, &name[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let cases = [
            ("cache/**", "cache", true),
            ("cache/**", "cache/a/b", true),
            ("cache/**", "cached", false),
            ("*.log", "app.log", true),
            ("*.log", "logs/app.log", false),
            ("**/*.log", "logs/app.log", true),
            ("**/*.log", "app.log", true),
            ("tmp/?.pid", "tmp/1.pid", true),
            ("tmp/?.pid", "tmp/12.pid", false),
            ("var/*/sessions", "var/x/sessions", true),
            ("var/*/sessions", "var/x/y/sessions", false),
            ("exact", "exact", true),
            ("exact", "exact/child", false),
        ];
        for (pattern, path, expected) in cases {
            assert_eq!(
                Glob::new(pattern).unwrap().matches(path),
                expected,
                "{pattern} vs {path}"
            );
        }
        assert_eq!(Glob::new(""), None);
    }
}
