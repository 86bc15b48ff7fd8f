#![allow(missing_docs)] // variants and fields are named after PubMed syntax; the module doc explains them
//! Boolean search queries as the policy writes them for PubMed: terms, `"quoted phrases"`,
//! `AND` / `OR` / `NOT`, parentheses, truncation (`child*`) and field tags (`[tiab]`, `[Title]`,
//! `[MeSH Terms]`...). Operators are applied strictly left to right with equal precedence, as
//! PubMed documents ("PubMed processes all Boolean operators in a left-to-right sequence");
//! adjacent terms without an operator are ANDed. Tags for title and abstract are kept as
//! fields; every other tag (MeSH, publication type...) is searched in all text, since the
//! offline records carry no such indexing.

/// Where a term is searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    All,
    Title,
    Abstract,
    /// Title or abstract (`[tiab]`).
    TitleAbstract,
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// One word; `prefix` for truncation (`word*`).
    Term { text: String, field: Field, prefix: bool },
    /// Consecutive words.
    Phrase { words: Vec<String>, field: Field },
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    /// Left without right (PubMed's binary NOT).
    Not(Box<Node>, Box<Node>),
}

/// Why a query cannot be parsed (a format error of the answer, not a crash).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("empty query")]
    Empty,
    #[error("unbalanced parentheses at character {0}")]
    Unbalanced(usize),
    #[error("unterminated quote starting at character {0}")]
    Unterminated(usize),
    #[error("operator {op} at character {at} has nothing on its {side}")]
    DanglingOperator { op: String, at: usize, side: &'static str },
    #[error("unterminated field tag at character {0}")]
    BadTag(usize),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String, usize),
    Quoted(String, usize),
    Tag(Field),
    Open(usize),
    Close(usize),
    Op(Op, usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    And,
    Or,
    Not,
}

fn tag_field(tag: &str) -> Field {
    match tag.trim().to_ascii_lowercase().as_str() {
        "ti" | "title" => Field::Title,
        "ab" | "abstract" => Field::Abstract,
        "tiab" | "title/abstract" | "tw" | "text word" => Field::TitleAbstract,
        _ => Field::All,
    }
}

fn tokenize(query: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<(usize, char)> = query.char_indices().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::Open(at));
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close(at));
                i += 1;
            }
            '"' | '\u{201c}' | '\u{201d}' => {
                let start = i;
                i += 1;
                let mut text = String::new();
                while i < chars.len() && !matches!(chars[i].1, '"' | '\u{201c}' | '\u{201d}') {
                    text.push(chars[i].1);
                    i += 1;
                }
                if i == chars.len() {
                    return Err(QueryError::Unterminated(chars[start].0));
                }
                i += 1;
                tokens.push(Token::Quoted(text, at));
            }
            '[' => {
                let start = i;
                i += 1;
                let mut tag = String::new();
                while i < chars.len() && chars[i].1 != ']' {
                    tag.push(chars[i].1);
                    i += 1;
                }
                if i == chars.len() {
                    return Err(QueryError::BadTag(chars[start].0));
                }
                i += 1;
                tokens.push(Token::Tag(tag_field(&tag)));
            }
            _ => {
                let mut word = String::new();
                while i < chars.len() && !chars[i].1.is_whitespace() && !matches!(chars[i].1, '(' | ')' | '"' | '[' | '\u{201c}' | '\u{201d}') {
                    word.push(chars[i].1);
                    i += 1;
                }
                // Operators are upper case in PubMed; lower-case "and"/"or" are ordinary words.
                tokens.push(match word.as_str() {
                    "AND" | "&&" => Token::Op(Op::And, at),
                    "OR" | "||" => Token::Op(Op::Or, at),
                    "NOT" => Token::Op(Op::Not, at),
                    _ => Token::Word(word, at),
                });
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    /// A sequence of operands joined left to right, up to a `)` or the end.
    fn sequence(&mut self) -> Result<Option<Node>, QueryError> {
        let mut acc: Option<Node> = None;
        let mut pending: Option<(Op, usize)> = None;
        while self.pos < self.tokens.len() {
            match self.tokens[self.pos].clone() {
                Token::Close(_) => break,
                Token::Op(op, at) => {
                    if acc.is_none() || pending.is_some() {
                        return Err(QueryError::DanglingOperator { op: format!("{op:?}").to_uppercase(), at, side: "left" });
                    }
                    pending = Some((op, at));
                    self.pos += 1;
                }
                Token::Tag(_) => self.pos += 1, // a tag with nothing before it: ignored
                _ => {
                    let operand = self.operand()?;
                    acc = Some(match (acc.take(), pending.take()) {
                        (None, _) => operand,
                        (Some(left), Some((Op::Or, _))) => Node::Or(Box::new(left), Box::new(operand)),
                        (Some(left), Some((Op::Not, _))) => Node::Not(Box::new(left), Box::new(operand)),
                        (Some(left), _) => Node::And(Box::new(left), Box::new(operand)),
                    });
                }
            }
        }
        if let Some((op, at)) = pending {
            return Err(QueryError::DanglingOperator { op: format!("{op:?}").to_uppercase(), at, side: "right" });
        }
        Ok(acc)
    }

    fn field_suffix(&mut self) -> Field {
        match self.tokens.get(self.pos) {
            Some(Token::Tag(f)) => {
                self.pos += 1;
                *f
            }
            _ => Field::All,
        }
    }

    fn operand(&mut self) -> Result<Node, QueryError> {
        match self.tokens[self.pos].clone() {
            Token::Open(at) => {
                self.pos += 1;
                let inner = self.sequence()?;
                match self.tokens.get(self.pos) {
                    Some(Token::Close(_)) => self.pos += 1,
                    _ => return Err(QueryError::Unbalanced(at)),
                }
                // A tag after a group applies to nothing in particular here; it is dropped.
                self.field_suffix();
                inner.ok_or(QueryError::Empty)
            }
            Token::Quoted(text, _) => {
                self.pos += 1;
                let field = self.field_suffix();
                let words: Vec<String> = text.split_whitespace().map(String::from).collect();
                Ok(match words.len() {
                    0 => Node::Phrase { words, field },
                    1 => Node::Term { text: words[0].trim_end_matches('*').to_string(), field, prefix: words[0].ends_with('*') },
                    _ => Node::Phrase { words, field },
                })
            }
            Token::Word(word, _) => {
                self.pos += 1;
                let field = self.field_suffix();
                let prefix = word.ends_with('*');
                Ok(Node::Term { text: word.trim_end_matches('*').to_string(), field, prefix })
            }
            Token::Close(at) => Err(QueryError::Unbalanced(at)),
            Token::Op(_, _) | Token::Tag(_) => unreachable!("sequence() handles operators and tags"),
        }
    }
}

/// Parses a Boolean query.
pub fn parse(query: &str) -> Result<Node, QueryError> {
    let mut parser = Parser { tokens: tokenize(query)?, pos: 0 };
    let node = parser.sequence()?;
    if let Some(Token::Close(at)) = parser.tokens.get(parser.pos) {
        return Err(QueryError::Unbalanced(*at));
    }
    node.ok_or(QueryError::Empty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn term(t: &str) -> Node {
        Node::Term { text: t.into(), field: Field::All, prefix: false }
    }

    #[test]
    fn left_to_right_with_phrases_tags_and_truncation() {
        let q = parse(r#"(asthma[tiab] OR "wheezing disorder") AND child* NOT adult[ti]"#).unwrap();
        let expected = Node::Not(
            Box::new(Node::And(
                Box::new(Node::Or(
                    Box::new(Node::Term { text: "asthma".into(), field: Field::TitleAbstract, prefix: false }),
                    Box::new(Node::Phrase { words: vec!["wheezing".into(), "disorder".into()], field: Field::All }),
                )),
                Box::new(Node::Term { text: "child".into(), field: Field::All, prefix: true }),
            )),
            Box::new(Node::Term { text: "adult".into(), field: Field::Title, prefix: false }),
        );
        assert_eq!(q, expected);
        // No precedence: a OR b AND c = (a OR b) AND c.
        assert_eq!(parse("a OR b AND c").unwrap(), Node::And(Box::new(Node::Or(Box::new(term("a")), Box::new(term("b")))), Box::new(term("c"))));
        // Adjacent terms are ANDed; lower-case "and" is a word.
        assert_eq!(parse("heart attack").unwrap(), Node::And(Box::new(term("heart")), Box::new(term("attack"))));
        assert_eq!(parse("[MeSH Terms] x[mh]").unwrap(), term("x"));
    }

    #[test]
    fn malformed_queries_are_errors_naming_the_place() {
        assert_eq!(parse(""), Err(QueryError::Empty));
        assert_eq!(parse("   "), Err(QueryError::Empty));
        assert_eq!(parse("(a OR b"), Err(QueryError::Unbalanced(0)));
        assert_eq!(parse("a OR b)"), Err(QueryError::Unbalanced(6)));
        assert_eq!(parse("\"open phrase"), Err(QueryError::Unterminated(0)));
        assert!(matches!(parse("AND a"), Err(QueryError::DanglingOperator { side: "left", .. })));
        assert!(matches!(parse("a OR"), Err(QueryError::DanglingOperator { side: "right", .. })));
        assert!(matches!(parse("a OR AND b"), Err(QueryError::DanglingOperator { .. })));
        assert_eq!(parse("a[tiab"), Err(QueryError::BadTag(1)));
        assert_eq!(parse("()"), Err(QueryError::Empty));
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(q in ".{0,200}") {
            let _ = parse(&q);
        }

        #[test]
        fn query_like_text_never_panics(parts in prop::collection::vec(prop_oneof![
            Just("AND".to_string()), Just("OR".to_string()), Just("NOT".to_string()), Just("(".to_string()),
            Just(")".to_string()), Just("\"".to_string()), Just("[tiab]".to_string()), Just("[".to_string()),
            "[a-z]{1,6}\\*?".prop_map(|s| s),
        ], 0..30)) {
            let _ = parse(&parts.join(" "));
        }
    }
}
