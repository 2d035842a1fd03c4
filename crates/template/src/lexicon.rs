//! The forbidden-content lexicon: terms by category, in Chinese and English.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::text::is_cjk;

/// A category of content email templates may not carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForbiddenCategory {
    /// Credential and account phishing (账户异常, "verify your account").
    Phishing,
    /// Top-up lotteries (充值抽奖).
    TopUpLottery,
    /// Pornography (色情).
    Pornography,
    /// Drugs (毒品).
    Drugs,
    /// Violence (暴力).
    Violence,
    /// Threats and intimidation (威胁).
    Threats,
    /// Gambling (赌博).
    Gambling,
    /// Lottery tickets (彩票).
    LotteryTickets,
    /// Cash-back (返现).
    CashBack,
    /// Flash sales (秒杀).
    FlashSales,
    /// Loans (贷款).
    Loans,
    /// Debt collection (催收).
    DebtCollection,
    /// Click farming / order brushing (刷单).
    ClickFarming,
    /// Religious proselytising (宗教).
    Religion,
    /// Superstition and fortune telling (迷信).
    Superstition,
    /// Moving the conversation off-mail: add QQ / add WeChat / join group (加QQ, 加微信, 加群).
    AddContact,
    /// Invoice issuing (代开发票).
    InvoiceIssuing,
}

impl ForbiddenCategory {
    /// Every category, in declaration order.
    pub const ALL: [ForbiddenCategory; 17] = [
        Self::Phishing,
        Self::TopUpLottery,
        Self::Pornography,
        Self::Drugs,
        Self::Violence,
        Self::Threats,
        Self::Gambling,
        Self::LotteryTickets,
        Self::CashBack,
        Self::FlashSales,
        Self::Loans,
        Self::DebtCollection,
        Self::ClickFarming,
        Self::Religion,
        Self::Superstition,
        Self::AddContact,
        Self::InvoiceIssuing,
    ];

    /// The stable snake_case name used in TOML and in findings (`"top_up_lottery"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Phishing => "phishing",
            Self::TopUpLottery => "top_up_lottery",
            Self::Pornography => "pornography",
            Self::Drugs => "drugs",
            Self::Violence => "violence",
            Self::Threats => "threats",
            Self::Gambling => "gambling",
            Self::LotteryTickets => "lottery_tickets",
            Self::CashBack => "cash_back",
            Self::FlashSales => "flash_sales",
            Self::Loans => "loans",
            Self::DebtCollection => "debt_collection",
            Self::ClickFarming => "click_farming",
            Self::Religion => "religion",
            Self::Superstition => "superstition",
            Self::AddContact => "add_contact",
            Self::InvoiceIssuing => "invoice_issuing",
        }
    }

    /// The Chinese name, for reasons shown to Chinese-speaking users.
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Phishing => "钓鱼诈骗",
            Self::TopUpLottery => "充值抽奖",
            Self::Pornography => "色情",
            Self::Drugs => "毒品",
            Self::Violence => "暴力",
            Self::Threats => "威胁恐吓",
            Self::Gambling => "赌博",
            Self::LotteryTickets => "彩票",
            Self::CashBack => "返现",
            Self::FlashSales => "秒杀",
            Self::Loans => "贷款",
            Self::DebtCollection => "催收",
            Self::ClickFarming => "刷单",
            Self::Religion => "宗教",
            Self::Superstition => "封建迷信",
            Self::AddContact => "加QQ/加微信/加群",
            Self::InvoiceIssuing => "代开发票",
        }
    }
}

impl fmt::Display for ForbiddenCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The string is not a forbidden-content category name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown forbidden-content category {0:?}")]
pub struct ParseForbiddenCategoryError(pub String);

impl FromStr for ForbiddenCategory {
    type Err = ParseForbiddenCategoryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| ParseForbiddenCategoryError(s.to_owned()))
    }
}

/// Building a lexicon failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LexiconError {
    /// The TOML text does not parse or has the wrong shape.
    #[error("invalid lexicon TOML: {0}")]
    Toml(String),
    /// A category name that is not a [`ForbiddenCategory`].
    #[error(transparent)]
    UnknownCategory(#[from] ParseForbiddenCategoryError),
    /// A term that is empty (or only `*`) after trimming.
    #[error("empty term in category {0}")]
    EmptyTerm(ForbiddenCategory),
}

/// How a term is matched.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// ASCII/Latin: whole words, case-insensitive, whitespace runs normalised.
    Words(String),
    /// `gambl*`: word start, any ending.
    Prefix(String),
    /// Contains CJK: substring of the text with whitespace removed, so `加 微 信` still matches.
    Cjk(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    category: ForbiddenCategory,
    term: String,
    pattern: Pattern,
}

/// One forbidden term found in a text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LexiconMatch {
    /// The term's category.
    pub category: ForbiddenCategory,
    /// The lexicon term that matched, as configured.
    pub term: String,
}

/// A configurable list of forbidden terms by [`ForbiddenCategory`].
///
/// Matching rules, chosen so ordinary words do not trip it:
/// - Terms without CJK characters match whole words only, case-insensitively, with
///   whitespace runs treated as one space: `ass` does not match `class`, `loan` does not
///   match `loans` (write `loan*` to match every word starting with `loan`).
/// - Terms containing CJK characters match as substrings, case-insensitively, of the text
///   with all whitespace removed (Chinese has no word spaces, and spacing `加 微 信` out
///   must not evade the rule).
/// - Full-width Latin letters and digits (`ＱＱ`) are folded to ASCII first.
///
/// [`Lexicon::default`] is the built-in list ([`Lexicon::builtin`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexicon {
    entries: Vec<Entry>,
}

impl Default for Lexicon {
    fn default() -> Self {
        Self::builtin()
    }
}

/// The TOML shape accepted by [`Lexicon::from_toml`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlLexicon {
    #[serde(default)]
    extend_default: bool,
    #[serde(default)]
    terms: BTreeMap<String, Vec<String>>,
}

impl Lexicon {
    /// The built-in lexicon: a list of terms per category in Chinese and English.
    pub fn builtin() -> Self {
        let mut lexicon = Self::empty();
        for (category, terms) in crate::lexicon_default::DEFAULT_TERMS {
            for term in *terms {
                // Built-in terms are non-empty literals; a bad one would be skipped, not panic.
                let _ = lexicon.add(*category, term);
            }
        }
        lexicon
    }

    /// A lexicon with no terms: nothing is forbidden.
    pub fn empty() -> Self {
        Self { entries: Vec::new() }
    }

    /// A lexicon of exactly these `(category, term)` entries.
    pub fn from_entries<I, S>(entries: I) -> Result<Self, LexiconError>
    where
        I: IntoIterator<Item = (ForbiddenCategory, S)>,
        S: AsRef<str>,
    {
        let mut lexicon = Self::empty();
        for (category, term) in entries {
            lexicon.add(category, term.as_ref())?;
        }
        Ok(lexicon)
    }

    /// Parses a lexicon from TOML:
    ///
    /// ```toml
    /// extend_default = true          # start from the built-in list (default: false)
    /// [terms]
    /// gambling = ["casino*", "赌场"]
    /// add_contact = ["加飞机"]
    /// ```
    ///
    /// Category names are the snake_case [`ForbiddenCategory`] names.
    pub fn from_toml(text: &str) -> Result<Self, LexiconError> {
        let parsed: TomlLexicon = toml::from_str(text).map_err(|e| LexiconError::Toml(e.to_string()))?;
        let mut lexicon = if parsed.extend_default {
            Self::builtin()
        } else {
            Self::empty()
        };
        for (name, terms) in parsed.terms {
            let category: ForbiddenCategory = name.parse()?;
            for term in terms {
                lexicon.add(category, &term)?;
            }
        }
        Ok(lexicon)
    }

    /// Adds one term (duplicates are ignored). A trailing `*` on a non-CJK term makes it
    /// a word-prefix match.
    pub fn add(&mut self, category: ForbiddenCategory, term: &str) -> Result<(), LexiconError> {
        let term = term.trim();
        let normalized = normalize(term);
        let pattern = if normalized.chars().any(is_cjk) {
            Pattern::Cjk(normalized.chars().filter(|c| !c.is_whitespace()).collect())
        } else if let Some(prefix) = normalized.strip_suffix('*') {
            Pattern::Prefix(prefix.trim_end().to_owned())
        } else {
            Pattern::Words(normalized)
        };
        let empty = match &pattern {
            Pattern::Words(p) | Pattern::Prefix(p) | Pattern::Cjk(p) => p.is_empty(),
        };
        if empty {
            return Err(LexiconError::EmptyTerm(category));
        }
        let entry = Entry {
            category,
            term: term.to_owned(),
            pattern,
        };
        if !self.entries.contains(&entry) {
            self.entries.push(entry);
        }
        Ok(())
    }

    /// Adds every term of `other`.
    pub fn extend(&mut self, other: Lexicon) {
        for entry in other.entries {
            if !self.entries.contains(&entry) {
                self.entries.push(entry);
            }
        }
    }

    /// Number of terms.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no terms.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The terms of one category, as configured.
    pub fn terms(&self, category: ForbiddenCategory) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(move |e| e.category == category)
            .map(|e| e.term.as_str())
    }

    /// Every term found in `text`, in lexicon order, each at most once.
    pub fn find(&self, text: &str) -> Vec<LexiconMatch> {
        let words = normalize(text);
        let compact: String = words.chars().filter(|c| !c.is_whitespace()).collect();
        self.entries
            .iter()
            .filter(|e| match &e.pattern {
                Pattern::Cjk(p) => compact.contains(p.as_str()),
                Pattern::Words(p) => contains_word(&words, p, true),
                Pattern::Prefix(p) => contains_word(&words, p, false),
            })
            .map(|e| LexiconMatch {
                category: e.category,
                term: e.term.clone(),
            })
            .collect()
    }
}

/// Lowercases, folds full-width ASCII and collapses whitespace runs to one space.
fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        let c = match c as u32 {
            0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            0x3000 => ' ',
            _ => c,
        };
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// A character that continues a Latin word (CJK characters do not: `赌博casino` has a
/// boundary before `casino`).
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() && !is_cjk(c)
}

/// Whether `needle` occurs in `hay` starting at a word boundary and, if `whole`, ending at one.
fn contains_word(hay: &str, needle: &str, whole: bool) -> bool {
    hay.match_indices(needle).any(|(i, m)| {
        let before_ok = hay[..i].chars().next_back().is_none_or(|c| !is_word_char(c));
        let after_ok = !whole || hay[i + m.len()..].chars().next().is_none_or(|c| !is_word_char(c));
        before_ok && after_ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ForbiddenCategory as F;

    fn categories(lexicon: &Lexicon, text: &str) -> Vec<(ForbiddenCategory, String)> {
        lexicon.find(text).into_iter().map(|m| (m.category, m.term)).collect()
    }

    #[test]
    fn word_boundaries_and_case() {
        let lx = Lexicon::from_entries([
            (F::Pornography, "ass"),
            (F::Gambling, "online casino"),
            (F::Loans, "loan*"),
        ])
        .expect("valid entries");
        assert!(lx.find("a class of its own, passing").is_empty());
        assert_eq!(categories(&lx, "Kick ASS!"), vec![(F::Pornography, "ass".to_owned())]);
        assert_eq!(
            categories(&lx, "Try our Online\n  Casino."),
            vec![(F::Gambling, "online casino".to_owned())]
        );
        assert_eq!(categories(&lx, "Loans today"), vec![(F::Loans, "loan*".to_owned())]);
        assert!(lx.find("sloan").is_empty());
        assert_eq!(categories(&lx, "赌博online casino网站").len(), 1);
    }

    #[test]
    fn cjk_terms_ignore_spacing_and_fullwidth() {
        let lx = Lexicon::from_entries([(F::AddContact, "加QQ"), (F::AddContact, "加微信")]).expect("valid");
        assert_eq!(lx.find("请加 微 信了解").len(), 1);
        assert_eq!(lx.find("欢迎加ｑｑ").len(), 1);
        assert_eq!(lx.find("加qq群").len(), 1);
        assert!(lx.find("增加微量").is_empty());
    }

    #[test]
    fn builtin_covers_every_category_in_both_languages() {
        let lx = Lexicon::builtin();
        for c in ForbiddenCategory::ALL {
            let terms: Vec<&str> = lx.terms(c).collect();
            assert!(terms.iter().any(|t| t.chars().any(is_cjk)), "{c} has no Chinese term");
            assert!(terms.iter().any(|t| t.is_ascii()), "{c} has no English term");
        }
        assert_eq!(Lexicon::default(), lx);
    }

    #[test]
    fn toml_config() {
        let lx = Lexicon::from_toml("[terms]\ngambling = [\"casino*\", \"赌场\"]\n").expect("valid toml");
        assert_eq!(lx.len(), 2);
        let extended = Lexicon::from_toml("extend_default = true\n[terms]\nloans = [\"借呗\"]").expect("valid toml");
        assert_eq!(extended.len(), Lexicon::builtin().len() + 1);
        assert!(matches!(
            Lexicon::from_toml("[terms]\nspam = [\"x\"]"),
            Err(LexiconError::UnknownCategory(_))
        ));
        assert!(matches!(
            Lexicon::from_toml("[terms]\ndrugs = [\" * \"]"),
            Err(LexiconError::EmptyTerm(F::Drugs))
        ));
        assert!(matches!(Lexicon::from_toml("terms = 3"), Err(LexiconError::Toml(_))));
        assert!(matches!(Lexicon::from_toml("nope = 1"), Err(LexiconError::Toml(_))));
    }
}
