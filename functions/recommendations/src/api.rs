//! `GET /products/{sku}/recommendations` (API Gateway HTTP API, payload v2): the SKUs most often
//! bought together with `sku`. An unknown SKU answers an empty list, not 404: nobody has bought
//! it with anything yet, which is the truthful answer, and the catalogue is not ours to consult.
//! Errors are RFC 9457 problem details.

use crate::{top, BoughtWith, TOP};
use lambda_http::{Body, Error, Request, Response};
use serde_json::json;
use shared::domain::Sku;
use shared::http::{self, Problem, Reply};

/// As long as the checkout accepts; a longer one cannot name a product.
pub const MAX_SKU_LEN: usize = 64;

pub const ROUTES: &[&str] = &["GET /products/{sku}/recommendations"];

async fn answer<B: BoughtWith + ?Sized>(store: &B, req: &Request) -> Reply {
    let Some(sku) = http::route(req, ROUTES).and_then(|m| m.param("sku").map(str::to_owned)) else {
        return http::no_route(req, ROUTES);
    };
    if sku.len() > MAX_SKU_LEN || sku.chars().any(char::is_control) {
        return Problem::new(400, "invalid-sku", "Invalid SKU", "A SKU is 1 to 64 printable characters.").reply();
    }
    match store.bought_with(&Sku::from(sku.as_str())).await {
        Ok(all) => http::json(200, &json!({ "sku": sku, "recommendations": top(all, TOP) })),
        Err(error) => {
            tracing::error!(%error, sku, "recommendations could not be read");
            let unavailable = Problem::new(
                503,
                "unavailable",
                "Recommendations unavailable",
                "The recommendations could not be read; try again shortly.",
            );
            http::with_header(unavailable.reply(), "retry-after", "5")
        }
    }
}

pub async fn handle<B: BoughtWith + ?Sized>(store: &B, req: Request) -> Result<Response<Body>, Error> {
    let answer = answer(store, &req).await;
    http::respond(answer, &http::correlation_id(&req))
}
