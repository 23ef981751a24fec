//! Diagnostics that name the file, line and column and the problem's code, show the offending
//! text and give a fix.

use std::fmt;

pub use crate::codes::Code;

/// A region of the source file. Lines are 1-based, columns 0-based (rendered 1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub line: usize,
    pub col: usize,
    /// Byte offsets into the source.
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub(crate) fn from_saphyr(span: &saphyr_parser::Span, offsets: &CharOffsets) -> Span {
        let start = offsets.byte(span.start.index());
        let end = offsets.byte(span.end.index()).max(start);
        Span { line: span.start.line(), col: span.start.col(), start, end }
    }

    /// A zero-width span at a line and (0-based, in characters) column.
    pub fn point(source: &str, line: usize, col: usize) -> Span {
        // saphyr can place an error past the end of the text (a flow mapping cut short; found
        // by fuzzing): point at the end instead, on a line the reader has.
        let lines = lines(source);
        let (line, col) = match lines.get(line.saturating_sub(1)) {
            Some((_, text)) => (line.max(1), col.min(text.chars().count())),
            None => (lines.len(), lines.last().map_or(0, |(_, l)| l.chars().count())),
        };
        let (line_start, text) = lines[line - 1];
        let offset = line_start + text.chars().take(col).map(char::len_utf8).sum::<usize>();
        Span { line, col, start: offset, end: offset }
    }

    /// The span from the start of `self` to the end of `other`.
    pub fn to(&self, other: &Span) -> Span {
        Span { end: other.end.max(self.end), ..*self }
    }
}

/// The text's lines as YAML counts them (a line break is `\r\n`, `\r` or `\n`: positions come
/// from the YAML parser), each with the byte offset it starts at; at least one.
pub fn lines(source: &str) -> Vec<(usize, &str)> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\n' | b'\r' => {
                out.push((start, &source[start..i]));
                i += if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') { 2 } else { 1 };
                start = i;
            }
            _ => i += 1,
        }
    }
    out.push((start, &source[start..]));
    out
}

/// Character index -> byte offset, in O(1): saphyr counts characters, slicing needs bytes.
pub(crate) struct CharOffsets {
    /// `None` for ASCII text, where the two are the same.
    table: Option<Vec<usize>>,
    len: usize,
}

impl CharOffsets {
    pub(crate) fn new(source: &str) -> Self {
        let table = (!source.is_ascii()).then(|| source.char_indices().map(|(i, _)| i).collect());
        CharOffsets { table, len: source.len() }
    }

    fn byte(&self, chars: usize) -> usize {
        match &self.table {
            None => chars.min(self.len),
            Some(t) => t.get(chars).copied().unwrap_or(self.len),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub span: Span,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic { code, span, message: message.into(), hint: None }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Every problem found in one file, rendered like a compiler: location, code, message, the
/// source line with the offending text underlined, and the hint.
#[derive(Debug, Clone)]
pub struct Report {
    pub file: String,
    pub source: String,
    pub diagnostics: Vec<Diagnostic>,
    /// What the command did not do, said after the count.
    pub outcome: Outcome,
}

/// What follows from the problems of a report, for the command that reads it: `check` never
/// writes SQL, so "no SQL was written" would tell its user nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Outcome {
    /// `compile`
    #[default]
    NoSqlWritten,
    /// `check` and `matrix`, for problems in the spec.
    SpecInvalid,
    /// `check`, for problems in the `--schema` file: the spec was not checked against it.
    SpecNotChecked,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::NoSqlWritten => "no SQL was written",
            Outcome::SpecInvalid => "the spec is invalid",
            Outcome::SpecNotChecked => "the spec was not checked",
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

/// ANSI styles for a terminal; empty strings when colour is off.
struct Style {
    place: &'static str,
    error: &'static str,
    hint: &'static str,
    reset: &'static str,
}

impl Style {
    fn new(color: bool) -> Style {
        if color {
            Style { place: "\x1b[1m", error: "\x1b[1;31m", hint: "\x1b[36m", reset: "\x1b[0m" }
        } else {
            Style { place: "", error: "", hint: "", reset: "" }
        }
    }
}

impl Report {
    /// The report as `Display` prints it; with `color`, the place bold, the error and its
    /// underline red, the hint cyan (for a terminal: `rowsec --color`).
    pub fn render(&self, color: bool) -> String {
        use std::fmt::Write;
        let s = Style::new(color);
        let mut f = String::new();
        let mut diagnostics = self.diagnostics.clone();
        // By place, then code: the order does not depend on which check ran first.
        diagnostics.sort_by_key(|d| (d.span.line, d.span.col, d.code.code()));
        let lines = lines(&self.source);
        for d in &diagnostics {
            let _ = writeln!(
                f,
                "{}{}:{}:{}:{} {}error[{}]{}: {}",
                s.place,
                self.file,
                d.span.line,
                d.span.col + 1,
                s.reset,
                s.error,
                d.code,
                s.reset,
                d.message
            );
            // Lines as the YAML parser counts them, so a file with lone `\r` line breaks shows
            // the line the position names (found by fuzzing).
            let (line_start, line_text) =
                lines.get(d.span.line.saturating_sub(1)).copied().unwrap_or((self.source.len(), ""));
            let gutter = d.span.line.to_string().len();
            let _ = writeln!(f, "{:gutter$} |", "");
            let _ = writeln!(f, "{} | {}", d.span.line, line_text);
            let line_end = line_start + line_text.len();
            let width = self
                .source
                .get(d.span.start.min(line_end)..d.span.end.min(line_end))
                .map_or(1, |s| s.chars().count().max(1));
            let _ =
                writeln!(f, "{:gutter$} | {}{}{}{}", "", " ".repeat(d.span.col), s.error, "^".repeat(width), s.reset);
            if let Some(hint) = &d.hint {
                let _ = writeln!(f, "{:gutter$} = {}hint{}: {}", "", s.hint, s.reset, hint);
            }
        }
        let n = diagnostics.len();
        let _ =
            write!(f, "{}: {} problem{} found; {}", self.file, n, if n == 1 { "" } else { "s" }, self.outcome.as_str());
        f
    }
}

/// The closest candidate to a misspelt word, if one is close enough to be a useful suggestion.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&word.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// `did you mean `x`?` or a list of what is allowed.
pub fn suggestion(word: &str, candidates: &[&str], what: &str) -> String {
    match did_you_mean(word, candidates.iter().copied()) {
        Some(c) => format!("did you mean `{c}`?"),
        None if candidates.is_empty() => format!("no {what} is defined"),
        None => {
            format!("expected one of: {}", candidates.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "))
        }
    }
}

#[cfg(test)]
mod line_tests {
    use super::*;

    #[test]
    fn lines_break_where_yaml_breaks_them() {
        assert_eq!(lines("a\nb\r\nc\rd"), vec![(0, "a"), (2, "b"), (5, "c"), (7, "d")]);
        assert_eq!(lines(""), vec![(0, "")]);
        assert_eq!(lines("a\n"), vec![(0, "a"), (2, "")]);
    }

    #[test]
    fn a_point_past_the_end_is_moved_to_the_end() {
        assert_eq!(Span::point("ab\ncd", 9, 4), Span { line: 2, col: 2, start: 5, end: 5 });
        assert_eq!(Span::point("ab\rcd", 2, 1), Span { line: 2, col: 1, start: 4, end: 4 });
    }
}
