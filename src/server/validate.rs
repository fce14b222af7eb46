//! Validation of user input (ssr only): display names, room names, message
//! bodies. Each function returns the normalised value or a `Validation` error.
//!
//! Names are normalised to NFKC (so a fullwidth `Ａ` is an `A`), and names
//! with format characters (zero-width joiners and spaces, bidirectional
//! overrides, the byte-order mark: Unicode category Cf) are refused, so that
//! `ad\u{200B}min` or a right-to-left override cannot pass for another name.
//! Names that must be unique (rooms) are compared by their confusable
//! skeleton (UTS #39, `skeleton`), so `раураl` in Cyrillic and `paypal` are
//! the same name.

use crate::error::AppError;
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 32;

fn has_control(s: &str, allow_newlines: bool) -> bool {
    s.chars()
        .any(|c| c.is_control() && !(allow_newlines && (c == '\n' || c == '\t')))
}

fn has_format(s: &str) -> bool {
    s.chars()
        .any(|c| c.general_category() == GeneralCategory::Format)
}

/// A short single-line name (`what`): NFKC, trimmed, 1..=`max` characters,
/// no control or format characters. Display names and room names follow
/// this rule.
fn short_name(raw: &str, max: usize, what: &str) -> Result<String, AppError> {
    let normalized: String = raw.nfkc().collect();
    let name = normalized.trim();
    let len = name.chars().count();
    if len == 0 || len > max {
        return Err(AppError::Validation(format!(
            "a {what} has 1 to {max} characters"
        )));
    }
    if has_control(name, false) {
        return Err(AppError::Validation(format!(
            "a {what} cannot contain control characters"
        )));
    }
    if has_format(name) {
        return Err(AppError::Validation(format!(
            "a {what} cannot contain invisible formatting characters"
        )));
    }
    Ok(name.to_owned())
}

/// A display name: NFKC, trimmed, 1..=32 characters, no control or format characters.
pub fn display_name(raw: &str) -> Result<String, AppError> {
    short_name(raw, MAX_DISPLAY_NAME_CHARS, "display name")
}

/// A room name: NFKC, trimmed, 1..=`max` characters, no control or format characters.
pub fn room_name(raw: &str, max: usize) -> Result<String, AppError> {
    short_name(raw, max, "room name")
}

/// The key two names are the same under: the confusable skeleton (UTS #39)
/// of the lower-cased name. Names that look alike have the same key.
pub fn name_key(name: &str) -> String {
    let lower = name.to_lowercase();
    let skeleton: String = unicode_security::skeleton(&lower).collect();
    // The skeleton may map to upper-case look-alikes: fold again.
    skeleton.to_lowercase()
}

/// A message body: CRLF turned into LF first (so a CRLF counts as one
/// character), then leading/trailing whitespace trimmed, then 1..=`max`
/// characters; newlines and tabs allowed, other control characters
/// (including a lone CR) refused. Bodies are not normalised: they are shown
/// as written (a format character in a body is text, not a name).
pub fn message_body(raw: &str, max: usize) -> Result<String, AppError> {
    let normalized = raw.replace("\r\n", "\n");
    let body = normalized.trim();
    if body.is_empty() {
        return Err(AppError::Validation("a message cannot be empty".into()));
    }
    if body.chars().count() > max {
        return Err(AppError::Validation(format!(
            "a message has at most {max} characters"
        )));
    }
    if has_control(body, true) {
        return Err(AppError::Validation(
            "a message cannot contain control characters".into(),
        ));
    }
    Ok(body.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names() {
        assert_eq!(display_name("  Ada  "), Ok("Ada".into()));
        assert_eq!(display_name("Zoë 李"), Ok("Zoë 李".into()));
        assert!(display_name("   ").is_err());
        assert!(display_name(&"x".repeat(33)).is_err());
        assert!(
            display_name(&"é".repeat(32)).is_ok(),
            "counted in characters, not bytes"
        );
        assert!(display_name("a\u{0}b").is_err());
    }

    #[test]
    fn names_are_nfkc_and_refuse_format_characters() {
        assert_eq!(
            display_name("Ａｄａ"),
            Ok("Ada".into()),
            "fullwidth folds to ASCII"
        );
        assert_eq!(
            display_name("Zoe\u{0308}"),
            Ok("Zoë".into()),
            "composed, one character"
        );
        for hidden in [
            "ad\u{200B}min", // zero-width space
            "ad\u{200D}min", // zero-width joiner
            "\u{202E}nimda", // right-to-left override
            "admin\u{2066}", // left-to-right isolate
            "\u{FEFF}admin", // byte-order mark
            "ad\u{00AD}min", // soft hyphen
        ] {
            assert!(display_name(hidden).is_err(), "{hidden:?}");
            assert!(room_name(hidden, 64).is_err(), "{hidden:?}");
        }
    }

    #[test]
    fn look_alike_names_share_a_key() {
        assert_eq!(name_key("paypal"), name_key("раураl"), "Cyrillic а, р, у");
        assert_eq!(name_key("General"), name_key("general"));
        assert_eq!(name_key("rn"), name_key("m"), "r+n looks like m");
        assert_ne!(name_key("general"), name_key("random"));
    }

    #[test]
    fn room_names() {
        assert_eq!(room_name(" general ", 64), Ok("general".into()));
        assert!(room_name("", 64).is_err());
        assert!(room_name(&"r".repeat(65), 64).is_err());
        assert!(room_name("a\nb", 64).is_err());
    }

    #[test]
    fn message_bodies() {
        assert_eq!(message_body(" hi\nthere ", 10), Ok("hi\nthere".into()));
        assert_eq!(
            message_body("a\r\nb", 10),
            Ok("a\nb".into()),
            "CRLF from a textarea"
        );
        assert!(
            message_body("a\rb", 10).is_err(),
            "a lone CR is a control character"
        );
        assert!(message_body(" \n ", 10).is_err());
        assert!(message_body(&"m".repeat(11), 10).is_err());
        assert!(message_body("bell\u{7}", 10).is_err());
        let crlf = "ab\r\n".repeat(600);
        assert_eq!(crlf.chars().count(), 2400);
        assert_eq!(
            message_body(&crlf, 2000).map(|b| b.chars().count()),
            Ok(1799),
            "counted after CRLF became LF (and the last one was trimmed)"
        );
        assert_eq!(
            message_body("<script>", 10),
            Ok("<script>".into()),
            "markup is text; the view escapes it"
        );
    }
}
