//! Validation of user input: display names, room names, message bodies.
//! Pure; both builds (the server enforces it, the client may pre-check).
//! Each function returns the normalized value or a `Validation` error.

use crate::error::AppError;

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 32;

fn has_control(s: &str, allow_newlines: bool) -> bool {
    s.chars()
        .any(|c| c.is_control() && !(allow_newlines && (c == '\n' || c == '\t')))
}

/// A short single-line name (`what`): trimmed, 1..=`max` characters, no
/// control characters. Display names and room names follow this rule.
fn short_name(raw: &str, max: usize, what: &str) -> Result<String, AppError> {
    let name = raw.trim();
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
    Ok(name.to_owned())
}

/// A display name: trimmed, 1..=32 characters, no control characters.
pub fn display_name(raw: &str) -> Result<String, AppError> {
    short_name(raw, MAX_DISPLAY_NAME_CHARS, "display name")
}

/// A room name: trimmed, 1..=`max` characters, no control characters.
pub fn room_name(raw: &str, max: usize) -> Result<String, AppError> {
    short_name(raw, max, "room name")
}

/// A message body: CRLF turned into LF first (so a CRLF counts as one
/// character), then leading/trailing whitespace trimmed, then 1..=`max`
/// characters; newlines and tabs allowed, other control characters
/// (including a lone CR) refused.
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
