//! Makes bash code smaller without changing what bash reads: comments, blank lines and leading
//! indentation go, and runtime functions no bundle reaches are left out. User-data is limited by
//! the providers (AWS 16 KiB, Hetzner 32 KiB) and every byte of the bundle travels in it.
//!
//! Both transformations follow bash's own lexing closely enough to know, at the start of every
//! line, whether it is code or data (inside quotes, a here-document, a `${...}`); they only
//! touch code. Whenever the lexer meets something it does not model (a backtick, `case` inside
//! `$(...)`, quotes it cannot pair), the text is returned unchanged. tests/artifacts.rs proves
//! on every built-in profile that bash defines the same functions and variables either way.

use std::collections::{BTreeMap, BTreeSet};

/// Comment lines that stay: shellcheck directives, and the `# >>>`/`# <<<` markers the render
/// tests use to cut a module's helper block out of a bundle.
const KEPT_COMMENTS: &[&str] = &["# shellcheck", "# >>> ", "# <<< "];

/// Where the lexer is inside a line of bash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// Commands: the top level (`sub` false) or inside `$(...)`/`<(...)` (`sub` true, ends at
    /// the `)` that matches). `parens` counts open subshells/groups.
    Cmd { sub: bool, parens: u32 },
    /// Inside "...".
    Double,
    /// Inside '...'.
    Single,
    /// Inside $'...'.
    Ansi,
    /// Inside ${...}; `single_quotes` when a `'` there quotes (not inside "...").
    Brace { single_quotes: bool },
    /// Inside $((...)) or ((...)); `parens` counts open parentheses.
    Arith { parens: u32 },
}

/// A here-document whose body starts on the next line.
#[derive(Debug, Clone)]
struct Heredoc {
    word: String,
    strip_tabs: bool,
}

/// The lexer's state between lines.
#[derive(Debug, Clone)]
struct Lexer {
    stack: Vec<Ctx>,
    heredocs: Vec<Heredoc>,
    /// The previous line ended in a backslash outside quotes: this line continues it.
    continued: bool,
    /// ... and an unescaped blank came before that backslash, so this line's leading blanks
    /// are not needed to separate words.
    blank_before_continuation: bool,
    /// Per byte of the last line read: whether bash read it as a command word's character
    /// (not inside quotes, `${...}` or arithmetic). Bytes the lexer skips count as data.
    code: Vec<bool>,
    /// Per byte of the last line read: inside '...' or $'...', where a `$` is only text.
    literal: Vec<bool>,
}

/// What the lexer found in one line.
struct LineInfo {
    /// Byte offset of a comment that starts in the line, if any.
    comment: Option<usize>,
}

/// The lexer met something it does not model.
struct Unsure;

impl Lexer {
    fn new() -> Self {
        Lexer {
            stack: vec![Ctx::Cmd {
                sub: false,
                parens: 0,
            }],
            heredocs: Vec::new(),
            continued: false,
            blank_before_continuation: false,
            code: Vec::new(),
            literal: Vec::new(),
        }
    }

    /// At the start of a line: is it code whose leading whitespace bash ignores?
    fn at_code_start(&self) -> bool {
        !self.continued && matches!(self.stack.last(), Some(Ctx::Cmd { .. }))
    }

    /// At the start of a line that continues a command after a blank: its leading blanks can go
    /// (the line itself cannot: even blank, it ends the command).
    fn at_squeezable_continuation(&self) -> bool {
        self.continued
            && self.blank_before_continuation
            && matches!(self.stack.last(), Some(Ctx::Cmd { .. }))
    }

    /// At the top level, between commands: where a function definition can start or end.
    fn at_top(&self) -> bool {
        !self.continued
            && self.heredocs.is_empty()
            && self.stack
                == [Ctx::Cmd {
                    sub: false,
                    parens: 0,
                }]
    }

    /// Reads one line (without its newline) and updates the state.
    fn line(&mut self, line: &str) -> Result<LineInfo, Unsure> {
        let b = line.as_bytes();
        let mut i = 0;
        self.continued = false;
        self.code.clear();
        self.code.resize(b.len(), false);
        self.literal.clear();
        self.literal.resize(b.len(), false);
        let mut comment = None;
        while i < b.len() {
            let c = b[i];
            let next = b.get(i + 1).copied();
            let top = *self.stack.last().ok_or(Unsure)?;
            self.code[i] = matches!(top, Ctx::Cmd { .. });
            self.literal[i] = matches!(top, Ctx::Single | Ctx::Ansi);
            match top {
                Ctx::Single => {
                    if c == b'\'' {
                        self.stack.pop();
                    }
                }
                Ctx::Ansi => match c {
                    b'\\' => i += 1,
                    b'\'' => {
                        self.stack.pop();
                    }
                    _ => {}
                },
                Ctx::Double => match c {
                    b'\\' => i += 1,
                    b'"' => {
                        self.stack.pop();
                    }
                    b'`' => return Err(Unsure),
                    b'$' => i += self.dollar(b, i),
                    _ => {}
                },
                Ctx::Brace { single_quotes } => match c {
                    b'\\' => i += 1,
                    b'}' => {
                        self.stack.pop();
                    }
                    b'"' => self.stack.push(Ctx::Double),
                    b'\'' if single_quotes => self.stack.push(Ctx::Single),
                    // Whether a ' inside "${...}" quotes depends on the operator and bash's
                    // version: not modelled.
                    b'\'' => return Err(Unsure),
                    b'`' => return Err(Unsure),
                    b'$' => i += self.dollar(b, i),
                    _ => {}
                },
                Ctx::Arith { parens } => match c {
                    b'\\' => i += 1,
                    b'(' => self.set_top(Ctx::Arith { parens: parens + 1 }),
                    b')' if parens > 0 => self.set_top(Ctx::Arith { parens: parens - 1 }),
                    b')' if next == Some(b')') => {
                        self.stack.pop();
                        i += 1;
                    }
                    b')' => return Err(Unsure),
                    b'"' => self.stack.push(Ctx::Double),
                    b'\'' => self.stack.push(Ctx::Single),
                    b'`' => return Err(Unsure),
                    b'$' => i += self.dollar(b, i),
                    _ => {}
                },
                Ctx::Cmd { sub, parens } => match c {
                    b'\\' => {
                        if next.is_none() {
                            self.continued = true;
                            self.blank_before_continuation = i >= 1
                                && matches!(b[i - 1], b' ' | b'\t')
                                && (i < 2 || b[i - 2] != b'\\');
                        }
                        i += 1;
                    }
                    b'\'' => self.stack.push(Ctx::Single),
                    b'"' => self.stack.push(Ctx::Double),
                    b'`' => return Err(Unsure),
                    b'$' => i += self.dollar(b, i),
                    b'#' if word_start(b, i) => {
                        comment = Some(i);
                        break;
                    }
                    b'(' if next == Some(b'(') && word_start(b, i) => {
                        self.stack.push(Ctx::Arith { parens: 0 });
                        i += 1;
                    }
                    b'(' => self.set_top(Ctx::Cmd {
                        sub,
                        parens: parens + 1,
                    }),
                    b')' if parens > 0 => self.set_top(Ctx::Cmd {
                        sub,
                        parens: parens - 1,
                    }),
                    b')' if sub => {
                        self.stack.pop();
                    }
                    // A case pattern at the top level: nothing to track.
                    b')' => {}
                    b'<' if next == Some(b'<') => {
                        if b.get(i + 2) == Some(&b'<') {
                            i += 2; // a here-string
                        } else {
                            i = self.heredoc(b, i + 2)?;
                            continue;
                        }
                    }
                    // `case` inside $(...) has unbalanced `)` in its patterns.
                    b'c' if sub && word_start(b, i) && is_word(b, i, "case") => {
                        return Err(Unsure);
                    }
                    _ => {}
                },
            }
            i += 1;
        }
        Ok(LineInfo { comment })
    }

    fn set_top(&mut self, ctx: Ctx) {
        if let Some(top) = self.stack.last_mut() {
            *top = ctx;
        }
    }

    /// Handles a `$` at `i`; returns how many extra bytes it consumed.
    fn dollar(&mut self, b: &[u8], i: usize) -> usize {
        let in_double = matches!(self.stack.last(), Some(Ctx::Double));
        match (b.get(i + 1), b.get(i + 2)) {
            (Some(b'('), Some(b'(')) => {
                self.stack.push(Ctx::Arith { parens: 0 });
                2
            }
            (Some(b'('), _) => {
                self.stack.push(Ctx::Cmd {
                    sub: true,
                    parens: 0,
                });
                1
            }
            (Some(b'{'), _) => {
                self.stack.push(Ctx::Brace {
                    single_quotes: !in_double,
                });
                1
            }
            (Some(b'\''), _) if !in_double => {
                self.stack.push(Ctx::Ansi);
                1
            }
            (Some(b'"'), _) if !in_double => {
                self.stack.push(Ctx::Double);
                1
            }
            _ => 0,
        }
    }

    /// Reads a here-document's word after `<<` (at `i`); returns where lexing goes on.
    fn heredoc(&mut self, b: &[u8], mut i: usize) -> Result<usize, Unsure> {
        let strip_tabs = b.get(i) == Some(&b'-');
        if strip_tabs {
            i += 1;
        }
        while matches!(b.get(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        let word_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        let (start, end, after) = match b.get(i) {
            Some(&q @ (b'\'' | b'"')) => {
                let end = (i + 1..b.len()).find(|&j| b[j] == q).ok_or(Unsure)?;
                (i + 1, end, end + 1)
            }
            Some(b'\\') => {
                let end = (i + 1..b.len())
                    .find(|&j| !word_char(b[j]))
                    .unwrap_or(b.len());
                (i + 1, end, end)
            }
            _ => {
                let end = (i..b.len()).find(|&j| !word_char(b[j])).unwrap_or(b.len());
                (i, end, end)
            }
        };
        let word = &b[start..end];
        if word.is_empty() || !word.iter().all(|&c| word_char(c)) {
            return Err(Unsure);
        }
        self.heredocs.push(Heredoc {
            word: String::from_utf8_lossy(word).into_owned(),
            strip_tabs,
        });
        Ok(after)
    }
}

/// Whether byte `i` starts a word: at the line's start or after a metacharacter.
fn word_start(b: &[u8], i: usize) -> bool {
    i == 0
        || matches!(
            b[i - 1],
            b' ' | b'\t' | b';' | b'&' | b'|' | b'(' | b')' | b'<' | b'>'
        )
}

/// Whether the word at `i` is exactly `word`.
fn is_word(b: &[u8], i: usize, word: &str) -> bool {
    let end = i + word.len();
    b.get(i..end) == Some(word.as_bytes())
        && b.get(end)
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
}

/// One line of code as the lexer saw it.
struct Line<'a> {
    text: &'a str,
    /// Inside a here-document: data, kept byte for byte.
    heredoc: bool,
    /// Starts as code (not inside quotes, `${...}`, or a continued line).
    code_start: bool,
    /// Continues a command after a blank: leading blanks can go, the line stays.
    squeezable: bool,
    /// Starts at the top level, between commands.
    top: bool,
    /// Where a comment starts in it.
    comment: Option<usize>,
    /// Per byte: code (see `Lexer::code`).
    code: Vec<bool>,
    /// Per byte: quoted text where `$` does not expand (see `Lexer::literal`).
    literal: Vec<bool>,
}

/// Lexes `text` line by line; `None` when the lexer is unsure or the text does not end at the
/// top level (unbalanced quotes, an unfinished here-document).
fn lex(text: &str) -> Option<Vec<Line<'_>>> {
    let mut lexer = Lexer::new();
    let mut lines = Vec::new();
    for text in text.lines() {
        if let Some(doc) = lexer.heredocs.first() {
            let body = if doc.strip_tabs {
                text.trim_start_matches('\t')
            } else {
                text
            };
            if body == doc.word {
                lexer.heredocs.remove(0);
            }
            lines.push(Line {
                text,
                heredoc: true,
                code_start: false,
                squeezable: false,
                top: false,
                comment: None,
                code: Vec::new(),
                literal: Vec::new(),
            });
            continue;
        }
        let code_start = lexer.at_code_start();
        let squeezable = lexer.at_squeezable_continuation();
        let top = lexer.at_top();
        let info = lexer.line(text).ok()?;
        lines.push(Line {
            text,
            heredoc: false,
            code_start,
            squeezable,
            top,
            comment: info.comment,
            code: std::mem::take(&mut lexer.code),
            literal: std::mem::take(&mut lexer.literal),
        });
    }
    lexer.at_top().then_some(lines)
}

/// Drops comments (except shellcheck directives and `# >>>`/`# <<<` markers), blank lines and
/// leading indentation from bash code. Here-documents and multi-line strings stay byte for byte;
/// a line continued with a backslash loses its leading blanks only after a blank (words stay
/// apart) and is never dropped. Returns `text` unchanged when the lexer is unsure.
pub fn compact(text: &str) -> String {
    compact_keeping(text, KEPT_COMMENTS)
}

/// [`compact`], keeping only the comments that start with one of `kept`.
fn compact_keeping(text: &str, kept: &[&str]) -> String {
    let Some(lines) = lex(text) else {
        return text.to_string();
    };
    let mut out = String::with_capacity(text.len());
    for line in &lines {
        if line.heredoc {
            out.push_str(line.text);
            out.push('\n');
            continue;
        }
        let mut code = line.text;
        let mut indent = 0;
        if line.code_start || line.squeezable {
            let trimmed = code.trim_start_matches([' ', '\t']);
            indent = code.len() - trimmed.len();
            code = trimmed;
        }
        if let Some(at) = line.comment {
            let comment = &line.text[at..];
            if kept.iter().any(|k| comment.starts_with(k)) {
                // Kept as it is, on its own line or after code.
            } else {
                code = trim_code_end(&code[..at - indent]);
            }
        }
        if code.is_empty() && line.code_start {
            continue; // a blank or comment-only line between commands
        }
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// Trailing blanks off code whose comment was cut, keeping an escaped blank (`\ `).
fn trim_code_end(code: &str) -> &str {
    let trimmed = code.trim_end_matches([' ', '\t']);
    if trimmed.ends_with('\\') && trimmed.len() < code.len() {
        &code[..trimmed.len() + 1]
    } else {
        trimmed
    }
}

/// A top-level piece of a runtime file: a function definition or other code.
#[derive(Debug)]
struct Piece {
    /// The function it defines, if it is one.
    function: Option<String>,
    text: String,
}

/// Splits bash code into top-level function definitions (`name() {` ... a `}` line, or
/// `name() { ...; }` on one line) and the code between them. `None` when unsure.
fn pieces(text: &str) -> Option<Vec<Piece>> {
    let lines = lex(text)?;
    let mut pieces: Vec<Piece> = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in &lines {
        let code = match line.comment {
            Some(at) => line.text[..at].trim_end(),
            None => line.text.trim_end(),
        };
        if let Some((name, body)) = open.as_mut() {
            if line.top && function_head(code).is_some() {
                return None; // the previous function's `}` was not where expected
            }
            body.push_str(line.text);
            body.push('\n');
            if line.top && code == "}" {
                pieces.push(Piece {
                    function: Some(std::mem::take(name)),
                    text: std::mem::take(body),
                });
                open = None;
            }
            continue;
        }
        let definition = line.top.then(|| function_head(code)).flatten();
        match definition {
            Some((name, "")) => {
                open = Some((name.to_string(), format!("{}\n", line.text)));
            }
            Some((name, rest)) if rest.ends_with('}') => pieces.push(Piece {
                function: Some(name.to_string()),
                text: format!("{}\n", line.text),
            }),
            Some(_) => return None,
            None => match pieces.last_mut() {
                Some(Piece {
                    function: None,
                    text,
                }) => {
                    text.push_str(line.text);
                    text.push('\n');
                }
                _ => pieces.push(Piece {
                    function: None,
                    text: format!("{}\n", line.text),
                }),
            },
        }
    }
    open.is_none().then_some(pieces)
}

/// `name() {` at the start of `code`: the name and what follows the brace.
fn function_head(code: &str) -> Option<(&str, &str)> {
    let (name, rest) = code.split_once("() {")?;
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ':');
    valid.then(|| (name, rest.trim()))
}

/// Every identifier-like word in `text`.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
}

/// The names a text may call: each word naming a function, and, for a name built at run time
/// (`prefix_$x`, `${x}_suffix`), every function with that prefix or suffix.
fn reached_from<'a>(text: &str, functions: &'a BTreeMap<String, String>) -> BTreeSet<&'a str> {
    let mut found: BTreeSet<&str> = words(text)
        .filter_map(|w| functions.get_key_value(w).map(|(k, _)| k.as_str()))
        .collect();
    let b = text.as_bytes();
    let word_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    for (i, &c) in b.iter().enumerate() {
        if c == b'$' && i > 0 && word_char(b[i - 1]) {
            let start = (0..i)
                .rev()
                .take_while(|&j| word_char(b[j]))
                .last()
                .unwrap_or(i);
            let prefix = &text[start..i];
            found.extend(
                functions
                    .keys()
                    .filter(|f| f.starts_with(prefix))
                    .map(String::as_str),
            );
        }
        if c == b'}' && b.get(i + 1).is_some_and(|&n| word_char(n)) {
            let end = (i + 1..b.len())
                .find(|&j| !word_char(b[j]))
                .unwrap_or(b.len());
            let suffix = &text[i + 1..end];
            found.extend(
                functions
                    .keys()
                    .filter(|f| f.ends_with(suffix))
                    .map(String::as_str),
            );
        }
    }
    found
}

/// Compacts `library` (see [`compact`]) and leaves out the functions that nothing reaches, with
/// `callers` as further roots. See [`shrink_all`].
pub fn shrink(library: &str, callers: &[&str]) -> String {
    let mut texts = vec![library];
    texts.extend(callers);
    let mut out = shrink_all(&texts, 0..1);
    out.swap_remove(0)
}

/// Compacts each text (see [`compact`]) and leaves out the functions that nothing reaches, for
/// the texts in `shaken` (the others keep every function and only serve as roots). The roots
/// are every text's code outside functions and every function of a text not in `shaken`; a
/// function reached keeps everything it names. Names are matched as words anywhere (strings
/// included: validators, traps and `phanes_retry` take function names as arguments), and a
/// name built at run time (`"handler__$name"`, `"${base}__check"`) reaches every function with
/// that prefix or suffix, so the set kept can only be too large. A text whose function
/// boundaries are unclear keeps all of its functions.
pub fn shrink_all(texts: &[&str], shaken: std::ops::Range<usize>) -> Vec<String> {
    // (function name if one and shaken, compacted text) per piece, per text.
    let split: Vec<Vec<(Option<String>, String)>> = texts
        .iter()
        .enumerate()
        .map(
            |(i, text)| match pieces(text).filter(|_| shaken.contains(&i)) {
                Some(pieces) => pieces
                    .into_iter()
                    .map(|p| (p.function, compact(&p.text)))
                    .collect(),
                None => vec![(None, compact(text))],
            },
        )
        .collect();
    let functions: BTreeMap<String, String> = split
        .iter()
        .flatten()
        .filter_map(|(name, text)| Some((name.clone()?, text.clone())))
        .collect();
    let mut reached: BTreeSet<&str> = BTreeSet::new();
    let mut todo: Vec<&str> = Vec::new();
    for (_, root) in split.iter().flatten().filter(|(name, _)| name.is_none()) {
        todo.extend(reached_from(root, &functions));
    }
    while let Some(name) = todo.pop() {
        if reached.insert(name) {
            todo.extend(reached_from(&functions[name], &functions));
        }
    }
    split
        .iter()
        .map(|pieces| {
            pieces
                .iter()
                .filter(|(name, _)| name.as_ref().is_none_or(|f| reached.contains(f.as_str())))
                .map(|(_, text)| text.as_str())
                .collect()
        })
        .collect()
}

/// Prefixes of the bundle's own names: internal functions and variables (`_phanes_*`,
/// `_PHANES_*`) and the runtime's functions (`phanes_*`). `PHANES_*` is left alone: those are
/// the environment's options and values module code reads.
const OWN_PREFIXES: &[&str] = &["_phanes_", "_PHANES_", "phanes_"];

/// Whether `c` can be part of a bash name.
fn name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Each run of bash name bytes in `text`: its start and end byte offsets.
fn name_words(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !name_byte(b[i]) {
            i += 1;
            continue;
        }
        let end = (i..b.len()).find(|&j| !name_byte(b[j])).unwrap_or(b.len());
        words.push((i, end));
        i = end;
    }
    words
}

/// Each whole word of `text` that starts with one of [`OWN_PREFIXES`], with its byte offset,
/// and whether a `$` follows it (a name built at run time: `"phanes_module__$name"`).
fn own_names(text: &str) -> Vec<(usize, &str, bool)> {
    name_words(text)
        .into_iter()
        .map(|(i, end)| (i, &text[i..end], text.as_bytes().get(end) == Some(&b'$')))
        .filter(|(_, word, _)| OWN_PREFIXES.iter().any(|p| word.starts_with(p)))
        .collect()
}

/// The `n`th short name: `_a`, `_b`, ... `_Z`, `_aa`, ...
fn short_name(mut n: usize) -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut name = Vec::new();
    loop {
        name.push(LETTERS[n % LETTERS.len()]);
        n /= LETTERS.len();
        if n == 0 {
            break;
        }
        n -= 1;
    }
    name.push(b'_');
    name.reverse();
    String::from_utf8(name).expect("ASCII")
}

/// The bundle for user-data with a tight size limit (AWS's 16 KiB): no comment but the
/// `#!` line, and the bundle's own names (`_phanes_`, `_PHANES_`, `phanes_`) shortened to `_a`, `_b`, ...,
/// the most frequent first. It runs exactly as `setup` does: `--list`, `--help` and
/// `--version` print the same (tests/artifacts.rs proves it for every built-in profile).
///
/// Names are renamed as whole words everywhere, strings included (traps, validators and
/// `printf -v` take names as text), except a name followed by `$` (the start of a name built
/// at run time) and every name it starts, which stay as they are; a `phanes_*` word is
/// renamed only when the bundle defines a function of that name. Nothing is renamed when
/// `user_text` (the config's values, which reach the bundle and the files it writes) holds
/// one of the prefixes, whatever its case: the bundle's own words are then not told apart from
/// the user's. A short name that is already a word of the bundle is never used.
pub fn minify(setup: &str, user_text: &str) -> String {
    let (first, rest) = setup.split_once('\n').unwrap_or((setup, ""));
    let mut out = format!("{first}\n{}", compact_keeping(rest, &[]));
    let lower = user_text.to_ascii_lowercase();
    if OWN_PREFIXES
        .iter()
        .any(|p| lower.contains(&p.to_ascii_lowercase()))
    {
        return out;
    }
    let names = own_names(&out);
    let dynamic: Vec<&str> = names
        .iter()
        .filter(|(_, _, d)| *d)
        .map(|(_, w, _)| *w)
        .collect();
    let defined = |w: &str| out.contains(&format!("\n{w}() {{"));
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, word, _) in &names {
        if dynamic.iter().any(|d| word.starts_with(d))
            || (word.starts_with("phanes_") && !defined(word))
        {
            continue;
        }
        *counts.entry(word).or_default() += 1;
    }
    let taken: BTreeSet<&str> = words(&out).collect();
    let mut by_use: Vec<(&str, usize)> = counts.into_iter().collect();
    by_use.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut next = 0;
    // The next short name no word of the text already is.
    let mut fresh = || loop {
        let candidate = short_name(next);
        next += 1;
        if !taken.contains(candidate.as_str()) {
            break candidate;
        }
    };
    let mut renamed: BTreeMap<&str, String> = BTreeMap::new();
    for (word, _) in by_use {
        renamed.insert(word, fresh());
    }
    // The modules' helper functions, where bash can only read each as a name: every use of it
    // is code (never inside quotes, where it could be the user's data or a file's content).
    let helpers = helper_functions(&out);
    // The modules' upper-case globals, where only bash reads them (see module_globals).
    let globals = module_globals(&out, &lower);
    for (word, _) in helpers.iter().chain(&globals) {
        renamed.insert(word, fresh());
    }
    let mut uses: Vec<(usize, &str)> = names.iter().map(|(i, w, _)| (*i, *w)).collect();
    uses.extend(
        helpers
            .iter()
            .chain(&globals)
            .flat_map(|(w, at)| at.iter().map(move |i| (*i, *w))),
    );
    uses.sort_unstable();
    let mut result = String::with_capacity(out.len());
    let mut at = 0;
    for (i, word) in uses {
        if let Some(short) = renamed.get(word) {
            result.push_str(&out[at..i]);
            result.push_str(short);
            at = i + word.len();
        }
    }
    result.push_str(&out[at..]);
    out = result;
    out
}

/// What bash makes of each byte of a text, for renaming: see [`byte_classes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ByteClass {
    /// A command word's character: bash reads it as code.
    Code,
    /// Inside '...' or $'...': text, where `$` does not expand.
    Literal,
    /// Inside "...", `${...}` or arithmetic: text where `$` expands.
    Expanding,
    /// A here-document's body or a newline: never renamed in.
    Other,
}

/// [`ByteClass`] of every byte of `text`; `None` when the lexer is unsure of it.
fn byte_classes(text: &str) -> Option<Vec<ByteClass>> {
    let lines = lex(text)?;
    let mut classes = Vec::with_capacity(text.len());
    for line in &lines {
        let start = classes.len();
        classes.extend(
            line.code
                .iter()
                .zip(&line.literal)
                .map(|(&code, &literal)| match (code, literal) {
                    (true, _) => ByteClass::Code,
                    (_, true) => ByteClass::Literal,
                    _ => ByteClass::Expanding,
                }),
        );
        classes.resize(start + line.text.len(), ByteClass::Other); // here-document lines
        classes.push(ByteClass::Other); // the newline
    }
    Some(classes)
}

/// Every word of `text` with its offset, and the parts of names bash builds at run time: the
/// words a `$` follows (`"handler__$name"` starts with `handler__`) and the words right after
/// a `}` (`${base}__check` ends with `__check`), counting words of 4 bytes or more or with an
/// underscore ("${secs}s", "x$" are text). No name with such a part can be renamed safely.
fn words_and_run_time_parts(text: &str) -> (Vec<(usize, &str)>, Vec<&str>, Vec<&str>) {
    let b = text.as_bytes();
    let mut starts: Vec<(usize, &str)> = Vec::new();
    let (mut prefixes, mut suffixes) = (Vec::new(), Vec::new());
    for (i, end) in name_words(text) {
        let word = &text[i..end];
        let part = word.len() >= 4 || word.contains('_');
        if part && b.get(end) == Some(&b'$') {
            prefixes.push(word);
        }
        if part && i > 0 && b[i - 1] == b'}' {
            suffixes.push(word);
        }
        starts.push((i, word));
    }
    (starts, prefixes, suffixes)
}

/// The offsets of each use of `names` in `text`, from [`words_and_run_time_parts`]'s words.
fn uses_of<'a>(
    names: BTreeSet<&'a str>,
    starts: &[(usize, &'a str)],
) -> BTreeMap<&'a str, Vec<usize>> {
    let mut uses: BTreeMap<&str, Vec<usize>> = names.into_iter().map(|n| (n, Vec::new())).collect();
    for (at, word) in starts {
        if let Some(found) = uses.get_mut(word) {
            found.push(*at);
        }
    }
    uses
}

/// Most used first, so the most frequent names get the shortest replacements.
fn by_frequency(uses: BTreeMap<&str, Vec<usize>>) -> Vec<(&str, Vec<usize>)> {
    let mut found: Vec<(&str, Vec<usize>)> = uses.into_iter().collect();
    found.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    found
}

/// The functions `text` defines (`name() {` at the start of a line) that [`minify`] may rename
/// beyond [`OWN_PREFIXES`], with the offset of every use: names with an underscore, not built
/// at run time (see [`words_and_run_time_parts`]), and only used where the lexer sees code.
/// Empty when the lexer is unsure of the text.
fn helper_functions(text: &str) -> Vec<(&str, Vec<usize>)> {
    let Some(classes) = byte_classes(text) else {
        return Vec::new();
    };
    let (starts, prefixes, suffixes) = words_and_run_time_parts(text);
    let defined: BTreeSet<&str> = text
        .lines()
        .filter_map(|line| function_head(line).map(|(name, _)| name))
        .filter(|name| {
            name.contains('_')
                && name.bytes().all(name_byte)
                && !OWN_PREFIXES.iter().any(|p| name.starts_with(p))
                && !prefixes.iter().any(|p| name.starts_with(p))
                && !suffixes.iter().any(|s| name.ends_with(s))
        })
        .collect();
    let mut helpers = uses_of(defined, &starts);
    helpers.retain(|_, uses| uses.iter().all(|&at| classes[at] == ByteClass::Code));
    by_frequency(helpers)
}

/// The modules' global variables (`SECURITY_SSH_PORT`: upper case, a module's name and `_`
/// first) that [`minify`] may rename, with the offset of every use. A name qualifies when bash
/// alone reads it: every use is an expansion (`$NAME`, `${NAME...}`, `${#NAME...}`,
/// `${!NAME...}` where `$` expands) or an assignment that is a whole statement, and
/// - no line that holds it exports anything (`export`, `env`, `declare -x`: a program could
///   read it from its environment), and no use is a `NAME=value command` prefix;
/// - it is not built at run time ([`words_and_run_time_parts`]) nor listed by a prefix
///   (`${!PREFIX*}`), and no use is an escaped `\$NAME` (text);
/// - `user_text` (lower case) does not hold it: the user's own words stay as written.
///
/// A name used anywhere else (single quotes, a here-document, bare in arithmetic, a bare word
/// that a program could take as a variable's name) stays as it is. Empty when the lexer is unsure of the text.
fn module_globals<'a>(text: &'a str, user_text: &str) -> Vec<(&'a str, Vec<usize>)> {
    let Some(classes) = byte_classes(text) else {
        return Vec::new();
    };
    let (starts, prefixes, suffixes) = words_and_run_time_parts(text);
    let b = text.as_bytes();
    // `${!PREFIX*}`, `${!PREFIX@}`: the names of the variables that start with PREFIX.
    let listed: Vec<&str> = starts
        .iter()
        .filter(|(at, word)| {
            *at >= 3
                && &b[at - 3..*at] == b"${!"
                && matches!(b.get(at + word.len()), Some(b'*' | b'@'))
        })
        .map(|(_, word)| *word)
        .collect();
    let module_prefixes: Vec<String> = crate::modules::ALL
        .iter()
        .map(|m| format!("{}_", m.name.to_ascii_uppercase()))
        .collect();
    let candidates: BTreeSet<&str> = starts
        .iter()
        .map(|(_, word)| *word)
        .filter(|word| {
            module_prefixes.iter().any(|p| word.starts_with(p.as_str()))
                && word
                    .bytes()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
                && !prefixes.iter().any(|p| word.starts_with(p))
                && !suffixes.iter().any(|s| word.ends_with(s))
                && !listed.iter().any(|l| word.starts_with(l))
                && !user_text.contains(&word.to_ascii_lowercase())
        })
        .collect();
    let line_of = |at: usize| {
        let start = text[..at].rfind('\n').map_or(0, |n| n + 1);
        let end = text[at..].find('\n').map_or(text.len(), |n| at + n);
        &text[start..end]
    };
    let exports = |line: &str| {
        line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .any(|w| w == "export" || w == "env")
            || line.contains("declare -x")
    };
    let expanded = |at: usize| {
        let dollar = if at >= 1 && b[at - 1] == b'$' {
            Some(at - 1)
        } else if at >= 2 && &b[at - 2..at] == b"${" {
            Some(at - 2)
        } else if at >= 3
            && b[at - 3] == b'$'
            && b[at - 2] == b'{'
            && matches!(b[at - 1], b'#' | b'!')
        {
            Some(at - 3)
        } else {
            None
        };
        // `\$NAME` is a `$` and text: count the backslashes before it.
        let escaped = |d: usize| b[..d].iter().rev().take_while(|&&c| c == b'\\').count() % 2 == 1;
        dollar.is_some_and(|d| {
            matches!(classes[d], ByteClass::Code | ByteClass::Expanding) && !escaped(d)
        })
    };
    let mut globals = uses_of(candidates, &starts);
    globals.retain(|name, uses| {
        uses.iter().all(|&at| {
            let end = at + name.len();
            !exports(line_of(at))
                && (expanded(at)
                    || (classes[at] == ByteClass::Code
                        && whole_statement_assignment(b, &classes, end)))
        })
    });
    by_frequency(globals)
}

/// Whether the assignment whose `=` (or `+=`) is at `at` is all of its statement: what follows
/// its value ends the command (`NAME=value program` would hand NAME to the program).
fn whole_statement_assignment(b: &[u8], classes: &[ByteClass], mut at: usize) -> bool {
    if b.get(at) == Some(&b'+') {
        at += 1;
    }
    if b.get(at) != Some(&b'=') {
        return false;
    }
    at += 1;
    let code = |i: usize| classes.get(i) == Some(&ByteClass::Code);
    if b.get(at) == Some(&b'(') && code(at) {
        // An array: up to the matching `)`.
        let mut depth = 0;
        while at < b.len() && b[at] != b'\n' {
            if code(at) && b[at] == b'(' {
                depth += 1;
            } else if code(at) && b[at] == b')' {
                depth -= 1;
                if depth == 0 {
                    at += 1;
                    break;
                }
            }
            at += 1;
        }
        if depth != 0 {
            return false;
        }
    } else {
        while at < b.len()
            && !(code(at) && matches!(b[at], b' ' | b'\t' | b';' | b'&' | b'|' | b')'))
            && b[at] != b'\n'
        {
            at += 1;
        }
    }
    while matches!(b.get(at), Some(b' ' | b'\t')) {
        at += 1;
    }
    matches!(
        b.get(at),
        None | Some(b'\n' | b';' | b'&' | b'|' | b')' | b'}')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_indentation_go_data_stays() {
        let code = "\
# a comment
f() { # what f does
  local x='a
  # not a comment' y=\"b
    # nor this\"
  cat <<EOF
  # data
EOF
  echo \"${x#a}\" $# 'it''s' # trailing
  echo a\\ # cut after an escaped blank

}
";
        let want = "\
f() {
local x='a
  # not a comment' y=\"b
    # nor this\"
cat <<EOF
  # data
EOF
echo \"${x#a}\" $# 'it''s'
echo a\\ 
}
";
        assert_eq!(compact(code), want);
    }

    #[test]
    fn continued_lines_lose_blanks_only_where_words_stay_apart() {
        let code = "f() {\n  printf '%s' \\\n    \"$1\"\n  a\\\n  b\n  c\\ \\\n  d \\\n  # e\n}\n";
        assert_eq!(
            compact(code),
            "f() {\nprintf '%s' \\\n\"$1\"\na\\\n  b\nc\\ \\\n  d \\\n\n}\n"
        );
    }

    #[test]
    fn kept_comments_stay() {
        let code = "  # shellcheck disable=SC2086\n# >>> m: helpers\nx=1\n# <<< m: helpers\n";
        assert_eq!(
            compact(code),
            "# shellcheck disable=SC2086\n# >>> m: helpers\nx=1\n# <<< m: helpers\n"
        );
    }

    #[test]
    fn unsure_text_is_left_alone() {
        for code in [
            "x=`date`\n# c\n",
            "x=$(case $y in a) echo;; esac)\n# c\n",
            "x='unbalanced\n# c\n",
            "cat <<EOF\n# c\n",
            "x=\"${y:-'a'}\"\n# c\n",
        ] {
            assert_eq!(compact(code), code, "{code:?}");
        }
    }

    #[test]
    fn arithmetic_and_substitutions_nest() {
        let code = "x=$(( (1 << 2) + $(f \"$(g ')')\") ))\n  # c\ny=\"$(h \"'\")\"\n  # d\n";
        assert_eq!(
            compact(code),
            "x=$(( (1 << 2) + $(f \"$(g ')')\") ))\ny=\"$(h \"'\")\"\n"
        );
    }

    #[test]
    fn unreached_functions_go() {
        let lib = "\
X=1
a() {
  b
}
b() { echo; }
c() {
  echo unused
}
d_one() { :; }
e() {
  \"d_$1\"
}
v() { :; }
";
        assert_eq!(shrink(lib, &["a"]), "X=1\na() {\nb\n}\nb() { echo; }\n");
        assert_eq!(
            shrink(lib, &["e x"]),
            "X=1\nd_one() { :; }\ne() {\n\"d_$1\"\n}\n"
        );
        // A function name passed as a string (a validator) is reached.
        assert!(shrink(lib, &["w 'v'"]).contains("v() { :; }"));
    }

    #[test]
    fn minify_drops_comments_and_shortens_own_names_consistently() {
        let code = "#!/usr/bin/env bash\n# a header\n_PHANES_X=1\n_phanes_f() {\n  # inside\n  echo \"$_PHANES_X\" '# kept' # gone\n}\nphanes_step() { \"phanes_module__$1\"; }\nphanes_module__a() { _phanes_f; security_ufw_phanes_rules; }\ntrap '_phanes_f' EXIT\nmain \"$@\"\n";
        let want = "#!/usr/bin/env bash\n_b=1\n_a() {\necho \"$_b\" '# kept'\n}\n_c() { \"phanes_module__$1\"; }\nphanes_module__a() { _a; security_ufw_phanes_rules; }\ntrap '_a' EXIT\nmain \"$@\"\n";
        assert_eq!(minify(code, "{}"), want);
        // The user's own words could hold the prefixes: then only the comments go.
        assert_eq!(
            minify(code, "{\"description\":\"uses PHANES_x\"}"),
            "#!/usr/bin/env bash\n_PHANES_X=1\n_phanes_f() {\necho \"$_PHANES_X\" '# kept'\n}\nphanes_step() { \"phanes_module__$1\"; }\nphanes_module__a() { _phanes_f; security_ufw_phanes_rules; }\ntrap '_phanes_f' EXIT\nmain \"$@\"\n"
        );
        // A short name already in use is skipped.
        assert!(minify("#!\n_phanes_g() { _a=1; }\n", "").contains("_b() { _a=1; }"));
    }

    #[test]
    fn short_names_count_up() {
        assert_eq!(short_name(0), "_a");
        assert_eq!(short_name(51), "_Z");
        assert_eq!(short_name(52), "_aa");
        assert_eq!(short_name(53), "_ab");
    }

    #[test]
    fn minify_renames_helpers_used_only_as_code() {
        let code = "#!/usr/bin/env bash\nmod_helper() { echo 'mod_helper'; }\nmod_used() { echo hi; }\nmod_x__check() { mod_used; x=$(mod_used); \"${b}__check\"; }\nmod_data() { :; }\nV='mod_data'\ncat <<EOF\nmod_used\nEOF\nmain() { mod_used; mod_only; }\nmod_only() { :; }\n";
        let out = minify(code, "");
        // Used only as code: renamed everywhere; quoted or in a here-document somewhere: kept.
        assert!(out.contains("mod_helper() { echo 'mod_helper'; }"), "{out}");
        assert!(out.contains("mod_data() { :; }\nV='mod_data'"), "{out}");
        assert!(out.contains("mod_used\nEOF"), "{out}");
        assert!(!out.contains("mod_only"), "{out}");
        assert!(
            out.contains("main() {\nmod_used; _a; }") || out.contains("main() { mod_used; _a; }"),
            "{out}"
        );
        // A step function reached as "${b}__check" keeps its name; main has no underscore.
        assert!(out.contains("mod_x__check() {"), "{out}");
        assert!(out.contains("main() {"), "{out}");
    }
    /// Module globals are renamed only where bash alone reads them; each name kept below is
    /// kept for the reason its name says.
    #[test]
    fn minify_renames_module_globals_only_where_bash_alone_reads_them() {
        let code = r#"#!/usr/bin/env bash
SWAP_PATH=/swapfile
SWAP_SIZES=(1 2)
SWAP_IN_QUOTES=x
SWAP_IN_HEREDOC=x
SWAP_EXPORTED=x
SWAP_PREFIX=x
SWAP_ARITH=x
SWAP_USER=x
SWAP_BUILT_FOO=x
SWAP_ARG=x
SWAP_ESCAPED=x
SWAP_LISTED_A=x
f() {
  echo "$SWAP_PATH" ${SWAP_PATH} ${#SWAP_SIZES[@]} "${SWAP_SIZES[0]}" ${!SWAP_PATH}
  printenv SWAP_ARG
  echo "\$SWAP_ESCAPED" "${!SWAP_LISTED*}"
  echo '$SWAP_IN_QUOTES'
  cat <<EOF
$SWAP_IN_HEREDOC
EOF
  export SWAP_EXPORTED
  SWAP_PREFIX=y printenv SWAP_PREFIX
  (( SWAP_ARITH > 1 ))
  echo "$SWAP_USER"
  v=SWAP_BUILT_$x
  echo "$SWAP_BUILT_FOO $SWAP_ARITH $SWAP_IN_QUOTES $SWAP_IN_HEREDOC $SWAP_PREFIX $SWAP_ARG $SWAP_ESCAPED $SWAP_LISTED_A"
}
main() { f; }
"#;
        let out = minify(code, r#"{"motd":"swap_user"}"#);
        for gone in ["SWAP_PATH", "SWAP_SIZES"] {
            assert!(!out.contains(gone), "{gone} must be renamed:\n{out}");
        }
        for kept in [
            "SWAP_IN_QUOTES",
            "SWAP_IN_HEREDOC",
            "SWAP_EXPORTED",
            "SWAP_PREFIX",
            "SWAP_ARITH",
            "SWAP_USER",
            "SWAP_BUILT_FOO",
            "SWAP_ARG",
            "SWAP_ESCAPED",
            "SWAP_LISTED_A",
        ] {
            assert!(
                out.contains(&format!("\n{kept}=x\n")),
                "{kept} must keep its name:\n{out}"
            );
        }
        // Every use of a renamed name changed with it: bash reads the same program.
        let short = out
            .lines()
            .find_map(|l| l.strip_suffix("=/swapfile"))
            .expect("SWAP_PATH's assignment");
        assert!(
            out.contains(&format!("echo \"${short}\" ${{{short}}} ")),
            "{out}"
        );
        assert!(out.contains(&format!("${{!{short}}}")), "{out}");
    }
}
