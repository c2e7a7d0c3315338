//! Short quotes of user text (a statement, a message type) inside error
//! messages: bounded, so an error never echoes megabytes back, and cut
//! between words, so what is quoted is never a misleading half word.

/// At most `max_chars` characters of `text` (whitespace runs count as
/// one space), ending at a word boundary, with `…` when anything was left
/// out. A first word longer than the bound is cut inside it, and marked.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        let sep = usize::from(!out.is_empty());
        if used + sep + len > max_chars {
            if out.is_empty() {
                out.extend(word.chars().take(max_chars));
            }
            out.push('…');
            return out;
        }
        if sep == 1 {
            out.push(' ');
        }
        out.push_str(word);
        used += sep + len;
    }
    out
}

/// At most `max_chars` characters of a value (kept exactly as written,
/// spaces included), with `…` when it was longer.
pub fn clip(text: &str, max_chars: usize) -> String {
    let mut chars = text.chars();
    let mut out: String = chars.by_ref().take(max_chars).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{clip, excerpt};

    #[test]
    fn clip_keeps_a_value_as_written_and_marks_the_cut() {
        assert_eq!(clip("a  b", 10), "a  b");
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("abc", 3), "abc");
    }

    #[test]
    fn cuts_between_words_and_marks_the_cut() {
        assert_eq!(excerpt("CREATE TABLE x", 40), "CREATE TABLE x");
        assert_eq!(
            excerpt("GRANT SELECT ON app.messages TO alice", 20),
            "GRANT SELECT ON…"
        );
        assert_eq!(excerpt("a  \n b", 10), "a b");
        assert_eq!(excerpt("abcdefghij", 4), "abcd…");
        assert_eq!(excerpt("", 4), "");
        // Characters, not bytes: never a split code point.
        assert_eq!(excerpt("ééé ééé", 5), "ééé…");
    }
}
