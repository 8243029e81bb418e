//! Assets the service accepts: CKB and any number of UDTs, all from configuration.

use crate::money::{Amount, MAX_DECIMALS};
use serde::{Deserialize, Serialize};

/// A CKB type script (`code_hash`, `hash_type`, `args`) in CKB's JSON form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Script {
    pub code_hash: String,
    pub hash_type: String,
    pub args: String,
}

impl Script {
    /// Checks the JSON form: `code_hash` is `0x` + 64 hex digits, `hash_type` one of CKB's four,
    /// `args` `0x` + an even number of hex digits.
    pub fn validate(&self) -> Result<(), String> {
        let hex_body = |s: &str| s.strip_prefix("0x").map(|b| b.to_string());
        match hex_body(&self.code_hash) {
            Some(b) if b.len() == 64 && b.bytes().all(|c| c.is_ascii_hexdigit()) => {}
            _ => return Err("code_hash must be 0x followed by 64 hex digits".into()),
        }
        if !matches!(self.hash_type.as_str(), "type" | "data" | "data1" | "data2") {
            return Err("hash_type must be one of type, data, data1, data2".into());
        }
        match hex_body(&self.args) {
            Some(b) if b.len() % 2 == 0 && b.bytes().all(|c| c.is_ascii_hexdigit()) => Ok(()),
            _ => Err("args must be 0x followed by an even number of hex digits".into()),
        }
    }
}

/// One asset: its symbol as the API names it, its decimals, and for a UDT its type script.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    pub symbol: String,
    pub decimals: u8,
    /// `None` for native CKB.
    pub udt_type_script: Option<Script>,
    /// The largest single tip, in base units.
    pub max_tip: Amount,
}

impl Asset {
    /// Native CKB: 8 decimals (1 CKB = 10^8 shannons).
    pub fn ckb(max_tip: Amount) -> Asset {
        Asset {
            symbol: "CKB".into(),
            decimals: 8,
            udt_type_script: None,
            max_tip,
        }
    }

    pub fn is_udt(&self) -> bool {
        self.udt_type_script.is_some()
    }
}

/// The configured assets, looked up by symbol.
#[derive(Clone, Debug, Default)]
pub struct Assets(Vec<Asset>);

impl Assets {
    /// Validates the list: unique upper-case symbols, sane decimals, valid scripts, exactly one
    /// native asset at most, no two UDTs with the same script.
    pub fn new(list: Vec<Asset>) -> Result<Assets, String> {
        if list.is_empty() {
            return Err("at least one asset must be configured".into());
        }
        for (i, a) in list.iter().enumerate() {
            let sym_ok = !a.symbol.is_empty()
                && a.symbol.len() <= 16
                && a.symbol
                    .bytes()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_');
            if !sym_ok {
                return Err(format!(
                    "asset symbol {:?} must be 1-16 characters of A-Z, 0-9 or _",
                    a.symbol
                ));
            }
            if a.decimals > MAX_DECIMALS {
                return Err(format!(
                    "asset {}: decimals must be at most {MAX_DECIMALS}",
                    a.symbol
                ));
            }
            if a.max_tip.is_zero() {
                return Err(format!(
                    "asset {}: max_tip must be greater than zero",
                    a.symbol
                ));
            }
            match &a.udt_type_script {
                Some(s) => s
                    .validate()
                    .map_err(|e| format!("asset {}: udt_type_script: {e}", a.symbol))?,
                None if a.symbol != "CKB" => {
                    return Err(format!(
                        "asset {} has no udt_type_script; only CKB is native",
                        a.symbol
                    ))
                }
                None if a.decimals != 8 => {
                    return Err(format!(
                    "asset CKB has {} decimals; native CKB has exactly 8 (1 CKB = 10^8 shannons)",
                    a.decimals
                ))
                }
                None => {}
            }
            if a.symbol == "CKB" && a.udt_type_script.is_some() {
                return Err(
                    "asset CKB is native and has no udt_type_script; name the UDT otherwise".into(),
                );
            }
            for b in &list[..i] {
                if b.symbol == a.symbol {
                    return Err(format!("asset {} is configured twice", a.symbol));
                }
                if a.udt_type_script.is_some() && b.udt_type_script == a.udt_type_script {
                    return Err(format!(
                        "assets {} and {} share a type script",
                        b.symbol, a.symbol
                    ));
                }
            }
        }
        Ok(Assets(list))
    }

    pub fn get(&self, symbol: &str) -> Option<&Asset> {
        self.0.iter().find(|a| a.symbol == symbol)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Asset> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udt(symbol: &str) -> Asset {
        Asset {
            symbol: symbol.into(),
            decimals: 6,
            udt_type_script: Some(Script {
                code_hash: format!("0x{}", "ab".repeat(32)),
                hash_type: "data2".into(),
                args: "0x01".into(),
            }),
            max_tip: Amount::from_base_units(10),
        }
    }

    #[test]
    fn validates_configuration() {
        let ok = Assets::new(vec![Asset::ckb(Amount::from_base_units(1)), udt("USDI")]).unwrap();
        assert_eq!(ok.get("USDI").unwrap().decimals, 6);
        assert!(ok.get("usdi").is_none());
        assert!(Assets::new(vec![]).is_err());
        assert!(
            Assets::new(vec![udt("A"), udt("B")]).is_err(),
            "same script twice"
        );
        assert!(Assets::new(vec![udt("A"), udt("A")]).is_err());
        let mut bad = udt("X");
        bad.udt_type_script.as_mut().unwrap().hash_type = "other".into();
        assert!(Assets::new(vec![bad]).is_err());
        let mut native = Asset::ckb(Amount::from_base_units(1));
        native.symbol = "FOO".into();
        assert!(Assets::new(vec![native]).is_err());
        // CKB is native with exactly 8 decimals: any other figure would misstate every amount
        let mut ckb6 = Asset::ckb(Amount::from_base_units(1));
        ckb6.decimals = 6;
        assert!(Assets::new(vec![ckb6]).unwrap_err().contains("exactly 8"));
        let mut ckb_udt = udt("CKB");
        ckb_udt.decimals = 8;
        assert!(Assets::new(vec![ckb_udt]).unwrap_err().contains("native"));
    }
}
