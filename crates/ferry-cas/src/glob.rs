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

    /// Whether `path` matches. Takes at most the product of the lengths of the pattern and
    /// the path steps at each level, whatever the pattern: a release's `ferry.toml` chooses
    /// it, and the agent matches it against every path of a tree.
    pub fn matches(&self, path: &str) -> bool {
        let path: Vec<&str> = path.split('/').collect();
        wildcard_match(
            &self.components,
            &path,
            |component| component == "**",
            |component, name| match_component(component, name),
        )
    }
}

fn match_component(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    wildcard_match(&pattern, &name, |c| *c == '*', |c, n| *c == '?' || c == n)
}

/// Whether `items` match `pattern`, where a star (`is_star`) matches any run of items, none
/// included, and any other element matches one item when `one` says so. Only the latest star
/// is ever backtracked to: a later star can take whatever an earlier one would have, so an
/// earlier star's choice never needs revisiting (where trying every choice of every star
/// takes exponential time).
fn wildcard_match<P, T>(
    pattern: &[P],
    items: &[T],
    is_star: impl Fn(&P) -> bool,
    one: impl Fn(&P, &T) -> bool,
) -> bool {
    let (mut p, mut i) = (0, 0);
    // The pattern after the latest star, and the first item that star has not taken.
    let mut latest_star: Option<(usize, usize)> = None;
    while i < items.len() {
        if p < pattern.len() && is_star(&pattern[p]) {
            p += 1;
            latest_star = Some((p, i));
        } else if p < pattern.len() && one(&pattern[p], &items[i]) {
            p += 1;
            i += 1;
        } else if let Some((after_star, taken)) = latest_star {
            // The star takes one more item, and the rest of the pattern starts again after it.
            latest_star = Some((after_star, taken + 1));
            p = after_star;
            i = taken + 1;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(is_star)
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

    /// Found by fuzzing (`fuzz/fuzz_targets/texts.rs`): trying every choice of every star
    /// took exponential time, so a `ferry.toml` could hang its own staging on a target.
    #[test]
    fn many_stars_are_matched_without_trying_every_choice() {
        let cases = [
            (
                "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b".to_owned(),
                "a".repeat(47),
                false,
            ),
            ("**/".repeat(10) + "x", ["a"; 40].join("/"), false),
            ("**/".repeat(10) + "x", ["a"; 40].join("/") + "/x", true),
            (
                "*a*a*a*a*a*a*a*a*a*a*a*a*a*a".to_owned(),
                "a".repeat(47),
                true,
            ),
        ];
        for (pattern, path, expected) in cases {
            assert_eq!(
                Glob::new(&pattern).unwrap().matches(&path),
                expected,
                "{pattern}"
            );
        }
    }

    /// The matching agrees with the plain definition, trying every choice of every star,
    /// on every short pattern and name (or path) over a small alphabet.
    #[test]
    fn matching_agrees_with_trying_every_choice() {
        fn every_choice<P: PartialEq + Copy>(pattern: &[P], items: &[P], star: P, any: P) -> bool {
            match pattern.split_first() {
                None => items.is_empty(),
                Some((p, rest)) if *p == star => {
                    (0..=items.len()).any(|skip| every_choice(rest, &items[skip..], star, any))
                }
                Some((p, rest)) => items.split_first().is_some_and(|(i, items)| {
                    (*p == any || p == i) && every_choice(rest, items, star, any)
                }),
            }
        }
        fn words(alphabet: &[char], longest: usize) -> Vec<String> {
            let mut words = vec![String::new()];
            for len in 1..=longest {
                let shorter: Vec<String> = words
                    .iter()
                    .filter(|w| w.chars().count() == len - 1)
                    .cloned()
                    .collect();
                for word in shorter {
                    words.extend(alphabet.iter().map(|c| format!("{word}{c}")));
                }
            }
            words
        }
        let names = words(&['a', 'é'], 4);
        for pattern in words(&['a', 'é', '*', '?'], 4) {
            let chars: Vec<char> = pattern.chars().collect();
            for name in &names {
                let name_chars: Vec<char> = name.chars().collect();
                let expected = every_choice(&chars, &name_chars, '*', '?');
                assert_eq!(
                    match_component(&pattern, name),
                    expected,
                    "{pattern} vs {name}"
                );
            }
        }
        // Paths: components `a`, `b` and `**` in patterns.
        let paths = words(&['a', 'b'], 4);
        for pattern in words(&['a', 'b', '*'], 4) {
            let Some(glob) = Glob::new(
                &pattern
                    .replace('*', "**/")
                    .replace('a', "a/")
                    .replace('b', "b/"),
            ) else {
                continue;
            };
            let pattern: Vec<char> = pattern.chars().collect();
            for path in paths.iter().filter(|p| !p.is_empty()) {
                let steps: Vec<char> = path.chars().collect();
                let joined = steps
                    .iter()
                    .map(char::to_string)
                    .collect::<Vec<_>>()
                    .join("/");
                // '?' never occurs here: `**` components and names only.
                let expected = every_choice(&pattern, &steps, '*', '?');
                assert_eq!(glob.matches(&joined), expected, "{glob:?} vs {joined}");
            }
        }
    }
}
