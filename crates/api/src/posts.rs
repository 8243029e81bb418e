//! `post.totals`: what posts have received, for a topic page at once.

use crate::auth::Caller;
use crate::common::{internal, ExternalId};
use crate::AppState;
use fiber_link_core::ApiError;
use serde::Deserialize;
use serde_json::{json, Value};

/// The most posts one call may ask about (a topic page shows 20 at a time).
pub(crate) const MAX_POSTS: usize = 200;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TotalsParams {
    post_ids: Vec<ExternalId>,
}

/// Per post asked about (in the order asked, each once), its settled tips per configured asset:
/// `{"totals": [{"post_id": "1", "assets": [{"asset": "CKB", "amount": "12.5", "tips": 3}]}]}`.
/// A post with none has an empty `assets`. Only SETTLED tips count.
pub(crate) async fn totals(
    state: &AppState,
    caller: &Caller,
    p: TotalsParams,
) -> Result<Value, ApiError> {
    if p.post_ids.len() > MAX_POSTS {
        return Err(ApiError::invalid(
            "too_many_posts",
            format!("post_ids holds at most {MAX_POSTS} posts; ask in several calls"),
        ));
    }
    let mut ids: Vec<String> = Vec::with_capacity(p.post_ids.len());
    for id in &p.post_ids {
        let id = id.validated("post_ids")?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    state.check_rate(&caller.app_id, "post.totals", None)?;
    let rows = if ids.is_empty() {
        Vec::new()
    } else {
        state
            .store
            .post_totals(&caller.app_id, &ids)
            .await
            .map_err(internal)?
    };
    let totals: Vec<Value> = ids
        .iter()
        .map(|post| {
            // in the configured order of assets; an asset no longer configured is left out
            let assets: Vec<Value> = state
                .settings
                .assets
                .iter()
                .filter_map(|a| {
                    let (_, _, amount, tips) = rows
                        .iter()
                        .find(|(p, asset, _, _)| p == post && *asset == a.symbol)?;
                    Some(json!({
                        "asset": a.symbol,
                        "decimals": a.decimals,
                        "amount": state.format_amount(&a.symbol, *amount),
                        "tips": tips,
                    }))
                })
                .collect();
            json!({"post_id": post, "assets": assets})
        })
        .collect();
    Ok(json!({ "totals": totals }))
}
