//! `GET /products/{sku}/recommendations` (API Gateway HTTP API, payload v2): the SKUs most often
//! bought together with `sku`. An unknown SKU answers an empty list, not 404: nobody has bought
//! it with anything yet, which is the truthful answer, and the catalogue is not ours to consult.
//! Errors are RFC 9457 problem details.

use crate::{top, BoughtWith, TOP};
use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use serde_json::json;
use shared::domain::Sku;
use shared::http::{problem, respond, Answer};

/// As long as the checkout accepts; a longer one cannot name a product.
pub const MAX_SKU_LEN: usize = 64;

/// From the route's path parameter, or from the path when the event carries none (a local run).
fn sku_of(req: &Request) -> Option<String> {
    let from_route = req.path_parameters_ref().and_then(|p| p.first("sku")).map(str::to_owned);
    let from_path = || {
        let path = Some(req.raw_http_path()).filter(|p| !p.is_empty()).unwrap_or(req.uri().path());
        let rest = path.trim_end_matches('/').strip_suffix("/recommendations")?;
        rest.rsplit_once("/products/").map(|(_, sku)| sku.to_owned())
    };
    from_route.or_else(from_path).filter(|sku| !sku.is_empty() && !sku.contains('/'))
}

async fn answer<B: BoughtWith + ?Sized>(store: &B, req: &Request) -> Answer {
    if req.method() != Method::GET {
        return problem(405, "method-not-allowed", "Method not allowed", "Recommendations are read with GET.");
    }
    let Some(sku) = sku_of(req) else {
        return problem(404, "not-found", "No such route", "The route is GET /products/{sku}/recommendations.");
    };
    if sku.len() > MAX_SKU_LEN || sku.chars().any(char::is_control) {
        return problem(400, "invalid-sku", "Invalid SKU", "A SKU is 1 to 64 printable characters.");
    }
    match store.bought_with(&Sku::from(sku.as_str())).await {
        Ok(all) => Answer::ok(json!({ "sku": sku, "recommendations": top(all, TOP) })),
        Err(error) => {
            tracing::error!(%error, sku, "recommendations could not be read");
            problem(
                503,
                "unavailable",
                "Recommendations unavailable",
                "The recommendations could not be read; try again shortly.",
            )
        }
    }
}

pub async fn handle<B: BoughtWith + ?Sized>(store: &B, req: Request) -> Result<Response<Body>, Error> {
    let answer = answer(store, &req).await;
    respond(&req, answer)
}
