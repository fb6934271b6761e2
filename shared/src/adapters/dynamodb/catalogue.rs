use super::{batch_get_skus, get_n, get_s, DynamoShop, Item};
use crate::domain::pricing::Product;
use crate::domain::{Money, Sku};
use crate::ports::{Catalogue, StoreError};
use async_trait::async_trait;
use std::collections::HashMap;

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
        let projection = "sku, #n, unitPrice, currency";
        let items =
            batch_get_skus(&self.client, &self.tables.products, skus, projection, &[("#n", "name")], false).await?;
        items.iter().map(|item| product_from_item(item).map(|p| (p.sku.clone(), p))).collect()
    }
}
