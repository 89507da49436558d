//! Closed sets of words ferry stores and shows (a deployment's status, an incident's
//! severity, …) as enums with one name each: the same name on the wire (serde), in the
//! database (TEXT) and on the command line. A name ferry does not know is an error, never a
//! default.

/// A word that is not one of the names a vocabulary knows.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}: use {expected}")]
pub struct UnknownWord {
    /// What kind of word was expected, like `severity`.
    pub what: &'static str,
    /// What was given.
    pub value: String,
    /// The names that are known, as a sentence: `a, b or c`.
    pub expected: String,
}

/// `a`, `a or b`, `a, b or c`.
pub fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// Declares a fieldless enum whose variants each have one name: `ALL`, `as_str`, `parse`
/// (an unknown name is an [`UnknownWord`]), `Display`, `FromStr`, and serde (plus an
/// OpenAPI schema with the feature `openapi`) with the same names.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            // `tt`, not `literal`: the OpenAPI schema's derive reads `rename` only from a
            // plain string token, and a `literal` fragment reaches it wrapped.
            $( $(#[$variant_meta:meta])* $variant:ident = $text:tt, )+
        }
    ) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$variant_meta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value's name as ferry stores and shows it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// Reads a name as ferry stores and shows it; an unknown one is an error.
            pub fn parse(text: &str) -> Result<$name, $crate::vocabulary::UnknownWord> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|value| value.as_str() == text)
                    .ok_or_else(|| $crate::vocabulary::UnknownWord {
                        what: $what,
                        value: text.to_owned(),
                        expected: $crate::vocabulary::one_of(&[$($text),+]),
                    })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::vocabulary::UnknownWord;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                $name::parse(text)
            }
        }
    };
}

pub(crate) use vocabulary;

#[cfg(test)]
mod tests {
    use super::*;

    vocabulary! {
        /// A test vocabulary.
        enum Colour ("colour") {
            Red = "red",
            DarkBlue = "dark-blue",
            Green = "green",
        }
    }

    #[test]
    fn every_name_reads_back_as_its_value() {
        for colour in Colour::ALL {
            assert_eq!(Colour::parse(colour.as_str()), Ok(*colour));
            let json = serde_json::to_string(colour).unwrap();
            assert_eq!(json, format!("\"{colour}\""));
            assert_eq!(serde_json::from_str::<Colour>(&json).unwrap(), *colour);
        }
    }

    #[test]
    fn an_unknown_name_is_an_error_that_lists_the_known_ones() {
        let cases = [
            ("", "unknown colour \"\": use red, dark-blue or green"),
            ("Red", "unknown colour \"Red\": use red, dark-blue or green"),
            (
                "dark_blue",
                "unknown colour \"dark_blue\": use red, dark-blue or green",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(Colour::parse(text).unwrap_err().to_string(), message);
            assert!(serde_json::from_str::<Colour>(&format!("\"{text}\"")).is_err());
        }
    }

    #[test]
    fn one_of_reads_as_a_sentence() {
        let cases: [(&[&str], &str); 4] = [
            (&[], ""),
            (&["a"], "a"),
            (&["a", "b"], "a or b"),
            (&["a", "b", "c"], "a, b or c"),
        ];
        for (names, sentence) in cases {
            assert_eq!(one_of(names), sentence);
        }
    }
}
