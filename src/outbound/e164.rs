//! Phone numbers to E.164 (`+` and 7–15 digits), with a configured default country calling code.
//!
//! A deliberately small normaliser, not a numbering-plan validator: ctid hands numbers to the
//! PBX trunk, which knows the plan; what ctid needs is one canonical spelling per number, so the
//! do-not-call list and the duplicate rule compare like with like. The `phonenumber` crate was
//! tried and not taken: 0.3.10 drops Italy's leading zero (`+39 06 1234 5678` came out as
//! `+39612345678`, another number), silently turns vanity letters into digits, rejects numbers in
//! ranges newer than its bundled metadata, and brings about forty crates.
//!
//! Rules, in order:
//! 1. Separators are ignored: spaces (also no-break), `-`, `.`, `/`, `(`, `)`. Any letter is
//!    rejected (vanity numbers and extensions such as `x12` are not dialable); so is any other
//!    character, and a `+` anywhere but first.
//! 2. International forms: a leading `+`, or the `00` international prefix (also `011` when the
//!    default country is `1`). A `(0)` written after the country code (`+44 (0)20 …`) is dropped.
//! 3. Anything else is national: the trunk prefix is dropped — one leading `0` (none for Italy
//!    `39` and San Marino `378`, whose numbers keep it), `1` for the North American plan (`1`),
//!    `8` for Russia and Kazakhstan (`7`) — and the default country code is put in front.
//! 4. The result must have 7 to 15 digits (ITU-T E.164: at most 15; the shortest numbering plans
//!    have 7 with the country code) and must not start with `0`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Shortest and longest E.164 number, in digits including the country code.
pub const MIN_DIGITS: usize = 7;
pub const MAX_DIGITS: usize = 15;

/// Why a number was refused; the message is what an import row error shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberError {
    Empty,
    Letters,
    BadCharacter(char),
    MisplacedPlus,
    TooShort(usize),
    TooLong(usize),
    /// `+0…` or `000…`: no country code starts with 0.
    BadCountryCode,
}

impl fmt::Display for NumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NumberError::Empty => f.write_str("empty"),
            NumberError::Letters => f.write_str("contains letters"),
            NumberError::BadCharacter(c) => write!(f, "contains {c:?}"),
            NumberError::MisplacedPlus => f.write_str("'+' may only come first"),
            NumberError::TooShort(n) => {
                write!(
                    f,
                    "too short ({n} digits with the country code, at least {MIN_DIGITS})"
                )
            }
            NumberError::TooLong(n) => {
                write!(
                    f,
                    "too long ({n} digits with the country code, at most {MAX_DIGITS})"
                )
            }
            NumberError::BadCountryCode => f.write_str("country code cannot start with 0"),
        }
    }
}

impl std::error::Error for NumberError {}

/// A country calling code such as `44` or `1`: 1–3 digits, not starting with 0. Accepts `+44`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode(String);

impl CountryCode {
    pub fn new(code: &str) -> Result<Self, String> {
        let digits = code.trim().trim_start_matches('+');
        if digits.is_empty()
            || digits.len() > 3
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || digits.starts_with('0')
        {
            return Err(format!(
                "country calling code {code:?} must be 1 to 3 digits not starting with 0, e.g. \"44\""
            ));
        }
        Ok(CountryCode(digits.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The national trunk prefix dropped from national numbers, if any.
    fn trunk_prefix(&self) -> Option<char> {
        match self.0.as_str() {
            "39" | "378" => None,
            "1" => Some('1'),
            "7" => Some('8'),
            _ => Some('0'),
        }
    }
}

impl TryFrom<String> for CountryCode {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        CountryCode::new(&s)
    }
}

impl From<CountryCode> for String {
    fn from(c: CountryCode) -> String {
        c.0
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Normalise `input` to E.164 (`+441632960123`), national numbers taken as in `country`.
pub fn normalise(input: &str, country: &CountryCode) -> Result<String, NumberError> {
    // `+44 (0)20 …`: the bracketed 0 is the trunk prefix, for callers inside the country.
    let compact: String = input
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\t'))
        .collect::<String>()
        .replace("(0)", "");
    let plus = compact.starts_with('+');
    let mut digits = String::with_capacity(compact.len());
    for (i, c) in compact.char_indices() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if i == 0 => {}
            '+' => return Err(NumberError::MisplacedPlus),
            '-' | '.' | '/' | '(' | ')' => {}
            c if c.is_alphabetic() => return Err(NumberError::Letters),
            c => return Err(NumberError::BadCharacter(c)),
        }
    }
    if digits.is_empty() {
        return Err(NumberError::Empty);
    }
    let international = if plus {
        Some(digits.as_str())
    } else if let Some(rest) = digits.strip_prefix("00") {
        Some(rest)
    } else if country.as_str() == "1" {
        digits.strip_prefix("011")
    } else {
        None
    };
    let e164 = match international {
        Some(rest) => {
            if rest.starts_with('0') {
                return Err(NumberError::BadCountryCode);
            }
            rest.to_string()
        }
        None => {
            let national = match country.trunk_prefix() {
                Some(p) => digits.strip_prefix(p).unwrap_or(&digits),
                None => &digits,
            };
            format!("{}{}", country.as_str(), national)
        }
    };
    if e164.len() < MIN_DIGITS {
        return Err(NumberError::TooShort(e164.len()));
    }
    if e164.len() > MAX_DIGITS {
        return Err(NumberError::TooLong(e164.len()));
    }
    Ok(format!("+{e164}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(s: &str) -> CountryCode {
        CountryCode::new(s).unwrap()
    }

    #[test]
    fn national_numbers_get_the_default_country_and_lose_the_trunk_zero() {
        let uk = cc("44");
        assert_eq!(normalise("020 7946 0958", &uk).unwrap(), "+442079460958");
        assert_eq!(normalise("(020) 7946-0958", &uk).unwrap(), "+442079460958");
        assert_eq!(normalise("07700.900.123", &uk).unwrap(), "+447700900123");
        // Without the trunk zero it is still national.
        assert_eq!(normalise("7700 900123", &uk).unwrap(), "+447700900123");
    }

    #[test]
    fn international_forms() {
        let uk = cc("+44");
        assert_eq!(normalise("+44 20 7946 0958", &uk).unwrap(), "+442079460958");
        assert_eq!(
            normalise("0044 20 7946 0958", &uk).unwrap(),
            "+442079460958"
        );
        assert_eq!(
            normalise("+44 (0)20 7946 0958", &uk).unwrap(),
            "+442079460958"
        );
        assert_eq!(
            normalise("0044 (0) 20 7946 0958", &uk).unwrap(),
            "+442079460958"
        );
        assert_eq!(normalise("+33 1 23 45 67 89", &uk).unwrap(), "+33123456789");
        assert_eq!(
            normalise("\u{a0}+1 415 555 0100 ", &uk).unwrap(),
            "+14155550100"
        );
        assert_eq!(
            normalise("011 44 20 7946 0958", &cc("1")).unwrap(),
            "+442079460958"
        );
    }

    #[test]
    fn countries_with_other_trunk_prefixes() {
        assert_eq!(
            normalise("06 1234 5678", &cc("39")).unwrap(),
            "+390612345678"
        );
        assert_eq!(
            normalise("+39 06 1234 5678", &cc("44")).unwrap(),
            "+390612345678"
        );
        assert_eq!(
            normalise("1 (415) 555-0100", &cc("1")).unwrap(),
            "+14155550100"
        );
        assert_eq!(normalise("415 555 0100", &cc("1")).unwrap(), "+14155550100");
        assert_eq!(
            normalise("8 495 123 45 67", &cc("7")).unwrap(),
            "+74951234567"
        );
    }

    #[test]
    fn refusals() {
        let uk = cc("44");
        assert_eq!(normalise("", &uk), Err(NumberError::Empty));
        assert_eq!(normalise(" - ", &uk), Err(NumberError::Empty));
        assert_eq!(normalise("0800 FLOWERS", &uk), Err(NumberError::Letters));
        assert_eq!(
            normalise("020 7946 0958 x12", &uk),
            Err(NumberError::Letters)
        );
        assert_eq!(
            normalise("020#7946", &uk),
            Err(NumberError::BadCharacter('#'))
        );
        assert_eq!(normalise("44+20", &uk), Err(NumberError::MisplacedPlus));
        assert_eq!(normalise("999", &uk), Err(NumberError::TooShort(5)));
        assert_eq!(normalise("+4412", &uk), Err(NumberError::TooShort(4)));
        assert_eq!(
            normalise("+44 1234 5678 9012 34", &uk),
            Err(NumberError::TooLong(16))
        );
        assert_eq!(
            normalise("+0 123 4567", &uk),
            Err(NumberError::BadCountryCode)
        );
        assert_eq!(
            normalise("000 123 4567", &uk),
            Err(NumberError::BadCountryCode)
        );
        assert_eq!(
            normalise("0800 FLOWERS", &uk).unwrap_err().to_string(),
            "contains letters"
        );
    }

    #[test]
    fn country_codes() {
        assert_eq!(cc("+44").as_str(), "44");
        assert!(CountryCode::new("0").is_err());
        assert!(CountryCode::new("1234").is_err());
        assert!(CountryCode::new("4a").is_err());
        assert!(CountryCode::new("").is_err());
    }
}
