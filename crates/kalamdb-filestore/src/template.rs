//! Storage path templates: `{namespace}/{tableName}/{userId}` and friends.

use crate::FileStoreError;
use object_store::path::Path;

/// How many `{shard}` directories users are spread over.
pub const SHARDS: u32 = 64;

/// The `{shard}` of a scope: a stable hash (FNV-1a) of the user id, so one
/// user's files always land in the same shard. SHARED scopes use shard 0.
pub fn shard_of(user: Option<&str>) -> u32 {
    let Some(user) = user else { return 0 };
    let hash = user.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (hash % u64::from(SHARDS)) as u32
}

/// Which kind of table a template is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateKind {
    /// Must contain `{userId}`: one directory per user.
    User,
    /// Must not contain `{userId}`: one directory per table.
    Shared,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Namespace,
    TableName,
    UserId,
    Shard,
}

/// A validated template. Rendering substitutes names that were themselves
/// validated (identifiers, user ids), so no rendered segment is empty, `.`
/// or `..`, and none contains `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    text: String,
    segments: Vec<Vec<Part>>,
}

impl PathTemplate {
    pub const DEFAULT_USER: &'static str = "{namespace}/{tableName}/{userId}";
    pub const DEFAULT_SHARED: &'static str = "{namespace}/{tableName}";

    pub fn parse(text: &str, kind: TemplateKind) -> Result<Self, FileStoreError> {
        let invalid = |reason: &str| FileStoreError::InvalidTemplate {
            template: text.chars().take(200).collect(),
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(invalid("empty"));
        }
        let mut segments = Vec::new();
        for segment in text.split('/') {
            if segment.is_empty() {
                return Err(invalid(
                    "empty path segment (leading, trailing or double '/')",
                ));
            }
            if segment == "." || segment == ".." {
                return Err(invalid("'.' and '..' segments are not allowed"));
            }
            segments.push(parse_segment(segment).map_err(|r| invalid(&r))?);
        }
        let has_user = segments.iter().flatten().any(|p| *p == Part::UserId);
        match (kind, has_user) {
            (TemplateKind::User, false) => {
                return Err(invalid("USER table templates must contain {userId}"))
            }
            (TemplateKind::Shared, true) => {
                return Err(invalid("SHARED table templates cannot contain {userId}"))
            }
            _ => {}
        }
        Ok(Self {
            text: text.to_string(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Refuses a template under which two tables, or two users of one
    /// table, could get the same directory: it must name the namespace and
    /// the table (and the user, for USER tables), and two placeholders in
    /// one segment must be parted by a character their values cannot hold
    /// (`{namespace}_{tableName}` renders `a_b` + `c` and `a` + `b_c` alike;
    /// `{namespace}-{tableName}` cannot collide). Checked when a storage is
    /// created or altered; templates stored by earlier versions still load,
    /// and file names carry the table's uid, so even they never share files.
    pub fn check_distinct(&self, kind: TemplateKind) -> Result<(), FileStoreError> {
        let invalid = |reason: String| FileStoreError::InvalidTemplate {
            template: self.text.chars().take(200).collect(),
            reason,
        };
        let has = |wanted: &Part| self.segments.iter().flatten().any(|p| p == wanted);
        for (part, name) in [
            (Part::Namespace, "{namespace}"),
            (Part::TableName, "{tableName}"),
        ] {
            if !has(&part) {
                return Err(invalid(format!(
                    "the template must contain {name}, or tables would share a directory"
                )));
            }
        }
        if kind == TemplateKind::User && !has(&Part::UserId) {
            return Err(invalid("USER table templates must contain {userId}".into()));
        }
        for segment in &self.segments {
            let mut previous: Option<&Part> = None;
            let mut between = String::new();
            for part in segment {
                if let Part::Literal(text) = part {
                    between.push_str(text);
                    continue;
                }
                if let Some(before) = previous {
                    let parts = between
                        .chars()
                        .any(|c| !value_may_hold(before, c) && !value_may_hold(part, c));
                    if !parts {
                        return Err(invalid(format!(
                            "{} and {} in one path segment must be separated by a character \
                             their values cannot contain ({}), or different names could \
                             render the same path",
                            placeholder(before),
                            placeholder(part),
                            if matches!(before, Part::UserId) || matches!(part, Part::UserId) {
                                "'='"
                            } else {
                                "'-', '.' or '='"
                            }
                        )));
                    }
                }
                previous = Some(part);
                between.clear();
            }
        }
        Ok(())
    }

    /// The directory of one scope. `user` is required for USER templates.
    pub fn render(
        &self,
        namespace: &str,
        table: &str,
        user: Option<&str>,
        shard: u32,
    ) -> Result<Path, FileStoreError> {
        let mut out = Vec::with_capacity(self.segments.len());
        for segment in &self.segments {
            let mut text = String::new();
            for part in segment {
                match part {
                    Part::Literal(l) => text.push_str(l),
                    Part::Namespace => text.push_str(namespace),
                    Part::TableName => text.push_str(table),
                    Part::UserId => text.push_str(user.ok_or_else(|| {
                        FileStoreError::InvalidPath("template needs a user id".into())
                    })?),
                    Part::Shard => text.push_str(&format!("shard_{shard:04}")),
                }
            }
            if text.is_empty() || text == "." || text == ".." || text.contains('/') {
                return Err(FileStoreError::InvalidPath(format!(
                    "bad path segment '{text}'"
                )));
            }
            out.push(text);
        }
        Ok(Path::from_iter(out))
    }
}

/// Whether a rendered placeholder may contain `c`: identifiers hold
/// letters, digits and `_`; user ids also `-`, `.` and `@`; shards are
/// `shard_NNNN`.
fn value_may_hold(part: &Part, c: char) -> bool {
    match part {
        Part::UserId => c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'),
        _ => c.is_ascii_alphanumeric() || c == '_',
    }
}

fn placeholder(part: &Part) -> &'static str {
    match part {
        Part::Namespace => "{namespace}",
        Part::TableName => "{tableName}",
        Part::UserId => "{userId}",
        Part::Shard => "{shard}",
        Part::Literal(_) => "a literal",
    }
}

fn parse_segment(segment: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = segment;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('{') {
            let (name, tail) = after.split_once('}').ok_or("unclosed '{'")?;
            parts.push(match name {
                "namespace" => Part::Namespace,
                "tableName" => Part::TableName,
                "userId" => Part::UserId,
                "shard" => Part::Shard,
                other => return Err(format!("unknown placeholder {{{other}}}")),
            });
            rest = tail;
        } else {
            let (literal, tail) = rest.split_at(rest.find('{').unwrap_or(rest.len()));
            if !literal
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '='))
            {
                return Err(format!(
                    "'{literal}': only letters, digits and _ - . = are allowed outside placeholders"
                ));
            }
            parts.push(Part::Literal(literal.to_string()));
            rest = tail;
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_render() {
        let user = PathTemplate::parse(PathTemplate::DEFAULT_USER, TemplateKind::User).unwrap();
        assert_eq!(
            user.render("app", "messages", Some("alice"), 0)
                .unwrap()
                .as_ref(),
            "app/messages/alice"
        );
        let shared =
            PathTemplate::parse(PathTemplate::DEFAULT_SHARED, TemplateKind::Shared).unwrap();
        assert_eq!(
            shared.render("app", "config", None, 0).unwrap().as_ref(),
            "app/config"
        );
        let sharded = PathTemplate::parse(
            "data/{namespace}-{tableName}/{shard}/u={userId}",
            TemplateKind::User,
        )
        .unwrap();
        assert_eq!(
            sharded.render("a", "t", Some("bob"), 7).unwrap().as_ref(),
            "data/a-t/shard_0007/u=bob"
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        for (text, kind) in [
            ("", TemplateKind::Shared),
            ("{namespace}/{tableName}", TemplateKind::User),
            ("{namespace}/{userId}", TemplateKind::Shared),
            ("../{userId}", TemplateKind::User),
            ("/{userId}", TemplateKind::User),
            ("{userId}/", TemplateKind::User),
            ("a//{userId}", TemplateKind::User),
            ("{userid}", TemplateKind::User),
            ("{userId", TemplateKind::User),
            ("x y/{userId}", TemplateKind::User),
            ("a\\b/{userId}", TemplateKind::User),
        ] {
            assert!(
                PathTemplate::parse(text, kind).is_err(),
                "{text:?} accepted"
            );
        }
    }

    #[test]
    fn templates_that_could_collide_are_refused() {
        for (text, kind) in [
            ("{namespace}/{userId}", TemplateKind::User),
            ("{tableName}/{userId}", TemplateKind::User),
            ("flat", TemplateKind::Shared),
            ("{namespace}", TemplateKind::Shared),
            ("{namespace}_{tableName}/{userId}", TemplateKind::User),
            ("{namespace}{tableName}/{userId}", TemplateKind::User),
            ("{namespace}/{tableName}{userId}", TemplateKind::User),
            ("{namespace}/{tableName}-{userId}", TemplateKind::User),
            (
                "{namespace}/{tableName}/x{shard}_{userId}",
                TemplateKind::User,
            ),
        ] {
            let template = PathTemplate::parse(text, kind).unwrap();
            assert!(template.check_distinct(kind).is_err(), "{text:?} accepted");
        }
        for (text, kind) in [
            (PathTemplate::DEFAULT_USER, TemplateKind::User),
            (PathTemplate::DEFAULT_SHARED, TemplateKind::Shared),
            ("{namespace}-{tableName}/{userId}", TemplateKind::User),
            (
                "{namespace}.{tableName}/{shard}/u={userId}",
                TemplateKind::User,
            ),
            (
                "{tableName}=x{namespace}/{userId}={shard}",
                TemplateKind::User,
            ),
            ("data/{namespace}/{tableName}", TemplateKind::Shared),
        ] {
            let template = PathTemplate::parse(text, kind).unwrap();
            template.check_distinct(kind).unwrap();
        }
    }

    #[test]
    fn rendering_refuses_values_that_would_escape() {
        let t = PathTemplate::parse(PathTemplate::DEFAULT_USER, TemplateKind::User).unwrap();
        assert!(t.render("app", "t", Some(".."), 0).is_err());
        assert!(t.render("app", "t", Some("a/b"), 0).is_err());
        assert!(t.render("app", "t", None, 0).is_err());
    }
}
