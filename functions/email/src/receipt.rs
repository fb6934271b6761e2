//! The receipt, rendered as plain text and HTML from the event alone (a pure function).

use crate::{Customer, Message};
use shared::domain::{Money, MoneyError, OrderId};
use shared::events::OrderPlacedV1;
use std::fmt::Write;

/// One line as the customer reads it.
struct Row {
    sku: String,
    quantity: u32,
    unit_price: Money,
    subtotal: Money,
}

pub fn render(order_id: OrderId, customer: &Customer, order: &OrderPlacedV1) -> Result<Message, MoneyError> {
    let rows = order
        .lines
        .iter()
        .map(|l| {
            let unit_price = Money::new(l.unit_price, order.currency);
            Ok(Row {
                sku: l.sku.to_string(),
                quantity: l.quantity,
                unit_price,
                subtotal: unit_price.checked_mul(l.quantity)?,
            })
        })
        .collect::<Result<Vec<_>, MoneyError>>()?;
    // The total is what was charged, as the event states it, not a sum recomputed here.
    let total = order.total_money();
    Ok(Message {
        to: customer.email.clone(),
        subject: format!("Your order {order_id}"),
        text: text(order_id, &customer.name, &rows, total),
        html: html(order_id, &customer.name, &rows, total),
    })
}

fn greeting(name: &str) -> String {
    if name.trim().is_empty() {
        "Hello,".to_owned()
    } else {
        format!("Hello {},", name.trim())
    }
}

fn text(order_id: OrderId, name: &str, rows: &[Row], total: Money) -> String {
    let mut out = format!("{}\n\nthank you for your order {order_id}.\n\n", greeting(name));
    for r in rows {
        let _ = writeln!(out, "  {} × {} @ {} = {}", r.sku, r.quantity, r.unit_price, r.subtotal);
    }
    let _ = writeln!(out, "\nTotal: {total}");
    out
}

fn html(order_id: OrderId, name: &str, rows: &[Row], total: Money) -> String {
    let mut out = format!(
        "<!doctype html><html><body><p>{}</p><p>thank you for your order {order_id}.</p>\
         <table><thead><tr><th>Item</th><th>Qty</th><th>Unit price</th><th>Subtotal</th></tr></thead><tbody>",
        escape(&greeting(name))
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
    let _ = write!(out, "</tbody></table><p><strong>Total: {total}</strong></p></body></html>");
    out
}

/// Names and SKUs come from outside: they must not become markup.
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

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::Currency;
    use shared::events::OrderPlacedLine;

    fn order() -> OrderPlacedV1 {
        OrderPlacedV1 {
            customer_id: "cust-ada".into(),
            lines: vec![
                OrderPlacedLine { sku: "MUG".into(), quantity: 2, unit_price: 1250 },
                OrderPlacedLine { sku: "TEE".into(), quantity: 1, unit_price: 2099 },
            ],
            total: 4599,
            currency: Currency::EUR,
        }
    }

    fn ada() -> Customer {
        Customer { email: "ada@example.com".into(), name: "Ada Lovelace".into() }
    }

    #[test]
    fn the_receipt_goes_to_the_customer_and_names_the_order() {
        let id = OrderId::new();
        let message = render(id, &ada(), &order()).unwrap();
        assert_eq!(message.to, "ada@example.com");
        assert_eq!(message.subject, format!("Your order {id}"));
    }

    #[test]
    fn each_line_shows_quantity_unit_price_and_subtotal_and_the_total_closes() {
        let message = render(OrderId::new(), &ada(), &order()).unwrap();
        assert!(message.text.contains("MUG × 2 @ 12.50 EUR = 25.00 EUR"), "{}", message.text);
        assert!(message.text.contains("TEE × 1 @ 20.99 EUR = 20.99 EUR"));
        assert!(message.text.ends_with("Total: 45.99 EUR\n"));
        assert!(message.html.contains("<td>MUG</td><td>2</td><td>12.50 EUR</td><td>25.00 EUR</td>"));
        assert!(message.html.contains("Total: 45.99 EUR"));
    }

    #[test]
    fn customer_controlled_strings_cannot_inject_markup() {
        let customer = Customer { email: "x@example.com".into(), name: "<script>alert('x')</script> & co".into() };
        let message = render(OrderId::new(), &customer, &order()).unwrap();
        assert!(!message.html.contains("<script>"));
        assert!(message.html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"));
        assert!(message.text.contains("<script>"), "plain text is not markup and stays as written");
    }

    #[test]
    fn a_customer_without_a_name_is_greeted_plainly() {
        let customer = Customer { email: "x@example.com".into(), name: "  ".into() };
        assert!(render(OrderId::new(), &customer, &order()).unwrap().text.starts_with("Hello,\n"));
    }

    #[test]
    fn a_subtotal_that_overflows_is_an_error_not_a_wrapped_amount() {
        let mut huge = order();
        huge.lines[0].unit_price = i64::MAX;
        assert_eq!(render(OrderId::new(), &ada(), &huge), Err(MoneyError::Overflow));
    }
}
