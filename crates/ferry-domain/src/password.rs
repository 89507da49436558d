//! Dashboard passwords: what a new one must be. Hashing and checking them is the server's
//! (argon2); the rules are here, without I/O, and never quote the password.

/// The shortest password: long enough that guessing it online, at the rate logins are
/// allowed, takes longer than anyone waits.
pub const MIN_CHARS: usize = 12;
/// The longest: hashing is costly by design, and a megabyte to hash would be a cheap way to
/// keep a server busy.
pub const MAX_BYTES: usize = 1024;

/// Refuses a password shorter than [`MIN_CHARS`] characters, longer than [`MAX_BYTES`]
/// bytes, holding control characters (a pasted newline), or made of one repeated character.
pub fn check_new_password(password: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err(format!(
            "the password has {chars} characters: use at least {MIN_CHARS} (a few words are easy to remember)"
        ));
    }
    if password.len() > MAX_BYTES {
        return Err(format!(
            "the password is {} bytes: at most {MAX_BYTES}",
            password.len()
        ));
    }
    if password.chars().any(char::is_control) {
        return Err(
            "the password holds a control character (a newline or a tab pasted with it?): type it again, or give it once, on one line, on standard input"
                .to_owned(),
        );
    }
    let mut chars = password.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return Err("the password repeats one character: choose another".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_passwords_are_long_enough_and_never_quoted() {
        for good in [
            "correct horse battery",
            "twelve chars",
            "ünïcödé-pässwörd",
            &"x1".repeat(512),
        ] {
            assert_eq!(check_new_password(good), Ok(()), "{good:?}");
        }
        for (bad, says) in [
            ("", "has 0 characters"),
            ("short one", "has 9 characters: use at least 12"),
            ("ääääääääääää", "repeats one character"),
            ("aaaaaaaaaaaaaaaaaa", "repeats one character"),
            ("has a newline\n", "control character"),
            ("tab\tinside it", "control character"),
            (&"x1".repeat(513), "at most 1024"),
        ] {
            let error = check_new_password(bad).unwrap_err();
            assert!(error.contains(says), "{bad:?}: {error}");
            if !bad.is_empty() && bad.len() < 100 {
                assert!(!error.contains(bad.trim()), "{error}");
            }
        }
    }
}
