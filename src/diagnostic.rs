//! Errors about what a user wrote: where (file, line, column, key path), what was expected, and a
//! suggestion when a name looks misspelt. One type for config files, profiles and `--set`.

use std::fmt;

/// One problem in a user's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// File name, or a description such as `--set swap.size=2X`.
    pub origin: String,
    /// 1-based line and column, when known.
    pub position: Option<(usize, usize)>,
    /// Dotted key path such as `user.users[0].name`; empty for the document root.
    pub path: String,
    /// What is wrong, and what was expected.
    pub message: String,
    /// "did you mean" and similar hints.
    pub help: Option<String>,
    /// The offending source line, shown with a caret under the column.
    pub excerpt: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with only an origin and a message; the builders below add the rest.
    pub fn new(origin: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            origin: origin.into(),
            position: None,
            path: String::new(),
            message: message.into(),
            help: None,
            excerpt: None,
        }
    }

    /// Builds a diagnostic from a serde_norway error, splitting its `path: message at line L
    /// column C` text into parts and adding a suggestion for unknown keys.
    pub fn from_yaml(origin: &str, source: Option<&str>, err: &serde_norway::Error) -> Self {
        let mut text = err.to_string();
        let location = err.location().map(|l| (l.line(), l.column()));
        if let Some((line, column)) = location {
            let suffix = format!(" at line {line} column {column}");
            if let Some(stripped) = text.strip_suffix(&suffix) {
                text = stripped.to_string();
            }
        }
        let (mut path, message) = split_path(&text);
        let message = without_rust_type_names(message);
        let mut position = location;
        // Errors raised by a value's own validation carry the parent's path but the key's
        // position: complete the path from the source.
        // In a list entry serde_norway points at the entry, not the field: find the line that
        // holds the rejected value.
        if let (Some(source), Some((line, _))) = (source, position)
            && let Some(found) = rejected_value_line(source, line, &message)
        {
            position = Some(found);
        }
        if let (Some(source), Some((line, column))) = (source, position)
            && let Some(key) = key_at(source, line, column)
            && !message.starts_with("unknown field")
        {
            if path.rsplit('.').next() != Some(key) {
                path = if path.is_empty() {
                    key.to_string()
                } else {
                    format!("{path}.{key}")
                };
            }
            // Point at the value, not its key.
            let after = &source.lines().nth(line - 1).unwrap_or("")[column - 1..];
            let value_at = after
                .find(':')
                .map(|i| i + 1 + after[i + 1..].len() - after[i + 1..].trim_start().len());
            position = Some((line, column + value_at.unwrap_or(0)));
        }
        let mut diagnostic = Diagnostic::new(origin, message);
        diagnostic.path = path;
        diagnostic.position = position;
        diagnostic.help = suggestion_for_unknown(&diagnostic.message);
        if let (Some(source), Some((line, _))) = (source, position) {
            diagnostic.excerpt = source.lines().nth(line - 1).map(str::to_string);
        }
        diagnostic
    }

    /// Sets the key path. For an unknown key the path names its parent, since the message
    /// already names the key.
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        if let Some(field) = self
            .message
            .strip_prefix("unknown field `")
            .and_then(|r| r.split('`').next())
            && let Some(parent) = self.path.strip_suffix(&format!(".{field}"))
        {
            self.path = parent.to_string();
        }
        self
    }

    /// Adds a hint such as "did you mean ...?".
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Points the diagnostic at `path` inside `source`, when the key can be found there.
    pub fn located_in(mut self, source: &str) -> Self {
        if let Some((line, column)) = locate_key(source, &self.path) {
            self.position = Some((line, column));
            self.excerpt = source.lines().nth(line - 1).map(str::to_string);
        }
        self
    }
}

impl Diagnostic {
    /// The diagnostic as text: `origin:line:column: path: message`, the source line with a caret
    /// under the spot, and the suggestion. With `color`, ANSI colours mark the parts.
    pub fn render(&self, color: bool) -> String {
        let paint = Paint(color);
        let mut out = String::new();
        let mut location = self.origin.clone();
        if let Some((line, column)) = self.position {
            location.push_str(&format!(":{line}:{column}"));
        }
        out.push_str(&paint.bold(&location));
        if !self.path.is_empty() {
            out.push_str(&format!(": {}", paint.bold(&self.path)));
        }
        out.push_str(&format!(": {}", self.message));
        if let (Some(excerpt), Some((line, column))) = (&self.excerpt, self.position) {
            let gutter = line.to_string().len();
            let bar = paint.blue("|");
            out.push_str(&format!(
                "\n {:gutter$} {bar}\n {} {bar} {excerpt}\n {:gutter$} {bar} {}{}",
                "",
                paint.blue(&line.to_string()),
                "",
                " ".repeat(column.saturating_sub(1)),
                paint.red("^"),
            ));
        }
        if let Some(help) = &self.help {
            out.push_str(&format!("\n  {}: {help}", paint.cyan("help")));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl std::error::Error for Diagnostic {}

/// Several diagnostics reported together; `phanes` prints each with its own `error:` line.
#[derive(Debug)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                // Each further problem on its own `error:` line, as `render_error` prints them.
                write!(f, "\nerror: ")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

/// ANSI styling that is a no-op when colour is off.
#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn style(self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn bold(self, text: &str) -> String {
        self.style("1", text)
    }
    fn red(self, text: &str) -> String {
        self.style("1;31", text)
    }
    fn blue(self, text: &str) -> String {
        self.style("1;34", text)
    }
    fn cyan(self, text: &str) -> String {
        self.style("1;36", text)
    }
}

/// Whether errors on stderr get colour: only on a terminal, and never when `NO_COLOR` is set to
/// anything but the empty string (<https://no-color.org>).
pub fn color_stderr() -> bool {
    use std::io::IsTerminal;
    color_allowed(
        std::env::var_os("NO_COLOR").as_deref(),
        std::io::stderr().is_terminal(),
    )
}

/// The colour rule, apart from the environment, so it can be tested.
pub fn color_allowed(no_color: Option<&std::ffi::OsStr>, terminal: bool) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Renders any error for stderr. Diagnostics (one or several, anywhere in the chain) are printed
/// each with its own `error:` line and a count at the end; anything else as `error: ` and its
/// chain of causes.
pub fn render_error(error: &anyhow::Error, color: bool) -> String {
    let paint = Paint(color);
    let label = paint.red("error");
    let list: Option<Vec<&Diagnostic>> = error.chain().find_map(|cause| {
        cause
            .downcast_ref::<Diagnostics>()
            .map(|all| all.0.iter().collect())
            .or_else(|| cause.downcast_ref::<Diagnostic>().map(|one| vec![one]))
    });
    let Some(list) = list.filter(|l| !l.is_empty()) else {
        return format!("{label}: {error:#}\n");
    };
    let mut out = String::new();
    for (i, diagnostic) in list.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("{label}: {}\n", diagnostic.render(color)));
    }
    if list.len() > 1 {
        out.push_str(&format!("\n{label}: {} problems found\n", list.len()));
    }
    out
}

/// The mapping key written at a 1-based position (`key: value`), if there is one.
/// The (line, column of the key) of the first `key: VALUE` line at or after `line` whose value
/// is the one an `invalid ... "VALUE"` or `VALUE is out of range` message names.
fn rejected_value_line(source: &str, line: usize, message: &str) -> Option<(usize, usize)> {
    let value = match message.split_once(" is out of range") {
        Some((number, _)) if !number.contains(' ') => number,
        _ => {
            let (head, rest) = message.split_once('"')?;
            if !head.starts_with("invalid ") {
                return None;
            }
            &rest[..rest.find('"')?]
        }
    };
    if value.is_empty() || value.contains('\\') {
        return None;
    }
    source
        .lines()
        .enumerate()
        .skip(line.checked_sub(1)?)
        .take(100)
        .find_map(|(i, text)| {
            // `key: VALUE`, `key: "VALUE"` or `key: 'VALUE'`, in block or flow style.
            let at = text.find(value)?;
            let before = text[..at].trim_end_matches(['"', '\'']).trim_end();
            let before = before.strip_suffix(':')?;
            let key_start = before
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                .map_or(0, |p| p + 1);
            let after = &text[at + value.len()..];
            let after = after.trim_start_matches(['"', '\'']).trim_start();
            let ends = after.is_empty() || after.starts_with([',', '}', '#']);
            (key_start < before.len() && ends).then_some((i + 1, key_start + 1))
        })
}

fn key_at(source: &str, line: usize, column: usize) -> Option<&str> {
    let text = source
        .lines()
        .nth(line.checked_sub(1)?)?
        .get(column.checked_sub(1)?..)?;
    let text = text.strip_prefix("- ").unwrap_or(text);
    let (key, _) = text.split_once(':')?;
    let valid = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    valid.then_some(key)
}

/// serde_norway prefixes messages with the key path when there is one (`swap.size: invalid ...`).
/// A path never contains a space; serde's own message heads ("invalid type") do.
/// serde names the Rust struct it expected (`expected struct Settings`); users wrote YAML, so
/// say what the YAML should have been: a whole config, a profile, or a mapping of options.
fn without_rust_type_names(message: String) -> String {
    let Some((found, name)) = message
        .strip_prefix("invalid type: ")
        .and_then(|m| m.split_once(", expected struct "))
    else {
        return message;
    };
    match name {
        "Config" => format!(
            "the config must be a mapping of module names to their options (such as `baseline:`), found {found}"
        ),
        "ProfileFile" => format!(
            "invalid type: {found}, expected a profile: a mapping with name, description and modules"
        ),
        _ => format!("invalid type: {found}, expected a mapping of options (`key: value` lines)"),
    }
}

fn split_path(text: &str) -> (String, String) {
    if let Some((head, rest)) = text.split_once(": ")
        && !head.is_empty()
        && !head.contains(' ')
        && !head.contains('`')
    {
        return (head.to_string(), rest.to_string());
    }
    (String::new(), text.to_string())
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" (or "expected `a` or `b`"), suggests
/// the closest known name.
fn suggestion_for_unknown(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))?;
    let (unknown, expected) = rest.split_once('`')?;
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    closest(unknown, &candidates).map(|best| format!("did you mean `{best}`?"))
}

/// The candidate nearest to `word` by edit distance, if it is near enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(2))
        .min()
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// Finds the line and column of a dotted key path (`a.b[2].c`) in block-style YAML, so that
/// errors found after parsing (cross-field checks) can still point at the file. Best effort:
/// flow-style documents give `None`.
pub fn locate_key(source: &str, path: &str) -> Option<(usize, usize)> {
    let mut segments: Vec<Segment> = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, indices) = part.split_once('[').unwrap_or((part, ""));
        segments.push(Segment::Key(key.to_string()));
        for index in indices.split('[').filter(|i| !i.is_empty()) {
            segments.push(Segment::Index(index.trim_end_matches(']').parse().ok()?));
        }
    }
    let lines: Vec<&str> = source.lines().collect();
    let (mut from, mut min_indent) = (0usize, 0usize);
    let mut found = None;
    for segment in &segments {
        let mut seen_items = 0usize;
        let mut hit = None;
        for (n, line) in lines.iter().enumerate().skip(from) {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = line.len() - trimmed.len();
            if indent < min_indent && n > from {
                break;
            }
            match segment {
                Segment::Key(key) => {
                    let body = trimmed.strip_prefix("- ").unwrap_or(trimmed);
                    let body_indent = line.len() - body.len();
                    if body_indent >= min_indent && body.starts_with(&format!("{key}:")) {
                        hit = Some((n, body_indent));
                        break;
                    }
                }
                Segment::Index(index) => {
                    if indent >= min_indent && trimmed.starts_with('-') {
                        if seen_items == *index {
                            hit = Some((n, indent));
                            break;
                        }
                        seen_items += 1;
                    }
                }
            }
        }
        let (n, column) = hit?;
        found = Some((n + 1, column + 1));
        // Children of a list item start on the item's own line, after "- ".
        (from, min_indent) = match segment {
            Segment::Index(_) => (n, column + 2),
            Segment::Key(_) => (n + 1, column + 1),
        };
    }
    found
}

enum Segment {
    Key(String),
    Index(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_typos_and_ignores_unrelated_words() {
        assert_eq!(
            closest("hostnme", &["hostname", "timezone"]),
            Some("hostname")
        );
        assert_eq!(closest("zzzzzz", &["hostname", "timezone"]), None);
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(color_allowed(None, true));
        assert!(!color_allowed(None, false));
        assert!(!color_allowed(Some(OsStr::new("1")), true));
        // NO_COLOR set but empty does not count (no-color.org).
        assert!(color_allowed(Some(OsStr::new("")), true));
    }

    #[test]
    fn render_marks_the_spot_and_colours_only_when_asked() {
        let mut d = Diagnostic::new("phanes.yaml", "bad value").with_help("try 2G");
        d.path = "swap.size".into();
        d.position = Some((3, 9));
        d.excerpt = Some("  size: 2X".into());
        let plain = d.render(false);
        assert_eq!(
            plain,
            "phanes.yaml:3:9: swap.size: bad value\n   |\n 3 |   size: 2X\n   |         ^\n  help: try 2G"
        );
        assert_eq!(plain, d.to_string());
        let coloured = d.render(true);
        assert!(
            coloured.contains("\x1b[1mphanes.yaml:3:9\x1b[0m"),
            "{coloured:?}"
        );
        assert!(coloured.contains("\x1b[1;31m^\x1b[0m"), "{coloured:?}");
        // Same text once the colour codes are gone.
        let stripped: String = coloured
            .split('\x1b')
            .enumerate()
            .map(|(i, part)| {
                if i == 0 {
                    part
                } else {
                    part.split_once('m').map_or("", |p| p.1)
                }
            })
            .collect();
        assert_eq!(stripped, plain);
    }

    #[test]
    fn render_error_prints_every_diagnostic_with_a_count() {
        let all = Diagnostics(vec![
            Diagnostic::new("a.yaml", "first"),
            Diagnostic::new("a.yaml", "second"),
        ]);
        let text = render_error(&anyhow::Error::from(all), false);
        assert_eq!(
            text,
            "error: a.yaml: first\n\nerror: a.yaml: second\n\nerror: 2 problems found\n"
        );
        let other = render_error(&anyhow::anyhow!("plain"), false);
        assert_eq!(other, "error: plain\n");
    }

    #[test]
    fn locate_key_follows_nested_maps_and_lists() {
        let src = "baseline:\n  hostname: a\nuser:\n  users:\n    - name: a\n    - name: b\n      shell: x\n";
        assert_eq!(locate_key(src, "baseline.hostname"), Some((2, 3)));
        assert_eq!(locate_key(src, "user.users[1].shell"), Some((7, 7)));
        assert_eq!(locate_key(src, "user.users[1].name"), Some((6, 7)));
        assert_eq!(locate_key(src, "swap.size"), None);
    }
}
