//! Key identity as Dataverse compares keys: one place that says when two key literals name the
//! same record, used by every stage that compares keys (the writer's per-key order, the ledger's
//! done-set and `--changed-only` content index, read-backs, the chaos oracle).
//!
//! Dataverse stores alternate-key columns in SQL Server, whose collation is chosen from the
//! environment's base language when the environment is created and never changes. Microsoft's
//! "Dataverse language collations" page (learn.microsoft.com/power-platform/admin/language-collations)
//! says every language is case-insensitive (`_CI`, "Cafe" = "cafe") and that some are
//! accent-insensitive (`_AI`, "cafe" = "café") while others are accent-sensitive (`_AS`); it lists
//! the collation of each base language by LCID. SQL Server also pads the shorter string with
//! spaces before it compares two strings for equality, so trailing spaces never make two values
//! differ ("SQL Server follows the ANSI/ISO SQL-92 specification … on how to compare strings with
//! spaces", learn.microsoft.com/sql/t-sql/language-elements/string-comparison-assignment).
//!
//! What dvload does with that: inside each quoted string of a key literal it drops trailing
//! U+0020 spaces, lowercases (Unicode simple lowercase), and, for an accent-insensitive collation,
//! decomposes (NFD) and drops combining marks. Names, numbers and GUIDs outside quotes are
//! lowercased (GUIDs and `true`/`false` are case-insensitive in OData). An accent-sensitive
//! collation still takes a precomposed letter and its decomposed form for one (NFC). Limits: SQL Server's
//! Windows collations also equate a few multi-letter forms (German `ß` = `ss`, ligatures) and
//! treat kana and width differences by their own rules; those keys are compared as different
//! here, so such rows may be sent in parallel where the service would serialise them. Where the
//! table below does not list a language, the collation is taken as accent-insensitive (most
//! listed languages are); `--key-collation` overrides it.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use unicode_normalization::UnicodeNormalization as _;
use unicode_normalization::char::is_combining_mark;

/// How the environment compares key values: always case-insensitive and blind to trailing
/// spaces; accent-insensitive or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Collation {
    /// `_CI_AI`: "Cafe", "cafe" and "café" are one key (English and most base languages).
    AccentInsensitive,
    /// `_CI_AS`: "Cafe" and "cafe" are one key, "café" another.
    AccentSensitive,
}

/// Base languages whose collation Microsoft lists as `_CI_AS` (accent-sensitive), by LCID, from
/// the "Languages and associated collations used in Dataverse" table of the language-collations
/// page: Finnish Swedish (Finland) 1035, Romanian 1048, Croatian 1050, Slovak 1051, Finnish
/// Swedish (Sweden) 1053, Thai 1054, Indonesian 1057, Ukrainian 1058, Slovenian 1060,
/// Estonian 1061, Latvian 1062.
const ACCENT_SENSITIVE_LCIDS: &[u32] = &[
    1035, 1048, 1050, 1051, 1053, 1054, 1057, 1058, 1060, 1061, 1062,
];

impl Default for Collation {
    /// English (1033), the most common base language, is `_CI_AI`; also what a dry run and
    /// `validate` assume, having no environment to ask.
    fn default() -> Self {
        Collation::AccentInsensitive
    }
}

impl Collation {
    /// The collation of an environment whose base language (`organization.languagecode`) is
    /// `lcid`.
    pub fn for_language(lcid: u32) -> Collation {
        if ACCENT_SENSITIVE_LCIDS.contains(&lcid) {
            Collation::AccentSensitive
        } else {
            Collation::AccentInsensitive
        }
    }

    /// Parses `--key-collation`: `ci_ai` / `ci_as` (any case, with or without the leading `_`).
    pub fn parse(text: &str) -> Result<Collation, String> {
        match text
            .trim()
            .trim_start_matches('_')
            .to_ascii_lowercase()
            .as_str()
        {
            "ci_ai" | "ai" | "accent-insensitive" => Ok(Collation::AccentInsensitive),
            "ci_as" | "as" | "accent-sensitive" => Ok(Collation::AccentSensitive),
            _ => Err(format!(
                "'{text}' is not a collation: use ci_ai (accent-insensitive, English and most languages) or ci_as (accent-sensitive)"
            )),
        }
    }

    /// The collation's suffix as Microsoft writes it: `_CI_AI` or `_CI_AS`.
    pub fn name(self) -> &'static str {
        match self {
            Collation::AccentInsensitive => "_CI_AI",
            Collation::AccentSensitive => "_CI_AS",
        }
    }

    /// The key literal in the form two literals share when the environment takes them for one
    /// key (`accountnumber='ACC-1  '` and `accountnumber='acc-1'` give `accountnumber='acc-1'`).
    pub fn fold(self, key: &str) -> Cow<'_, str> {
        // The common case, ASCII without a trailing space in a quoted value and nothing upper
        // case, is already folded.
        let plain = key.is_ascii()
            && !key.bytes().any(|b| b.is_ascii_uppercase())
            && !quote_after_space(key.as_bytes())
            && !key.ends_with(' ');
        if plain {
            return Cow::Borrowed(key);
        }
        // ASCII with upper case (`ACC-00001`), no trailing space in a value: no accent can
        // be there, so lower case is the whole fold.
        if key.is_ascii() && !quote_after_space(key.as_bytes()) && !key.ends_with(' ') {
            return Cow::Owned(key.to_ascii_lowercase());
        }
        let mut out = String::with_capacity(key.len());
        let mut rest = key;
        while let Some(open) = rest.find('\'') {
            out.push_str(&rest[..open].to_lowercase());
            out.push('\'');
            // The quoted value runs to the next quote that is not doubled.
            let body = &rest[open + 1..];
            let mut end = None;
            let mut i = 0;
            let bytes = body.as_bytes();
            while i < bytes.len() {
                if bytes[i] == b'\'' {
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    end = Some(i);
                    break;
                }
                i += 1;
            }
            let Some(end) = end else {
                // Not a literal dvload builds; fold what is there as one value.
                self.fold_value(body, &mut out);
                return Cow::Owned(out);
            };
            self.fold_value(&body[..end], &mut out);
            out.push('\'');
            rest = &body[end + 1..];
        }
        out.push_str(&rest.to_lowercase());
        Cow::Owned(out)
    }

    /// Appends one quoted value (still in its doubled-quote form) folded.
    fn fold_value(self, value: &str, out: &mut String) {
        let value = value.trim_end_matches(' ');
        match self {
            Collation::AccentSensitive => out.extend(value.to_lowercase().nfc()),
            Collation::AccentInsensitive => out.extend(
                value
                    .to_lowercase()
                    .nfd()
                    .filter(|c| !is_combining_mark(*c)),
            ),
        }
    }

    /// A 64-bit identity of a key under this collation (XXH3-64 of the folded literal, never 0:
    /// 0 stands for "no key" in the ledger's packed forms). Two literals the environment takes
    /// for one key have one identity; a collision between two others only makes them wait for
    /// each other, or sends a row `--changed-only` could have left out.
    pub fn key_id(self, key: &str) -> u64 {
        // ASCII without a trailing space in a quoted value (the common case) folds to lower
        // case, as in `fold`; a short one is lowered on the stack rather than in a new String.
        // The identity is the same either way (the ledger keeps it).
        let bytes = key.as_bytes();
        if bytes.len() <= 64 {
            // One pass without early exit (the compiler vectorizes it) lowers the key and notes
            // whether it is ASCII and has a space; only a key with a space is looked at again.
            let mut buf = [0u8; 64];
            let (mut high, mut space) = (0u8, false);
            for (lowered, &b) in buf.iter_mut().zip(bytes) {
                *lowered = b.to_ascii_lowercase();
                high |= b;
                space |= b == b' ';
            }
            if high.is_ascii() && (!space || (!key.ends_with(' ') && !quote_after_space(bytes))) {
                return xxhash_rust::xxh3::xxh3_64(&buf[..bytes.len()]).max(1);
            }
        }
        xxhash_rust::xxh3::xxh3_64(self.fold(key).as_bytes()).max(1)
    }
}

/// True when a quote follows a space (` '`: a quoted value that opens with spaces, which the
/// fold treats apart).
fn quote_after_space(bytes: &[u8]) -> bool {
    bytes.windows(2).any(|w| w == b" '")
}

/// Hashes a key identity as itself: identities are XXH3 digests, already evenly spread, so
/// hashing them again (SipHash, the default) only costs time when a million are loaded.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyIdHasher(u64);

impl Hasher for KeyIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used for u64 keys; a plain fold keeps it correct for anything else.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A map by key identity, hashed as itself.
pub type ById<V> = HashMap<u64, V, BuildHasherDefault<KeyIdHasher>>;

/// A set of key identities, hashed as themselves.
pub type IdSet = HashSet<u64, BuildHasherDefault<KeyIdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_the_hash_of_the_fold_whatever_the_path() {
        let long = "k='X".repeat(30);
        let keys = [
            "accountnumber='ACC-0000001'",
            "accountnumber='acc-1'",
            "accountnumber='ACC-1 '",
            "accountnumber='ACC-1' ",
            "name='Ça va',city='Paris'",
            "name='O''Brien  ',n=5",
            "name=' Bob',n=5",
            "k=' '",
            "n=5 ",
            "",
            long.as_str(),
            &long[..64],
            &long[..65],
        ];
        for c in [Collation::AccentInsensitive, Collation::AccentSensitive] {
            for k in keys {
                let slow = xxhash_rust::xxh3::xxh3_64(c.fold(k).as_bytes()).max(1);
                assert_eq!(c.key_id(k), slow, "{k:?}");
            }
        }
    }

    const AI: Collation = Collation::AccentInsensitive;
    const AS: Collation = Collation::AccentSensitive;

    #[test]
    fn case_and_trailing_spaces_never_make_two_keys() {
        for c in [AI, AS] {
            let one = c.key_id("accountnumber='acc-1'");
            assert_eq!(c.key_id("accountnumber='ACC-1'"), one);
            assert_eq!(c.key_id("accountnumber='Acc-1   '"), one);
            assert_ne!(
                c.key_id("accountnumber=' acc-1'"),
                one,
                "leading spaces count"
            );
            assert_ne!(c.key_id("accountnumber='acc-2'"), one);
        }
    }

    #[test]
    fn accents_count_only_where_the_collation_says() {
        assert_eq!(AI.key_id("name='Café'"), AI.key_id("name='CAFE'"));
        assert_eq!(
            AI.key_id("name='Cafe\u{301}'"),
            AI.key_id("name='café'"),
            "composed or not"
        );
        assert_ne!(AS.key_id("name='Café'"), AS.key_id("name='CAFE'"));
        assert_eq!(AS.key_id("name='Café'"), AS.key_id("name='CAFÉ '"));
        assert_eq!(AS.key_id("name='Cafe\u{301}'"), AS.key_id("name='café'"));
    }

    #[test]
    fn quotes_and_compound_keys_fold_value_by_value() {
        assert_eq!(
            AI.fold("firstname='O''Neil  ',emailaddress1='A@B.com '"),
            "firstname='o''neil',emailaddress1='a@b.com'"
        );
        // A space before a doubled quote is inside the value, not trailing.
        assert_eq!(AI.fold("n='a '' '"), "n='a '''");
        assert_eq!(
            AI.fold("00000000-0000-0000-0000-00000000ABCD"),
            "00000000-0000-0000-0000-00000000abcd"
        );
        assert!(matches!(AI.fold("accountnumber='acc-1'"), Cow::Borrowed(_)));
        assert_eq!(AI.fold("accountnumber='ACC-1'"), "accountnumber='acc-1'");
        assert_eq!(AS.fold("n='A B  ',m='C'"), "n='a b',m='c'");
        assert_ne!(AI.key_id(""), 0, "0 means no key");
    }

    #[test]
    fn the_base_language_chooses_the_collation() {
        assert_eq!(Collation::for_language(1033), AI);
        assert_eq!(Collation::for_language(1036), AI);
        assert_eq!(Collation::for_language(1053), AS);
        assert_eq!(Collation::parse("_CI_AS"), Ok(AS));
        assert_eq!(Collation::parse("ci_ai"), Ok(AI));
        assert!(Collation::parse("bin").unwrap_err().contains("ci_ai"));
    }
}
