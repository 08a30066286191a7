//! What the domain types' tests share: a parse table, one row a line.

use std::fmt::Display;

use super::Invalid;

/// What one raw string becomes: `Ok` with the parsed value's spelling, or
/// `Err` with words the refusal's reason must contain (`""`: any refusal).
pub(super) type Parsed = Result<&'static str, &'static str>;

/// Parses the input of every row and checks it against the row's [`Parsed`].
pub(super) fn check_parse<T: Display>(
    parse: impl Fn(&str) -> Result<T, Invalid>,
    rows: &[(&str, Parsed)],
) {
    for (input, want) in rows {
        match (parse(input), want) {
            (Ok(value), Ok(spelling)) => assert_eq!(value.to_string(), *spelling, "{input:?}"),
            (Err(e), Err(words)) => {
                assert!(
                    e.reason().contains(words),
                    "{input:?}: {e} does not say {words:?}"
                )
            }
            (Ok(value), Err(_)) => panic!("{input:?} parsed as {value}, want {want:?}"),
            (Err(e), Ok(_)) => panic!("{input:?} refused ({e}), want {want:?}"),
        }
    }
}
