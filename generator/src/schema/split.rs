//! Splits a DDL file into statements the way psql does, so that a `pg_dump --schema-only`
//! file reads like psql would run it: `;` ends a statement except inside quotes, dollar quotes,
//! comments and the `BEGIN ATOMIC ... END` body of a `CREATE FUNCTION`; a backslash at the start
//! of a statement is a psql meta-command (`\restrict KEY`) that ends with its line; the data
//! after `COPY ... FROM stdin;` ends at a line `\.`.

/// What a token is; comments and white space are not tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TokenKind {
    /// A keyword, unquoted name or number.
    Word,
    /// `"Name"`
    QuotedIdent,
    /// `'text'`, `E'text'` or `$tag$text$tag$`
    String,
    /// Any other character: `(`, `,`, `.`, ...
    Punct(char),
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Token<'a> {
    pub kind: TokenKind,
    pub text: &'a str,
    /// Byte offset in the file.
    pub start: usize,
}

impl Token<'_> {
    pub fn is_word(&self, word: &str) -> bool {
        self.kind == TokenKind::Word && self.text.eq_ignore_ascii_case(word)
    }

    pub fn is_punct(&self, c: char) -> bool {
        self.kind == TokenKind::Punct(c)
    }

    /// A name as PostgreSQL stores it: quoted names as written, others folded to lower case.
    pub fn name(&self) -> Option<String> {
        match self.kind {
            TokenKind::Word => Some(self.text.to_lowercase()),
            TokenKind::QuotedIdent => Some(self.text[1..self.text.len() - 1].replace("\"\"", "\"")),
            _ => None,
        }
    }

    /// The value of a `'...'` string (not `E'...'` escapes, which DDL rarely needs here).
    pub fn string_value(&self) -> Option<String> {
        (self.kind == TokenKind::String && self.text.starts_with('\''))
            .then(|| self.text[1..self.text.len() - 1].replace("''", "'"))
    }
}

/// One statement of the file.
#[derive(Debug)]
pub(super) enum Piece<'a> {
    /// A psql meta-command line such as `\restrict KEY`.
    Meta { text: &'a str },
    /// An SQL statement, without its `;`.
    Sql { text: &'a str, start: usize, tokens: Vec<Token<'a>> },
}

/// A quote, comment or `COPY` data that the file does not close.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Unterminated {
    pub what: &'static str,
    pub start: usize,
}

fn ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn ident_char(b: u8) -> bool {
    ident_start(b) || b.is_ascii_digit() || b == b'$'
}

pub(super) fn split<'a>(src: &'a str) -> Result<Vec<Piece<'a>>, Unterminated> {
    let b = src.as_bytes();
    let mut pieces = Vec::new();
    let mut tokens: Vec<Token<'a>> = Vec::new();
    // Nesting of BEGIN/CASE ... END in a CREATE FUNCTION or PROCEDURE, as psql counts it.
    let mut depth = 0usize;
    let mut i = 0;
    let find = |from: usize, needle: &str| src[from..].find(needle).map(|k| from + k);
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        let start = i;
        let push = |tokens: &mut Vec<Token<'a>>, kind, end: usize| {
            tokens.push(Token { kind, text: &src[start..end], start });
            end
        };
        i = match c {
            _ if c.is_ascii_whitespace() => i + 1,
            b'-' if next == Some(b'-') => find(i, "\n").unwrap_or(b.len()),
            b'/' if next == Some(b'*') => block_comment_end(src, i)?,
            b'\\' if tokens.is_empty() => {
                let end = find(i, "\n").unwrap_or(b.len());
                pieces.push(Piece::Meta { text: src[i..end].trim_end() });
                end
            }
            b';' if depth == 0 => {
                let copy_data = is_copy_from_stdin(&tokens);
                finish(src, &mut pieces, &mut tokens);
                if copy_data {
                    copy_data_end(src, i + 1)?
                } else {
                    i + 1
                }
            }
            b'\'' => {
                // E'...' (the E already read as a word right before the quote) has escapes.
                let escapes = tokens.last().is_some_and(|t| t.is_word("e") && t.start + 1 == i);
                let end = quoted_end(src, i, b'\'', escapes).ok_or(Unterminated { what: "string", start: i })?;
                if escapes {
                    let e = tokens.pop().expect("the E before the quote");
                    tokens.push(Token { kind: TokenKind::String, text: &src[e.start..end], start: e.start });
                    end
                } else {
                    push(&mut tokens, TokenKind::String, end)
                }
            }
            b'"' => {
                let end = quoted_end(src, i, b'"', false).ok_or(Unterminated { what: "quoted name", start: i })?;
                push(&mut tokens, TokenKind::QuotedIdent, end)
            }
            b'$' => match dollar_tag(b, i) {
                Some(tag_end) => {
                    let tag = &src[i..tag_end];
                    let end = find(tag_end, tag)
                        .map(|k| k + tag.len())
                        .ok_or(Unterminated { what: "dollar-quoted string", start: i })?;
                    push(&mut tokens, TokenKind::String, end)
                }
                None => push(&mut tokens, TokenKind::Punct('$'), i + 1),
            },
            _ if ident_char(c) => {
                let mut end = i + 1;
                while end < b.len() && (ident_char(b[end]) || (c.is_ascii_digit() && b[end] == b'.')) {
                    end += 1;
                }
                let end = push(&mut tokens, TokenKind::Word, end);
                let word = tokens.last().expect("just pushed");
                if in_routine(&tokens) {
                    if word.is_word("begin") || word.is_word("case") {
                        depth += 1;
                    } else if word.is_word("end") {
                        depth = depth.saturating_sub(1);
                    }
                }
                end
            }
            _ => {
                let ch = src[i..].chars().next().expect("in bounds");
                push(&mut tokens, TokenKind::Punct(ch), i + ch.len_utf8())
            }
        };
    }
    finish(src, &mut pieces, &mut tokens);
    Ok(pieces)
}

fn finish<'a>(src: &'a str, pieces: &mut Vec<Piece<'a>>, tokens: &mut Vec<Token<'a>>) {
    let (Some(first), Some(last)) = (tokens.first(), tokens.last()) else { return };
    let (start, end) = (first.start, last.start + last.text.len());
    pieces.push(Piece::Sql { text: &src[start..end], start, tokens: std::mem::take(tokens) });
}

/// `CREATE [OR REPLACE] FUNCTION|PROCEDURE`: the statements psql reads BEGIN ... END in.
fn in_routine(tokens: &[Token<'_>]) -> bool {
    let routine = |t: Option<&Token<'_>>| t.is_some_and(|t| t.is_word("function") || t.is_word("procedure"));
    tokens.first().is_some_and(|t| t.is_word("create"))
        && (routine(tokens.get(1))
            || (tokens.get(1).is_some_and(|t| t.is_word("or"))
                && tokens.get(2).is_some_and(|t| t.is_word("replace"))
                && routine(tokens.get(3))))
}

fn is_copy_from_stdin(tokens: &[Token<'_>]) -> bool {
    tokens.first().is_some_and(|t| t.is_word("copy"))
        && tokens.windows(2).any(|w| w[0].is_word("from") && w[1].is_word("stdin"))
}

/// After `COPY ... FROM stdin;` come data lines up to a line `\.`.
fn copy_data_end(src: &str, from: usize) -> Result<usize, Unterminated> {
    let mut pos = src[from..].find('\n').map_or(src.len(), |k| from + k + 1);
    while pos < src.len() {
        let end = src[pos..].find('\n').map_or(src.len(), |k| pos + k);
        if src[pos..end].trim_end() == "\\." {
            return Ok(end);
        }
        pos = end + 1;
    }
    Err(Unterminated { what: "COPY data (no `\\.` line)", start: from })
}

/// The end of a `/* ... */` comment, which may nest.
fn block_comment_end(src: &str, start: usize) -> Result<usize, Unterminated> {
    let b = src.as_bytes();
    let (mut depth, mut i) = (0usize, start);
    while i + 1 < b.len() {
        match (b[i], b[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => i += 1,
        }
    }
    Err(Unterminated { what: "comment", start })
}

/// The end (after the closing quote) of a quoted string or name starting at `start`; a doubled
/// quote stands for itself, and with `escapes` a backslash escapes the next character.
fn quoted_end(src: &str, start: usize, quote: u8, escapes: bool) -> Option<usize> {
    let b = src.as_bytes();
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if escapes => i += 2,
            q if q == quote && b.get(i + 1) == Some(&quote) => i += 2,
            q if q == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// `$tag$` or `$$` at `start`: the end of the opening tag. `$1` (a parameter) is not a tag.
fn dollar_tag(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if b.get(i).is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    while i < b.len() && ident_char(b[i]) && b[i] != b'$' {
        i += 1;
    }
    (b.get(i) == Some(&b'$')).then_some(i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(src: &str) -> Vec<&str> {
        split(src)
            .unwrap()
            .into_iter()
            .map(|p| match p {
                Piece::Meta { text } | Piece::Sql { text, .. } => text,
            })
            .collect()
    }

    #[test]
    fn semicolons_in_quotes_comments_and_dollar_quotes_do_not_end_a_statement() {
        let src = "SELECT 'a;b', \"c;d\" -- e;f\n; /* g; /* nested; */ h; */ SELECT $x$ i; $$ $x$, E'j\\';k';\nCOMMENT ON TABLE t IS 'l;m'";
        assert_eq!(
            texts(src),
            ["SELECT 'a;b', \"c;d\"", "SELECT $x$ i; $$ $x$, E'j\\';k'", "COMMENT ON TABLE t IS 'l;m'"]
        );
    }

    #[test]
    fn psql_meta_commands_are_lines_of_their_own() {
        let src = "\\restrict abc123\nSET x = 1;\n\\unrestrict abc123\n";
        assert_eq!(texts(src), ["\\restrict abc123", "SET x = 1", "\\unrestrict abc123"]);
    }

    #[test]
    fn a_function_body_in_begin_atomic_keeps_its_semicolons() {
        let src = "CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n SELECT CASE WHEN true THEN 1 END;\n SELECT 2;\nEND;\nCREATE TABLE t (id int);";
        let t = texts(src);
        assert_eq!(t.len(), 2, "{t:?}");
        assert!(t[0].ends_with("END"));
        assert_eq!(t[1], "CREATE TABLE t (id int)");
    }

    #[test]
    fn copy_data_is_skipped_up_to_its_end_marker() {
        let src = "COPY t (a) FROM stdin;\n1;2\n'x\n\\.\nSELECT 1;";
        assert_eq!(texts(src), ["COPY t (a) FROM stdin", "SELECT 1"]);
    }

    #[test]
    fn positional_parameters_are_not_dollar_quotes() {
        assert_eq!(texts("PREPARE p AS SELECT $1; SELECT 2"), ["PREPARE p AS SELECT $1", "SELECT 2"]);
    }

    #[test]
    fn unterminated_quotes_are_reported_where_they_open() {
        assert_eq!(split("SELECT 1;\nSELECT 'open").unwrap_err(), Unterminated { what: "string", start: 17 });
        assert_eq!(split("x $f$ body").unwrap_err().what, "dollar-quoted string");
        assert_eq!(split("/* /* */").unwrap_err().what, "comment");
        assert_eq!(split("CREATE TABLE \"t (").unwrap_err().what, "quoted name");
    }
}
