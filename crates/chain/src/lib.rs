//! On-chain CKB payouts: parsing recipients' addresses, the hot wallet, building and signing a
//! payout transaction whose fee is exactly the quoted one, and the CKB node's RPC (send, status,
//! live cells).
//!
//! Addresses, signing and the RPC client are ckb-sdk's. The transaction is assembled here rather
//! than with ckb-sdk's builders because those choose the fee themselves; a payout must pay the
//! fee the author was quoted, to the shannon.

use ckb_sdk::rpc::ckb_indexer::{Order, ScriptType, SearchKey, SearchKeyFilter, SearchMode};
use ckb_sdk::rpc::CkbRpcAsyncClient;
use ckb_sdk::traits::SecpCkbRawKeySigner;
use ckb_sdk::types::ScriptGroupType;
use ckb_sdk::unlock::{ScriptSigner, SecpSighashScriptSigner};
use ckb_sdk::{Address, AddressPayload, NetworkType, ScriptGroup};
use ckb_types::bytes::Bytes;
use ckb_types::core::{Capacity, DepType, ScriptHashType, TransactionBuilder, TransactionView};
use ckb_types::packed::{self, CellDep, CellInput, CellOutput, OutPoint, Script, WitnessArgs};
use ckb_types::prelude::*;
use fiber_link_core::Amount;
use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

pub use ckb_jsonrpc_types::Status as TxStatusKind;
pub use ckb_types::H256;

/// One CKB in shannons.
pub const ONE_CKB: u64 = 100_000_000;

/// The size in a block of a payout transaction: 412 bytes with one input and a recipient lock
/// with 20 bytes of args, 52 more per input (out point, since and an empty witness).
pub fn payout_tx_size(inputs: usize, recipient_args_len: usize) -> u64 {
    (412 + 52 * inputs + recipient_args_len).saturating_sub(20) as u64
}

/// A recipient's address, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// The address in the full (CKB2021) format.
    pub canonical: String,
    /// The smallest capacity a cell with this lock can hold (shannons).
    pub min_capacity: Amount,
    /// Length of the lock's args.
    pub args_len: usize,
}

/// Parses a CKB address (full or short format, any lock) for `mainnet` or the test networks.
/// Errors are `(reason, sentence)` as the API reports them.
pub fn parse_address(s: &str, mainnet: bool) -> Result<Recipient, (&'static str, String)> {
    let addr = address_from_str(s.trim())
        .map_err(|e| ("address_malformed", format!("not a CKB address: {e}")))?;
    if !addr.is_new() && matches!(addr.payload(), AddressPayload::Full { .. }) {
        // bech32's checksum cannot see a 'q' typed before a final 'p', and these formats have
        // args of any length: such a typo would read as another lock, and pay nobody
        return Err((
            "address_malformed",
            "the deprecated full address format (0x02/0x04, bech32) is refused: a typo in it can read as another address; use the address's CKB2021 full format (ckb1q…/ckt1q…)".into(),
        ));
    }
    // data, type, data1, data2: the hash types a CKB node runs today; a lock with any other
    // (ckb-sdk reads every even byte as "data<n>") could not be spent by anyone
    let hash_type: u8 = Script::from(&addr).hash_type().into();
    if !matches!(hash_type, 0 | 1 | 2 | 4) {
        return Err((
            "address_malformed",
            format!("the address's lock has hash type {hash_type}, which no CKB node runs"),
        ));
    }
    let is_mainnet = addr.network() == NetworkType::Mainnet;
    if is_mainnet != mainnet {
        let (theirs, ours) = if is_mainnet {
            ("mainnet", "a test network")
        } else {
            ("a test network", "mainnet")
        };
        return Err((
            "address_wrong_network",
            format!("the address is for {theirs}; this service pays out on {ours}"),
        ));
    }
    let script = Script::from(&addr);
    let args_len = script.args().raw_data().len();
    let min_capacity = script
        .occupied_capacity()
        .ok()
        .and_then(|c| c.safe_add(Capacity::bytes(8).ok()?).ok())
        .map(|c| Amount::from_base_units(u128::from(c.as_u64())))
        .ok_or((
            "address_malformed",
            "the address's lock is too large".into(),
        ))?;
    let canonical = Address::new(addr.network(), addr.payload().clone(), true).to_string();
    Ok(Recipient {
        canonical,
        min_capacity,
        args_len,
    })
}

/// `Address::from_str`, but never panicking: ckb-sdk's parser unwraps the 5-to-8-bit conversion
/// and indexes the first payload byte, so a well-formed bech32 string with an empty or badly
/// padded data part (`ckt1laf3m2`, `ckt1qh92lp2`) would panic inside it. Those are refused here
/// first, with the same checks the parser makes.
fn address_from_str(s: &str) -> Result<Address, String> {
    use bech32::FromBase32;
    let (_, data, _) = bech32::decode(s).map_err(|e| e.to_string())?;
    let payload = Vec::<u8>::from_base32(&data).map_err(|e| e.to_string())?;
    if payload.is_empty() {
        return Err("the address has no payload".into());
    }
    Address::from_str(s)
}

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The node did not answer, or answered something we could not read: try again later.
    #[error("the CKB node is unavailable: {0}")]
    Unavailable(String),
    /// The node refused the transaction.
    #[error("the CKB node refused the transaction ({code}): {message}")]
    Refused { code: i64, message: String },
    /// The hot wallet cannot cover the payout with its confirmed plain cells right now.
    #[error("the hot wallet cannot cover this payout: {0}")]
    InsufficientFunds(String),
    #[error("{0}")]
    Invalid(String),
}

impl ChainError {
    fn from_rpc(e: ckb_sdk::RpcError) -> ChainError {
        match e {
            ckb_sdk::RpcError::Rpc(e) => ChainError::Refused {
                code: e.code.code(),
                message: e.message,
            },
            other => ChainError::Unavailable(other.to_string()),
        }
    }

    /// The node already has this very transaction (in its pool): sending it again is a no-op.
    pub fn is_duplicate(&self) -> bool {
        matches!(self, ChainError::Refused { code: -1107, .. })
    }
}

/// What the chain says of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxState {
    /// In the node's pool (pending or proposed).
    InPool,
    /// In the canonical chain at this block.
    Committed { block_number: u64 },
    /// The node does not know it (never seen, dropped, or rejected).
    Unknown { reason: Option<String> },
}

/// The CKB node's RPC (with the built-in indexer).
#[derive(Clone)]
pub struct ChainClient {
    rpc: CkbRpcAsyncClient,
    url: String,
}

impl std::fmt::Debug for ChainClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainClient")
            .field("url", &self.url)
            .finish()
    }
}

/// Awaits one CKB node call, recording its duration and outcome in the process's metrics.
async fn timed<T, E>(
    method: &'static str,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let started = std::time::Instant::now();
    let r = call.await;
    fiber_link_metrics::global().chain_call(method, started.elapsed().as_secs_f64(), r.is_err());
    r
}

impl ChainClient {
    pub fn new(url: &str, timeout: Duration) -> Result<ChainClient, ChainError> {
        let rpc = CkbRpcAsyncClient::new_with_timeout(url, timeout)
            .map_err(|e| ChainError::Invalid(format!("CKB RPC url {url:?}: {e}")))?;
        Ok(ChainClient {
            rpc,
            url: url.to_string(),
        })
    }

    pub async fn tip_block_number(&self) -> Result<u64, ChainError> {
        let n = timed("get_tip_block_number", self.rpc.get_tip_block_number())
            .await
            .map_err(ChainError::from_rpc)?;
        Ok(n.value())
    }

    /// The cell dep of the secp256k1-blake160-sighash-all lock: the dep group at output 0 of the
    /// genesis block's second transaction (the same rule on mainnet, testnet and dev chains).
    pub async fn sighash_dep(&self) -> Result<CellDep, ChainError> {
        let genesis = timed(
            "get_block_by_number",
            self.rpc.get_block_by_number(0.into()),
        )
        .await
        .map_err(ChainError::from_rpc)?
        .ok_or_else(|| ChainError::Unavailable("the node has no genesis block".into()))?;
        let tx = genesis
            .transactions
            .get(1)
            .ok_or_else(|| ChainError::Invalid("the genesis block has no dep group".into()))?;
        let hash: packed::Byte32 = tx.hash.pack();
        Ok(CellDep::new_builder()
            .out_point(OutPoint::new(hash, 0))
            .dep_type(DepType::DepGroup)
            .build())
    }

    pub async fn tx_state(&self, hash: &H256) -> Result<TxState, ChainError> {
        let r = timed(
            "get_transaction_status",
            self.rpc.get_transaction_status(hash.clone()),
        )
        .await
        .map_err(ChainError::from_rpc)?;
        Ok(match r.tx_status.status {
            TxStatusKind::Pending | TxStatusKind::Proposed => TxState::InPool,
            TxStatusKind::Committed => TxState::Committed {
                block_number: r.tx_status.block_number.map(|b| b.value()).ok_or_else(|| {
                    ChainError::Unavailable("a committed transaction without a block".into())
                })?,
            },
            TxStatusKind::Unknown | TxStatusKind::Rejected => TxState::Unknown {
                reason: r.tx_status.reason,
            },
        })
    }

    /// Sends a signed transaction. The node answers "duplicated" when it already has it; that is
    /// success too.
    pub async fn send(&self, tx: &ckb_jsonrpc_types::Transaction) -> Result<(), ChainError> {
        match timed(
            "send_transaction",
            self.rpc.send_transaction(tx.clone(), None),
        )
        .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = ChainError::from_rpc(e);
                if e.is_duplicate() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Whether a cell is live (created by a committed transaction and not consumed by one). Not
    /// live does NOT mean consumed: the node reports a cell it has never seen (it is behind,
    /// resyncing, or the block that made the cell was rolled back) the same way as a spent one.
    /// [`ChainClient::spender`] proves a cell spent.
    pub async fn is_live(&self, op: &ckb_jsonrpc_types::OutPoint) -> Result<bool, ChainError> {
        let c = timed("get_live_cell", self.rpc.get_live_cell(op.clone(), false))
            .await
            .map_err(ChainError::from_rpc)?;
        Ok(c.status == "live")
    }

    /// A transaction as the node knows it (`None`: it does not), with its block when committed.
    async fn transaction(
        &self,
        hash: &H256,
    ) -> Result<Option<(ckb_jsonrpc_types::Transaction, Option<u64>)>, ChainError> {
        let r = timed("get_transaction", self.rpc.get_transaction(hash.clone()))
            .await
            .map_err(ChainError::from_rpc)?;
        let Some(r) = r else { return Ok(None) };
        let block = match r.tx_status.status {
            TxStatusKind::Committed => r.tx_status.block_number.map(|b| b.value()),
            _ => None,
        };
        Ok(match r.transaction.map(|t| t.inner) {
            Some(ckb_jsonrpc_types::Either::Left(view)) => Some((view.inner, block)),
            _ => None,
        })
    }

    /// The committed transaction that consumed `op`, as the chain shows it: the cell's creating
    /// transaction is committed, and a committed transaction after it lists `op` as an input
    /// (found through the indexer's transactions of the cell's lock). `None` when that cannot
    /// be shown — the cell is live, unknown to the node, or its spender is not committed.
    pub async fn spender(
        &self,
        op: &ckb_jsonrpc_types::OutPoint,
    ) -> Result<Option<Spender>, ChainError> {
        let Some((created, Some(created_in))) = self.transaction(&op.tx_hash).await? else {
            return Ok(None);
        };
        let Some(output) = created.outputs.get(op.index.value() as usize) else {
            return Ok(None);
        };
        let key = SearchKey {
            script: output.lock.clone(),
            script_type: ScriptType::Lock,
            script_search_mode: Some(SearchMode::Exact),
            filter: Some(SearchKeyFilter {
                block_range: Some([created_in.into(), u64::MAX.into()]),
                ..Default::default()
            }),
            with_data: Some(false),
            group_by_transaction: Some(false),
        };
        let mut after = None;
        loop {
            let page = timed(
                "get_transactions",
                self.rpc
                    .get_transactions(key.clone(), Order::Asc, 100u32.into(), after),
            )
            .await
            .map_err(ChainError::from_rpc)?;
            let n = page.objects.len();
            for t in page.objects {
                let ckb_sdk::rpc::ckb_indexer::Tx::Ungrouped(t) = t else {
                    continue;
                };
                if !matches!(t.io_type, ckb_sdk::rpc::ckb_indexer::CellType::Input) {
                    continue;
                }
                let Some((tx, Some(block))) = self.transaction(&t.tx_hash).await? else {
                    continue;
                };
                let spends = tx
                    .inputs
                    .get(t.io_index.value() as usize)
                    .is_some_and(|i| i.previous_output == *op);
                if spends {
                    return Ok(Some(Spender {
                        tx_hash: t.tx_hash,
                        block_number: block,
                    }));
                }
            }
            if n < 100 {
                return Ok(None);
            }
            after = Some(page.last_cursor);
        }
    }

    /// The confirmed plain cells (no type script, no data) of `lock`, oldest first.
    pub async fn plain_cells(
        &self,
        lock: &Script,
        max: usize,
    ) -> Result<Vec<WalletCell>, ChainError> {
        let key = SearchKey {
            script: lock.clone().into(),
            script_type: ScriptType::Lock,
            script_search_mode: Some(SearchMode::Exact),
            filter: Some(SearchKeyFilter {
                script_len_range: Some([0u64.into(), 1u64.into()]),
                output_data_len_range: Some([0u64.into(), 1u64.into()]),
                ..Default::default()
            }),
            with_data: Some(false),
            group_by_transaction: None,
        };
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = timed(
                "get_cells",
                self.rpc
                    .get_cells(key.clone(), Order::Asc, 100u32.into(), after),
            )
            .await
            .map_err(ChainError::from_rpc)?;
            let n = page.objects.len();
            for c in page.objects {
                out.push(WalletCell {
                    out_point: c.out_point.into(),
                    capacity: c.output.capacity.value(),
                    block_number: c.block_number.value(),
                });
            }
            if n < 100 || out.len() >= max {
                break;
            }
            after = Some(page.last_cursor);
        }
        Ok(out)
    }
}

/// A transaction that consumed a cell, committed in `block_number`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spender {
    pub tx_hash: H256,
    pub block_number: u64,
}

/// A plain cell of the hot wallet.
#[derive(Clone, Debug)]
pub struct WalletCell {
    pub out_point: OutPoint,
    pub capacity: u64,
    /// The block of the transaction that made it.
    pub block_number: u64,
}

/// How many blocks deep a transaction committed in `block` is at `tip` (its own block counts).
pub fn depth(block: u64, tip: u64) -> u64 {
    (tip + 1).saturating_sub(block)
}

/// A payout transaction, signed, with what the executor needs to persist about it.
#[derive(Clone, Debug)]
pub struct SignedPayout {
    pub tx: ckb_jsonrpc_types::Transaction,
    /// `0x` + 64 hex digits.
    pub hash: String,
    pub size: u64,
    /// The inputs, as `0x<tx hash>:<index>`.
    pub inputs: Vec<String>,
}

/// The operator's hot wallet: one secp256k1 key with the default sighash lock.
pub struct HotWallet {
    /// `None` for a watch-only wallet (its address only): it can be read, never spend.
    key: Option<secp256k1::SecretKey>,
    lock: Script,
    mainnet: bool,
}

impl std::fmt::Debug for HotWallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotWallet")
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

/// `0x<hash>:<index>` of an out point.
pub fn out_point_key(op: &OutPoint) -> String {
    let idx: u32 = op.index().unpack();
    format!("0x{}:{idx}", hex::encode(op.tx_hash().raw_data()))
}

impl HotWallet {
    /// From a private key: 64 hex digits, with or without `0x`, surrounding space ignored.
    pub fn from_hex(key: &str, mainnet: bool) -> Result<HotWallet, String> {
        let k = key.trim();
        let k = k.strip_prefix("0x").unwrap_or(k);
        let bytes = hex::decode(k).map_err(|_| "the hot wallet key must be 32 bytes of hex")?;
        let key = secp256k1::SecretKey::from_slice(&bytes)
            .map_err(|_| "the hot wallet key is not a valid secp256k1 key".to_string())?;
        let pubkey = secp256k1::PublicKey::from_secret_key(secp256k1::SECP256K1, &key);
        let hash = ckb_hash::blake2b_256(pubkey.serialize());
        let lock = Script::new_builder()
            .code_hash(ckb_sdk::constants::SIGHASH_TYPE_HASH.pack())
            .hash_type(ScriptHashType::Type)
            .args(Bytes::copy_from_slice(&hash[..20]).pack())
            .build();
        Ok(HotWallet {
            key: Some(key),
            lock,
            mainnet,
        })
    }

    /// A watch-only wallet from the hot wallet's address: its balance and cells can be read
    /// (reconciliation, proving a payout failed), nothing can be signed. For processes that must
    /// not hold the key (the API process, which serves the operator console).
    pub fn watch_only(address: &str, mainnet: bool) -> Result<HotWallet, String> {
        let a = address_from_str(address.trim())?;
        let net_ok = matches!(a.network(), NetworkType::Mainnet) == mainnet;
        if !net_ok {
            return Err(format!(
                "the hot wallet address {address} is not a {} address",
                if mainnet { "mainnet" } else { "testnet" }
            ));
        }
        Ok(HotWallet {
            key: None,
            lock: Script::from(&a),
            mainnet,
        })
    }

    /// Whether this wallet can sign (it holds the key).
    pub fn can_sign(&self) -> bool {
        self.key.is_some()
    }

    pub fn lock(&self) -> &Script {
        &self.lock
    }

    pub fn address(&self) -> String {
        let network = if self.mainnet {
            NetworkType::Mainnet
        } else {
            NetworkType::Testnet
        };
        Address::new(network, AddressPayload::from(self.lock.clone()), true).to_string()
    }

    /// The wallet's confirmed plain balance (shannons).
    pub async fn balance(&self, chain: &ChainClient) -> Result<u64, ChainError> {
        Ok(chain
            .plain_cells(&self.lock, usize::MAX)
            .await?
            .iter()
            .map(|c| c.capacity)
            .sum())
    }

    /// Builds and signs a payout of `receive` shannons to `to` that pays exactly `fee`, from
    /// plain cells of the wallet at least `min_depth` blocks deep and not in `exclude` (inputs of
    /// payouts still in flight), with change back to the wallet. The transaction is at most
    /// `max_bytes` in a block, so the fee covers `fee_rate` for its real size.
    ///
    /// Only deep cells: a cell made by a block that a reorganisation can still undo (the change
    /// of a payout still confirming, say) would, once undone, make this payout look unsendable
    /// while its signed transaction can still commit later.
    #[allow(clippy::too_many_arguments)]
    pub async fn build_payout(
        &self,
        chain: &ChainClient,
        to: &str,
        receive: u64,
        fee: u64,
        max_bytes: u64,
        exclude: &HashSet<String>,
        min_depth: u64,
    ) -> Result<SignedPayout, ChainError> {
        let addr = address_from_str(to)
            .map_err(|e| ChainError::Invalid(format!("recipient address: {e}")))?;
        let to_lock = Script::from(&addr);
        let args_len = to_lock.args().raw_data().len();
        let to_out = CellOutput::new_builder()
            .capacity(Pack::<packed::Uint64>::pack(&receive))
            .lock(to_lock)
            .build();
        if to_out
            .occupied_capacity(Capacity::zero())
            .map(|c| c.as_u64() > receive)
            .unwrap_or(true)
        {
            return Err(ChainError::Invalid(format!(
                "{receive} shannons do not fill a cell for this address"
            )));
        }
        let change_min = 61 * ONE_CKB;
        let max_inputs = (1..=64)
            .take_while(|n| payout_tx_size(*n, args_len) <= max_bytes)
            .last()
            .ok_or_else(|| ChainError::Invalid(format!("max_tx_bytes {max_bytes} is too small")))?;
        let cells = chain.plain_cells(&self.lock, 500).await?;
        let tip = chain.tip_block_number().await?;
        let mut inputs = Vec::new();
        let mut total: u64 = 0;
        let mut shallow: u64 = 0;
        let need = receive
            .checked_add(fee)
            .ok_or_else(|| ChainError::Invalid("amount overflow".into()))?;
        for WalletCell {
            out_point: op,
            capacity: cap,
            block_number,
        } in cells
        {
            if exclude.contains(&out_point_key(&op)) {
                continue;
            }
            if depth(block_number, tip) < min_depth {
                shallow = shallow.saturating_add(cap);
                continue;
            }
            inputs.push(op);
            total = total.saturating_add(cap);
            // exactly what is needed (no change), or enough for a change cell
            if total == need || total >= need.saturating_add(change_min) {
                break;
            }
            if inputs.len() == max_inputs {
                // keep the largest-first property simple: drop the smallest and go on
                return Err(ChainError::InsufficientFunds(format!(
                    "{max_inputs} cells hold {total} shannons; {need} plus a {change_min}-shannon change cell is needed (consolidate the wallet's cells)"
                )));
            }
        }
        if total != need && total < need.saturating_add(change_min) {
            return Err(ChainError::InsufficientFunds(format!(
                "the wallet's cells at least {min_depth} blocks deep hold {total} shannons; {need} plus a change cell is needed ({shallow} more are in younger cells)"
            )));
        }
        let mut outputs = vec![to_out];
        if total > need {
            outputs.push(
                CellOutput::new_builder()
                    .capacity(Pack::<packed::Uint64>::pack(&(total - need)))
                    .lock(self.lock.clone())
                    .build(),
            );
        }
        let n_out = outputs.len();
        let dep = chain.sighash_dep().await?;
        let placeholder = WitnessArgs::new_builder()
            .lock(Some(Bytes::from(vec![0u8; 65])).pack())
            .build();
        let mut witnesses: Vec<packed::Bytes> = vec![placeholder.as_bytes().pack()];
        witnesses.resize(inputs.len(), Bytes::new().pack());
        let input_keys: Vec<String> = inputs.iter().map(out_point_key).collect();
        let tx = TransactionBuilder::default()
            .cell_dep(dep)
            .inputs(inputs.into_iter().map(|op| CellInput::new(op, 0)))
            .outputs(outputs)
            .outputs_data(vec![Bytes::new().pack(); n_out])
            .witnesses(witnesses)
            .build();
        let tx = self.sign(tx, input_keys.len())?;
        let size = tx.data().serialized_size_in_block() as u64;
        if size > max_bytes {
            return Err(ChainError::Invalid(format!(
                "the payout transaction is {size} bytes, over the configured {max_bytes}"
            )));
        }
        let hash: H256 = tx.hash().unpack();
        Ok(SignedPayout {
            tx: tx.data().into(),
            hash: format!("{hash:#x}"),
            size,
            inputs: input_keys,
        })
    }

    fn sign(&self, tx: TransactionView, n_inputs: usize) -> Result<TransactionView, ChainError> {
        let key = self.key.ok_or_else(|| {
            ChainError::Invalid("a watch-only hot wallet cannot sign a payout".into())
        })?;
        let signer = SecpSighashScriptSigner::new(Box::new(
            SecpCkbRawKeySigner::new_with_secret_keys(vec![key]),
        ));
        let group = ScriptGroup {
            script: self.lock.clone(),
            group_type: ScriptGroupType::Lock,
            input_indices: (0..n_inputs).collect(),
            output_indices: Vec::new(),
        };
        signer
            .sign_tx(&tx, &group)
            .map_err(|e| ChainError::Invalid(format!("signing failed: {e}")))
    }
}

/// The lock script of an address, in the node's JSON form (for `get_cells` and tools).
pub fn address_lock(address: &str) -> Result<ckb_jsonrpc_types::Script, String> {
    let a = address_from_str(address.trim())?;
    Ok(Script::from(&a).into())
}

/// Parses a stored transaction hash.
pub fn parse_hash(s: &str) -> Result<H256, String> {
    H256::from_str(s.trim_start_matches("0x")).map_err(|e| format!("tx hash {s:?}: {e}"))
}

/// The out points a stored transaction spends, as `0x<hash>:<index>`.
pub fn tx_inputs(tx: &ckb_jsonrpc_types::Transaction) -> Vec<ckb_jsonrpc_types::OutPoint> {
    tx.inputs
        .iter()
        .map(|i| i.previous_output.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEV_KEY: &str = "0xd00c06bfd800d27397002dca6fb0993d5ba6399b4238b2f29ee9deb97593d2bc";

    #[test]
    fn a_watch_only_wallet_is_the_keyed_wallet_without_its_key() {
        let keyed = HotWallet::from_hex(DEV_KEY, false).unwrap();
        assert!(keyed.can_sign());
        let watch = HotWallet::watch_only(&keyed.address(), false).unwrap();
        assert!(!watch.can_sign());
        assert_eq!(watch.lock(), keyed.lock());
        assert_eq!(watch.address(), keyed.address());
        assert!(
            HotWallet::watch_only(&keyed.address(), true).is_err(),
            "a testnet address on mainnet"
        );
        assert!(HotWallet::watch_only("ckt1nonsense", false).is_err());
    }

    #[test]
    fn addresses_are_parsed_not_prefix_checked() {
        let full = "ckt1qzda0cr08m85hc8jlnfp3zer7xulejywt49kt2rr0vthywaa50xwsqwgx292hnvmn68xf779vmzrshpmm6epn4c0cgwga";
        let short = "ckt1qyqvsv5240xeh85wvnau2eky8pwrhh4jr8ts8vyj37";
        let a = parse_address(full, false).unwrap();
        assert_eq!(a.canonical, full);
        assert_eq!(a.min_capacity, Amount::from_base_units(61 * 100_000_000));
        assert_eq!(
            parse_address(short, false).unwrap().canonical,
            full,
            "short format is the same lock"
        );
        assert_eq!(
            parse_address(full, true).unwrap_err().0,
            "address_wrong_network"
        );
        let mut broken = full.to_string();
        broken.pop();
        broken.push('q');
        assert_eq!(
            parse_address(&broken, false).unwrap_err().0,
            "address_malformed"
        );
        assert_eq!(
            parse_address("ckt1", false).unwrap_err().0,
            "address_malformed"
        );
        // valid bech32 with an empty or badly padded data part: ckb-sdk's own parser panics on
        // these; they must be refused like any malformed address
        for s in ["ckt1laf3m2", "ckt1qh92lp2", "ckb1laf3m2"] {
            assert_eq!(
                parse_address(s, false).unwrap_err().0,
                "address_malformed",
                "{s}"
            );
        }
        assert_eq!(
            parse_address("ckt1qyqvsv5240xeh85wvnau2eky8pwrhh4jr8ts8vyj3x", false)
                .unwrap_err()
                .0,
            "address_malformed"
        );
    }

    #[test]
    fn the_devnet_key_has_its_known_address() {
        let w = HotWallet::from_hex(DEV_KEY, false).unwrap();
        assert_eq!(
            w.address(),
            "ckt1qzda0cr08m85hc8jlnfp3zer7xulejywt49kt2rr0vthywaa50xwsqwgx292hnvmn68xf779vmzrshpmm6epn4c0cgwga"
        );
        assert!(HotWallet::from_hex("0x12", false).is_err());
    }

    #[test]
    fn payout_sizes() {
        assert_eq!(payout_tx_size(1, 20), 464);
        assert_eq!(payout_tx_size(2, 20), 516);
    }
}
