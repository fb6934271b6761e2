//! CustomersTable: `customerId` → `email`, `name`.

use crate::{Customer, Customers};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use shared::adapters::dynamodb::{get_s, s, unavailable};
use shared::domain::CustomerId;
use shared::ports::StoreError;

pub struct DynamoCustomers {
    pub client: Client,
    pub table: String,
}

#[async_trait]
impl Customers for DynamoCustomers {
    async fn find(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("customerId", s(id.as_str()))
            .projection_expression("email, #name")
            .expression_attribute_names("#name", "name")
            .send()
            .await
            .map_err(unavailable)?;
        let Some(item) = out.item() else { return Ok(None) };
        // A receipt without a name still reaches the customer; one without an address cannot.
        let name = get_s(item, "name").unwrap_or_default().to_owned();
        Ok(Some(Customer { email: get_s(item, "email")?.to_owned(), name }))
    }
}
