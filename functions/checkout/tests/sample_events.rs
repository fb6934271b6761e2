//! Every API Gateway sample in events/ goes through the real Lambda types and handler: what
//! `sam local invoke` and `cargo lambda invoke --data-file` would feed the function.

use checkout::{Checkout, Fulfilment, Ports};
use lambda_http::Body;
use serde_json::Value;
use shared::adapters::memory::{MemoryBus, MemoryIdempotency, MemoryShop};
use shared::adapters::sandbox_payments::SandboxGateway;
use shared::domain::pricing::Product;
use shared::domain::{Currency, Money};
use std::sync::Arc;

fn sample(name: &str) -> lambda_http::Request {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name} is not an API Gateway event: {e}"))
}

fn given_the_seeded_shop() -> Checkout {
    let product =
        |sku: &str, cents| Product { sku: sku.into(), name: sku.into(), unit_price: Money::new(cents, Currency::EUR) };
    let shop =
        Arc::new(MemoryShop::default().with_product(product("MUG", 1250), 100).with_product(product("TEE", 2000), 50));
    Checkout::new(
        Ports {
            catalogue: shop.clone(),
            orders: shop.clone(),
            outbox: shop,
            publisher: Arc::new(MemoryBus::default()),
            payments: Arc::new(SandboxGateway::in_memory()),
        },
        Arc::new(MemoryIdempotency::default()),
    )
}

async fn respond(name: &str) -> (u16, Value) {
    answer(checkout::http::handle(&given_the_seeded_shop(), sample(name)).await.unwrap())
}

/// The staff function on an empty order store.
async fn respond_staff(name: &str) -> (u16, Value) {
    let shop = Arc::new(MemoryShop::default());
    let fulfilment = Fulfilment {
        orders: shop.clone(),
        outbox: shop,
        publisher: Arc::new(MemoryBus::default()),
        idempotency: Arc::new(MemoryIdempotency::default()),
        access: shared::auth::Access::default(),
    };
    answer(checkout::http::handle_staff(&fulfilment, sample(name)).await.unwrap())
}

fn answer(response: lambda_http::Response<Body>) -> (u16, Value) {
    let body = match response.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap(),
        other => panic!("expected a text body, got {other:?}"),
    };
    (response.status().as_u16(), body)
}

#[tokio::test]
async fn the_good_order_sample_is_placed() {
    let (status, body) = respond("checkout-place-order.json").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["total"], 4500);
}

#[tokio::test]
async fn the_declined_card_sample_is_402() {
    assert_eq!(respond("checkout-declined-card.json").await.0, 402);
}

#[tokio::test]
async fn the_invalid_body_sample_is_400_with_field_errors() {
    let (status, body) = respond("checkout-invalid-body.json").await;
    assert_eq!(status, 400);
    assert!(!body["errors"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn the_get_order_sample_finds_no_such_order_in_an_empty_shop() {
    let (status, body) = respond("checkout-get-order.json").await;
    assert_eq!(status, 404);
    assert_eq!(body["status"], 404);
}

/// The lifecycle samples name an order the empty shop does not have: reaching the route shows
/// as "order not found", not as "no such route".
#[tokio::test]
async fn the_lifecycle_samples_reach_their_routes_in_their_own_function() {
    for name in ["checkout-cancel-order.json", "checkout-get-order-events.json", "checkout-get-order-as-of.json"] {
        let (status, body) = respond(name).await;
        assert_eq!(
            (status, body["type"].as_str()),
            (404, Some("https://shop.example/problems/order-not-found")),
            "{name}"
        );
    }
    for name in ["fulfilment-ship-order.json", "fulfilment-deliver-order.json"] {
        let (status, body) = respond_staff(name).await;
        assert_eq!(
            (status, body["type"].as_str()),
            (404, Some("https://shop.example/problems/order-not-found")),
            "{name}"
        );
        assert_eq!(
            respond(name).await.1["type"],
            "https://shop.example/problems/not-found",
            "{name}: not a customer route"
        );
    }
}

#[tokio::test]
async fn every_http_sample_parses_as_an_api_gateway_v2_request() {
    let dir = format!("{}/../../events", env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let text = std::fs::read_to_string(format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        if serde_json::from_str::<Value>(&text).unwrap().get("routeKey").is_some() {
            let request = sample(&name);
            assert!(request.uri().path().starts_with('/'), "{name}");
            seen += 1;
        }
    }
    assert!(seen >= 5, "expected the checkout and recommendations samples, saw {seen}");
}
