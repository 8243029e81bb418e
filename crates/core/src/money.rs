//! Amounts in an asset's base unit, and the one place where decimal strings are read and written.
//!
//! Inside the service an amount is always an integer count of base units (shannons for CKB, raw
//! units for a UDT). Decimal strings such as `"1.5"` exist only at the API boundary: [`parse_decimal`]
//! turns one into base units with the asset's `decimals`, refusing anything ambiguous, and
//! [`format_decimal`] turns base units back into the shortest exact decimal string.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The largest number of decimals an asset may declare. 10^38 still fits in a `u128`.
pub const MAX_DECIMALS: u8 = 38;

/// A non-negative amount in an asset's base unit.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Amount(u128);

impl Amount {
    pub const ZERO: Amount = Amount(0);

    pub const fn from_base_units(units: u128) -> Self {
        Amount(units)
    }

    pub const fn base_units(self) -> u128 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }
}

impl fmt::Display for Amount {
    /// Base units as a plain decimal integer (what Postgres' NUMERIC and the ledger store).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a decimal amount string was refused. Each variant is a stable reason the API reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount is empty")]
    Empty,
    #[error("amount must be a plain decimal number such as \"1.5\" (digits, at most one '.', no sign, exponent or spaces)")]
    Malformed,
    #[error("amount must be greater than zero")]
    Zero,
    #[error("amount has more decimal places than the asset allows ({decimals})")]
    TooManyDecimals { decimals: u8 },
    #[error("amount is too large")]
    Overflow,
}

impl AmountError {
    /// The machine-readable reason for API errors.
    pub fn reason(&self) -> &'static str {
        match self {
            AmountError::Empty | AmountError::Malformed => "amount_malformed",
            AmountError::Zero => "amount_not_positive",
            AmountError::TooManyDecimals { .. } => "amount_too_many_decimals",
            AmountError::Overflow => "amount_too_large",
        }
    }
}

/// Parses a decimal string in asset units into base units.
///
/// Accepted: `"1"`, `"1.5"`, `"0.00000001"`, `"1.50"` (trailing zeros within the asset's decimals).
/// Refused: empty strings, signs (`"-1"`, `"+1"`), exponents (`"1e3"`), spaces, `".5"`, `"5."`,
/// leading zeros (`"01"`), more fractional digits than `decimals`, zero, and values over `u128`.
pub fn parse_decimal(s: &str, decimals: u8) -> Result<Amount, AmountError> {
    if s.is_empty() {
        return Err(AmountError::Empty);
    }
    let (int_part, frac_part) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int_part) {
        return Err(AmountError::Malformed);
    }
    if int_part.len() > 1 && int_part.starts_with('0') {
        return Err(AmountError::Malformed);
    }
    let frac = match frac_part {
        Some(f) if !all_digits(f) => return Err(AmountError::Malformed),
        Some(f) => f,
        None => "",
    };
    if frac.len() > decimals as usize {
        return Err(AmountError::TooManyDecimals { decimals });
    }
    let scale = 10u128
        .checked_pow(decimals as u32)
        .ok_or(AmountError::Overflow)?;
    let int_value: u128 = int_part.parse().map_err(|_| AmountError::Overflow)?;
    let mut frac_value: u128 = 0;
    for b in frac.bytes() {
        frac_value = frac_value * 10 + u128::from(b - b'0');
    }
    let frac_scale = 10u128.pow((decimals as usize - frac.len()) as u32);
    let units = int_value
        .checked_mul(scale)
        .and_then(|v| v.checked_add(frac_value * frac_scale))
        .ok_or(AmountError::Overflow)?;
    if units == 0 {
        return Err(AmountError::Zero);
    }
    Ok(Amount(units))
}

/// Formats base units as the shortest exact decimal string in asset units ("150000000" with 8
/// decimals → "1.5").
pub fn format_decimal(amount: Amount, decimals: u8) -> String {
    let scale = 10u128.pow(decimals as u32);
    let int = amount.0 / scale;
    let frac = amount.0 % scale;
    if frac == 0 {
        return int.to_string();
    }
    let frac = format!("{:0width$}", frac, width = decimals as usize);
    format!("{}.{}", int, frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ckb_amounts_into_shannons() {
        assert_eq!(parse_decimal("1.5", 8).unwrap().base_units(), 150_000_000);
        assert_eq!(parse_decimal("1", 8).unwrap().base_units(), 100_000_000);
        assert_eq!(parse_decimal("0.00000001", 8).unwrap().base_units(), 1);
        assert_eq!(parse_decimal("1.50", 8).unwrap().base_units(), 150_000_000);
        assert_eq!(parse_decimal("200", 0).unwrap().base_units(), 200);
    }

    #[test]
    fn refuses_ambiguous_or_invalid_strings() {
        for bad in [
            "-1", "+1", "1e3", " 1", "1 ", ".5", "5.", "01", "1.2.3", "0x10", "1,5", "١",
        ] {
            assert_eq!(parse_decimal(bad, 8), Err(AmountError::Malformed), "{bad}");
        }
        assert_eq!(parse_decimal("", 8), Err(AmountError::Empty));
        assert_eq!(parse_decimal("0", 8), Err(AmountError::Zero));
        assert_eq!(parse_decimal("0.00000000", 8), Err(AmountError::Zero));
        assert_eq!(
            parse_decimal("0.000000001", 8),
            Err(AmountError::TooManyDecimals { decimals: 8 })
        );
        assert_eq!(
            parse_decimal("1.5", 0),
            Err(AmountError::TooManyDecimals { decimals: 0 })
        );
        assert_eq!(
            parse_decimal("340282366920938463463374607431768211456", 0),
            Err(AmountError::Overflow)
        );
        assert_eq!(
            parse_decimal("3402823669209384634633746074317682115", 8),
            Err(AmountError::Overflow)
        );
    }

    #[test]
    fn formats_back_exactly() {
        for (units, dec, s) in [
            (150_000_000u128, 8u8, "1.5"),
            (1, 8, "0.00000001"),
            (100_000_000, 8, "1"),
            (200, 0, "200"),
            (u128::MAX, 0, "340282366920938463463374607431768211455"),
        ] {
            assert_eq!(format_decimal(Amount(units), dec), s);
            assert_eq!(parse_decimal(s, dec).unwrap().base_units(), units);
        }
    }
}
