use super::{get_n, get_s, s, unavailable, DynamoShop, Item};
use crate::domain::pricing::Product;
use crate::domain::{Money, Sku};
use crate::ports::{Catalogue, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::KeysAndAttributes;
use std::collections::HashMap;

/// `BatchGetItem` takes at most 100 keys; an order has at most 50 lines.
const MAX_KEYS: usize = 100;

pub(crate) fn product_from_item(item: &Item) -> Result<Product, StoreError> {
    let currency = get_s(item, "currency")?.parse().map_err(|e| StoreError::Corrupt(format!("{e}")))?;
    Ok(Product {
        sku: Sku::from(get_s(item, "sku")?),
        name: get_s(item, "name")?.to_owned(),
        unit_price: Money::new(get_n(item, "unitPrice")?, currency),
    })
}

#[async_trait]
impl Catalogue for DynamoShop {
    async fn products(&self, skus: &[Sku]) -> Result<HashMap<Sku, Product>, StoreError> {
        let mut found = HashMap::new();
        for chunk in skus.chunks(MAX_KEYS) {
            let keys: Vec<Item> =
                chunk.iter().map(|sku| HashMap::from([("sku".to_owned(), s(sku.as_str()))])).collect();
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .projection_expression("sku, #n, unitPrice, currency")
                    .expression_attribute_names("#n", "name")
                    .build()
                    .map_err(super::build_error)?,
            );
            // BatchGetItem may leave keys unprocessed under load; ask again for those.
            while let Some(keys) = request.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.tables.products, keys)
                    .send()
                    .await
                    .map_err(unavailable)?;
                for item in out.responses().and_then(|r| r.get(&self.tables.products)).into_iter().flatten() {
                    let product = product_from_item(item)?;
                    found.insert(product.sku.clone(), product);
                }
                request = out.unprocessed_keys().and_then(|u| u.get(&self.tables.products)).cloned();
            }
        }
        Ok(found)
    }
}
