use super::{EventData, SOURCE_INVENTORY};
use crate::domain::Sku;
use serde::{Deserialize, Serialize};

/// `inventory.low-stock` v1: an order took a SKU's available stock below its threshold.
/// The envelope's `orderId` names the order that did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct LowStockV1 {
    pub sku: Sku,
    pub available: i64,
    pub threshold: i64,
}

impl EventData for LowStockV1 {
    const TYPE: &'static str = "inventory.low-stock";
    const VERSION: u32 = 1;
    const SOURCE: &'static str = SOURCE_INVENTORY;
}
