//! `seed`: the catalogue, stock and customers of a data file (tools/seed.json) into the
//! stack's tables, in the item shapes the functions read (`shared::adapters::dynamodb`'s
//! catalogue and stock, the e-mail consumer's customers).
//!
//! Idempotent: seeding twice leaves the tables as seeding once does. The catalogue fields
//! (name, price, currency, low-stock threshold) and the customers are the file's every time;
//! stock (`available`, `reserved`) only when the product is new, because on a live stack it is
//! moved by every checkout: overwriting it would undo sales and break the reservations of
//! orders in flight. `--reset-stock` sets `available` to the file's anyway (never `reserved`,
//! which belongs to those orders).

use crate::error::{self, Failure};
use crate::report::{progress, Done};
use crate::target::Target;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use serde::{Deserialize, Serialize};
use shared::adapters::dynamodb::{n, s};
use std::collections::BTreeSet;
use std::path::Path;

/// The data file, as tools/seed.json has it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    #[serde(default)]
    pub products: Vec<Product>,
    #[serde(default)]
    pub customers: Vec<Customer>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Product {
    pub sku: String,
    pub name: String,
    /// Minor units of `currency`.
    pub unit_price: i64,
    pub currency: String,
    pub available: i64,
    /// Only for a new product; stock already reserved by orders in flight otherwise.
    #[serde(default)]
    pub reserved: i64,
    pub low_stock_threshold: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Customer {
    pub customer_id: String,
    pub email: String,
    pub name: String,
}

impl SeedFile {
    pub fn read(path: &Path) -> Result<SeedFile, Failure> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::refused(format!("cannot read the seed file {}: {e}", path.display())))?;
        let file: SeedFile = serde_json::from_str(&text).map_err(|e| {
            Failure::refused(format!("{} is not a seed file like tools/seed.json: {e}", path.display()))
        })?;
        file.validate().map_err(|problems| {
            Failure::refused(format!(
                "{} has {} problem(s), nothing was seeded:\n  {}",
                path.display(),
                problems.len(),
                problems.join("\n  ")
            ))
        })?;
        Ok(file)
    }

    /// Every problem at once, each naming its entry.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let mut skus = BTreeSet::new();
        for (i, p) in self.products.iter().enumerate() {
            let at = format!("products[{i}] ({})", p.sku);
            if p.sku.trim().is_empty() || p.sku.chars().any(|c| c.is_control() || c.is_whitespace()) {
                problems.push(format!("{at}: sku must be non-empty, without spaces or control characters"));
            }
            if !skus.insert(p.sku.as_str()) {
                problems.push(format!("{at}: sku {} appears twice", p.sku));
            }
            if p.name.trim().is_empty() {
                problems.push(format!("{at}: name is empty"));
            }
            if p.unit_price <= 0 {
                problems.push(format!("{at}: unitPrice must be a positive amount of minor units (cents)"));
            }
            if p.currency.parse::<shared::domain::Currency>().is_err() {
                let offered: Vec<&str> = shared::domain::Currency::ALL.iter().map(|c| c.code()).collect();
                problems.push(format!("{at}: currency {} is not one of {}", p.currency, offered.join(", ")));
            }
            for (field, value) in [
                ("available", Some(p.available)),
                ("reserved", Some(p.reserved)),
                ("lowStockThreshold", p.low_stock_threshold),
            ] {
                if value.is_some_and(|v| v < 0) {
                    problems.push(format!("{at}: {field} must not be negative"));
                }
            }
        }
        let mut ids = BTreeSet::new();
        for (i, c) in self.customers.iter().enumerate() {
            let at = format!("customers[{i}] ({})", c.customer_id);
            if !shared::auth::valid_subject(&c.customer_id) {
                problems.push(format!(
                    "{at}: customerId must be the customer's token subject: 1 to {} letters, digits or ._@|+-",
                    shared::auth::MAX_SUBJECT_LEN
                ));
            }
            if !ids.insert(c.customer_id.as_str()) {
                problems.push(format!("{at}: customerId appears twice"));
            }
            if !c.email.contains('@') {
                problems.push(format!("{at}: email {} is not an address", c.email));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Seeded {
    created: Vec<String>,
    updated: Vec<String>,
}

/// `seed`: puts the file's products and customers into the target's tables.
pub async fn seed(target: &Target, path: &Path, reset_stock: bool) -> Result<Done, Failure> {
    let file = SeedFile::read(path)?;
    let products_table = target.output("ProductsTableName")?.to_owned();
    let customers_table = target.output("CustomersTableName")?.to_owned();
    let dynamodb = aws_sdk_dynamodb::Client::new(&target.aws);
    let mut products = Seeded::default();
    for product in &file.products {
        let created = put_product(&dynamodb, &products_table, product, reset_stock).await?;
        let stock = if created {
            format!("created, {} available", product.available)
        } else if reset_stock {
            format!("updated, available reset to {}", product.available)
        } else {
            "updated, stock kept".to_owned()
        };
        progress(format!("product {}: {stock}", product.sku));
        (if created { &mut products.created } else { &mut products.updated }).push(product.sku.clone());
    }
    let mut customers = Seeded::default();
    for customer in &file.customers {
        let created = put_customer(&dynamodb, &customers_table, customer).await?;
        progress(format!("customer {}: {}", customer.customer_id, if created { "created" } else { "updated" }));
        (if created { &mut customers.created } else { &mut customers.updated }).push(customer.customer_id.clone());
    }
    let text = format!(
        "seeded {} from {}: {} product(s) ({} new), {} customer(s) ({} new){}",
        target.describe(),
        path.display(),
        file.products.len(),
        products.created.len(),
        file.customers.len(),
        customers.created.len(),
        if !reset_stock && !products.updated.is_empty() {
            "; the stock of existing products was kept (--reset-stock sets it to the file's)"
        } else {
            ""
        }
    );
    let json = serde_json::json!({
        "target": target.json(),
        "file": path.display().to_string(),
        "products": products,
        "customers": customers,
        "stockReset": reset_stock,
    });
    Ok(Done::new(json, text))
}

/// Whether the product was new.
async fn put_product(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    product: &Product,
    reset_stock: bool,
) -> Result<bool, Failure> {
    let available = if reset_stock { ":available" } else { "if_not_exists(available, :available)" };
    let mut set = format!(
        "SET #name = :name, unitPrice = :unitPrice, currency = :currency, available = {available}, \
         reserved = if_not_exists(reserved, :reserved)"
    );
    let mut request = dynamodb
        .update_item()
        .table_name(table)
        .key("sku", s(&product.sku))
        .expression_attribute_names("#name", "name")
        .expression_attribute_values(":name", s(&product.name))
        .expression_attribute_values(":unitPrice", n(product.unit_price))
        .expression_attribute_values(":currency", s(&product.currency))
        .expression_attribute_values(":available", n(product.available))
        .expression_attribute_values(":reserved", n(product.reserved));
    match product.low_stock_threshold {
        Some(threshold) => {
            set += ", lowStockThreshold = :threshold";
            request = request.expression_attribute_values(":threshold", n(threshold));
        }
        // The file is the catalogue: no threshold there, none in the table.
        None => set += " REMOVE lowStockThreshold",
    }
    let out = request
        .update_expression(set)
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .map_err(|e| error::aws(&format!("seeding product {} into {table}", product.sku), e))?;
    Ok(was_new(out.attributes()))
}

async fn put_customer(dynamodb: &aws_sdk_dynamodb::Client, table: &str, customer: &Customer) -> Result<bool, Failure> {
    let out = dynamodb
        .update_item()
        .table_name(table)
        .key("customerId", s(&customer.customer_id))
        .update_expression("SET email = :email, #name = :name")
        .expression_attribute_names("#name", "name")
        .expression_attribute_values(":email", s(&customer.email))
        .expression_attribute_values(":name", s(&customer.name))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .map_err(|e| error::aws(&format!("seeding customer {} into {table}", customer.customer_id), e))?;
    Ok(was_new(out.attributes()))
}

fn was_new(old: Option<&std::collections::HashMap<String, AttributeValue>>) -> bool {
    old.is_none_or(|attributes| attributes.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_s_seed_file_is_valid() {
        let file: SeedFile = serde_json::from_str(include_str!("../../tools/seed.json")).unwrap();
        assert_eq!(file.validate(), Ok(()));
        assert!(!file.products.is_empty() && !file.customers.is_empty());
    }

    #[test]
    fn every_problem_is_named_with_its_entry_at_once() {
        let file: SeedFile = serde_json::from_value(serde_json::json!({
            "products": [
                {"sku": "MUG", "name": "Mug", "unitPrice": 0, "currency": "JPY", "available": -1},
                {"sku": "MUG", "name": "", "unitPrice": 100, "currency": "EUR", "available": 1},
            ],
            "customers": [{"customerId": "bad id", "email": "nowhere", "name": "X"}],
        }))
        .unwrap();
        let problems = file.validate().unwrap_err();
        let all = problems.join("\n");
        for expected in [
            "products[0] (MUG): unitPrice",
            "currency JPY is not one of EUR, USD, GBP",
            "products[0] (MUG): available must not be negative",
            "products[1] (MUG): sku MUG appears twice",
            "products[1] (MUG): name is empty",
            "customers[0] (bad id): customerId",
            "email nowhere",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }

    #[test]
    fn a_misspelt_field_is_refused_rather_than_ignored() {
        let typo = serde_json::json!({"products": [
            {"sku": "MUG", "name": "Mug", "unitprice": 100, "currency": "EUR", "available": 1}
        ]});
        assert!(serde_json::from_value::<SeedFile>(typo).is_err());
    }
}
