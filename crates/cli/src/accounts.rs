//! `fiber-link operator add|reset|remove|list`: the console's operator accounts, managed from
//! the server's shell (whoever can run this can read the database anyway).

use anyhow::{anyhow, bail, Result};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use clap::{Subcommand, ValueEnum};
use fiber_link_store::{Store, StoreError};
use rand::Rng;

#[derive(Clone, Copy, ValueEnum)]
pub enum Role {
    /// Everything, including approving withdrawals, pausing and changing policies.
    Admin,
    /// Sees everything; changes nothing but may run a reconciliation.
    Viewer,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
}

#[derive(Subcommand)]
pub enum OperatorCommand {
    /// Add an operator; prints a one-time password. The first login enrols the second factor
    /// (TOTP, with a QR code).
    Add {
        name: String,
        #[arg(long, value_enum)]
        role: Role,
        #[arg(long)]
        json: bool,
    },
    /// New password (printed), second factor cleared (enrolled again at the next login), every
    /// session ended: for a lost phone or a forgotten password.
    Reset {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove an operator (their sessions end at once).
    Remove { name: String },
    /// List operators.
    List {
        #[arg(long)]
        json: bool,
    },
}

/// Argon2id with the crate's defaults (19 MiB, 2 passes: OWASP's minimum).
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow!("hashing the password: {e}"))
}

/// Whether `password` is the one `hash` was made from.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// 20 characters from an alphabet without look-alikes (≈ 114 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

fn check_name(name: &str) -> Result<()> {
    let ok = name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
    if !ok {
        bail!("an operator name is 1 to 32 characters: a lowercase letter, then lowercase letters, digits, '_', '.' or '-'");
    }
    Ok(())
}

fn print_password(name: &str, role: &str, password: &str, json: bool, what: &str) {
    if json {
        println!(
            "{}",
            serde_json::json!({"name": name, "role": role, "password": password})
        );
    } else {
        println!("operator {name} ({role}) {what}\none-time password: {password}\n(shown once; the first login asks for it and enrols the second factor)");
    }
}

/// Adds an operator with a given password (for `fiber-link dev`'s demo operator) or a new one.
pub async fn add(store: &Store, name: &str, role: &str, password: &str, by: &str) -> Result<()> {
    check_name(name)?;
    match store
        .add_operator(name, role, &hash_password(password)?, by)
        .await
    {
        Err(StoreError::Conflict(m)) => bail!(m),
        other => Ok(other?),
    }
}

pub async fn run(store: Store, cmd: OperatorCommand) -> Result<i32> {
    let by = crate::operator::who(&None);
    match cmd {
        OperatorCommand::Add { name, role, json } => {
            let password = generate_password();
            add(&store, &name, role.as_str(), &password, &by).await?;
            print_password(&name, role.as_str(), &password, json, "added");
        }
        OperatorCommand::Reset { name, json } => {
            let password = generate_password();
            match store
                .reset_operator(&name, &hash_password(&password)?, &by)
                .await
            {
                Err(StoreError::NotFound) => bail!("no operator {name}"),
                other => other?,
            }
            let role = store
                .operator(&name)
                .await?
                .map(|o| o.role)
                .unwrap_or_default();
            print_password(&name, &role, &password, json, "reset");
        }
        OperatorCommand::Remove { name } => {
            match store.remove_operator(&name, &by).await {
                Err(StoreError::NotFound) => bail!("no operator {name}"),
                other => other?,
            }
            println!("operator {name} removed");
        }
        OperatorCommand::List { json } => {
            let ops = store.operators().await?;
            if json {
                println!("{}", serde_json::to_string(&ops)?);
            } else if ops.is_empty() {
                println!("no operators yet: fiber-link operator add NAME --role admin");
            } else {
                for o in ops {
                    println!(
                        "{:<20} {:<6}  {}  {} session(s)  added {} by {}",
                        o.name,
                        o.role,
                        if o.enrolled {
                            "2FA enrolled"
                        } else {
                            "2FA not enrolled"
                        },
                        o.sessions,
                        o.created_at.format("%Y-%m-%d %H:%M"),
                        o.created_by
                    );
                }
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "correct horse "));
        assert!(!verify_password("not a hash", "correct horse"));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("alice").is_ok());
        assert!(check_name("a.b-c_1").is_ok());
        for bad in ["", "Alice", "1a", "a b", "a/b", &"a".repeat(33)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
