//! Alpine versions: `digits{.digits}[letter]{_suffix[digits]}[~hash][-rN]`, ordered as
//! `apk version -t` orders them (apk-tools `src/version.c`, current branch). No maintained
//! crate implements it, so this is a token walk written from that description:
//!
//! - a version is a sequence of tokens, each allowed only after certain others;
//! - two versions are compared token by token while both have the same kind of token;
//! - digits after a dot compare as numbers, unless either has a leading zero, then as
//!   strings (`1.010 < 1.09`); suffixes order `alpha < beta < pre < rc < (none) < cvs <
//!   svn < git < hg < p`;
//! - where the kinds differ, a pre-release suffix is lower, else the version that goes on
//!   (whose next token kind comes earlier in the list) is higher.
//!
//! apk refuses a string that breaks the grammar (`apk version -t` exits 1), so it is an
//! error here, and the match is "unknown".

use std::cmp::Ordering;

use super::{Scheme, VersionError};

/// apk's version order.
pub struct Apk;

/// A version apk accepts.
#[derive(Debug, Clone)]
pub struct ApkVersion(String);

impl Scheme for Apk {
    type Version = ApkVersion;
    const NAME: &'static str = "apk";

    fn parse(text: &str) -> Result<ApkVersion, VersionError> {
        let mut tokens = Tokens::new(text);
        while tokens.kind < Kind::End {
            tokens.advance();
        }
        match tokens.kind {
            Kind::End => Ok(ApkVersion(text.to_string())),
            _ => Err(VersionError::new::<Self>(text)),
        }
    }
}

impl Ord for ApkVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let (mut a, mut b) = (Tokens::new(&self.0), Tokens::new(&other.0));
        while a.kind == b.kind && a.kind < Kind::End {
            let order = a.compare_same_kind(&b);
            if order != Ordering::Equal {
                return order;
            }
            a.advance();
            b.advance();
        }
        if a.kind == b.kind {
            return Ordering::Equal;
        }
        if a.kind == Kind::Suffix && a.suffix < Suffix::None {
            return Ordering::Less;
        }
        if b.kind == Kind::Suffix && b.suffix < Suffix::None {
            return Ordering::Greater;
        }
        // The version whose next token comes earlier in the grammar goes on: it is higher.
        b.kind.cmp(&a.kind)
    }
}

// Equality is apk's (`1-r1` = `1-r01`), not the strings'.
impl PartialEq for ApkVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ApkVersion {}

impl PartialOrd for ApkVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Token kinds in grammar order; the order matters (see `Ord for ApkVersion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    InitialDigits,
    Digits,
    Letter,
    Suffix,
    SuffixNumber,
    CommitHash,
    Revision,
    End,
    Invalid,
}

/// Suffixes in their order; `None` stands for "no suffix" (a release).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Suffix {
    Alpha,
    Beta,
    Pre,
    Rc,
    None,
    Cvs,
    Svn,
    Git,
    Hg,
    P,
}

impl Suffix {
    fn from_name(name: &str) -> Option<Suffix> {
        Some(match name {
            "alpha" => Suffix::Alpha,
            "beta" => Suffix::Beta,
            "pre" => Suffix::Pre,
            "rc" => Suffix::Rc,
            "cvs" => Suffix::Cvs,
            "svn" => Suffix::Svn,
            "git" => Suffix::Git,
            "hg" => Suffix::Hg,
            "p" => Suffix::P,
            _ => return None,
        })
    }
}

/// A cursor over a version string: the current token and what follows it.
struct Tokens<'a> {
    rest: &'a str,
    kind: Kind,
    text: &'a str,
    number: u64,
    suffix: Suffix,
}

impl<'a> Tokens<'a> {
    fn new(version: &'a str) -> Self {
        let mut tokens = Tokens {
            rest: version,
            kind: Kind::InitialDigits,
            text: "",
            number: 0,
            suffix: Suffix::None,
        };
        tokens.take_digits();
        tokens
    }

    fn take_digits(&mut self) {
        let len = self.rest.bytes().take_while(u8::is_ascii_digit).count();
        let (digits, rest) = self.rest.split_at(len);
        self.text = digits;
        self.rest = rest;
        // apk keeps the low 64 bits of an over-long number; so does this.
        self.number = digits.bytes().fold(0u64, |n, d| {
            n.wrapping_mul(10).wrapping_add(u64::from(d - b'0'))
        });
        if digits.is_empty() {
            self.kind = Kind::Invalid;
        }
    }

    /// Moves to the next token, or to `End` / `Invalid`.
    fn advance(&mut self) {
        let Some(first) = self.rest.chars().next() else {
            self.kind = Kind::End;
            return;
        };
        let previous = self.kind;
        match first {
            'a'..='z' if previous <= Kind::Digits => {
                (self.text, self.rest) = self.rest.split_at(1);
                self.kind = Kind::Letter;
            }
            '.' | '0'..='9'
                if previous <= Kind::Digits || (first != '.' && previous == Kind::Suffix) =>
            {
                if first == '.' {
                    self.rest = &self.rest[1..];
                }
                self.kind = if previous == Kind::Suffix {
                    Kind::SuffixNumber
                } else {
                    Kind::Digits
                };
                self.take_digits();
            }
            '_' if previous <= Kind::SuffixNumber => {
                let name_len = self.rest[1..]
                    .bytes()
                    .take_while(u8::is_ascii_lowercase)
                    .count();
                let name = &self.rest[1..1 + name_len];
                self.rest = &self.rest[1 + name_len..];
                match Suffix::from_name(name) {
                    Some(suffix) => (self.kind, self.suffix) = (Kind::Suffix, suffix),
                    None => self.kind = Kind::Invalid,
                }
            }
            '~' if previous < Kind::CommitHash => {
                let len = self.rest[1..]
                    .bytes()
                    .take_while(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                    .count();
                self.text = &self.rest[1..1 + len];
                self.rest = &self.rest[1 + len..];
                self.kind = if len == 0 {
                    Kind::Invalid
                } else {
                    Kind::CommitHash
                };
            }
            '-' if previous < Kind::Revision && self.rest.starts_with("-r") => {
                self.rest = &self.rest[2..];
                self.kind = Kind::Revision;
                self.take_digits();
            }
            _ => self.kind = Kind::Invalid,
        }
    }

    /// Compares two tokens of the same kind.
    fn compare_same_kind(&self, other: &Tokens) -> Ordering {
        match self.kind {
            Kind::Digits if self.text.starts_with('0') || other.text.starts_with('0') => {
                self.text.cmp(other.text)
            }
            Kind::InitialDigits | Kind::Digits | Kind::SuffixNumber | Kind::Revision => {
                self.number.cmp(&other.number)
            }
            Kind::Letter => self.text.cmp(other.text),
            Kind::Suffix => self.suffix.cmp(&other.suffix),
            _ => self.text.cmp(other.text),
        }
    }
}
