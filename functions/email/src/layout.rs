//! What every notice shares: the greeting, the order's lines as a table, and escaping of
//! strings that come from outside (names, SKUs, carriers) before they go into HTML.

use shared::domain::{Money, MoneyError, Sku};
use std::fmt::Write;

/// One line as the customer reads it.
pub struct Row {
    pub sku: String,
    pub quantity: u32,
    pub unit_price: Money,
    pub subtotal: Money,
}

/// The order's lines, each with its subtotal; an overflowing subtotal is an error, never a
/// wrapped amount.
pub fn rows<'a>(lines: impl IntoIterator<Item = (&'a Sku, u32, Money)>) -> Result<Vec<Row>, MoneyError> {
    lines
        .into_iter()
        .map(|(sku, quantity, unit_price)| {
            Ok(Row { sku: sku.to_string(), quantity, unit_price, subtotal: unit_price.checked_mul(quantity)? })
        })
        .collect()
}

pub fn greeting(name: &str) -> String {
    if name.trim().is_empty() {
        "Hello,".to_owned()
    } else {
        format!("Hello {},", name.trim())
    }
}

/// The lines as plain text, one per line.
pub fn text_rows(rows: &[Row]) -> String {
    let mut out = String::new();
    for r in rows {
        let _ = writeln!(out, "  {} × {} @ {} = {}", r.sku, r.quantity, r.unit_price, r.subtotal);
    }
    out
}

/// The lines as an HTML table.
pub fn html_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "<table><thead><tr><th>Item</th><th>Qty</th><th>Unit price</th><th>Subtotal</th></tr></thead><tbody>",
    );
    for r in rows {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&r.sku),
            r.quantity,
            r.unit_price,
            r.subtotal
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// Names, SKUs and carriers come from outside: they must not become markup.
pub fn escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
