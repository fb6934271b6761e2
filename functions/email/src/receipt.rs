//! The receipt, rendered as plain text and HTML from the event alone (a pure function).

use crate::layout::{escape, greeting, html_table, rows, text_rows, Row};
use crate::{Customer, Message, Notice};
use shared::domain::{Money, MoneyError, OrderId};
use shared::events::OrderPlacedV2;

pub fn render(order_id: OrderId, customer: &Customer, order: &OrderPlacedV2) -> Result<Message, MoneyError> {
    let rows = rows(order.lines.iter().map(|l| (&l.sku, l.quantity, l.unit_price)))?;
    // The total is what was charged, as the event states it, not a sum recomputed here.
    let total = order.total;
    Ok(Message {
        notice: Notice::Receipt,
        to: customer.email.clone(),
        subject: format!("Your order {order_id}"),
        text: text(order_id, &customer.name, &rows, total),
        html: html(order_id, &customer.name, &rows, total),
    })
}

fn text(order_id: OrderId, name: &str, rows: &[Row], total: Money) -> String {
    format!("{}\n\nthank you for your order {order_id}.\n\n{}\nTotal: {total}\n", greeting(name), text_rows(rows))
}

fn html(order_id: OrderId, name: &str, rows: &[Row], total: Money) -> String {
    format!(
        "<!doctype html><html><body><p>{}</p><p>thank you for your order {order_id}.</p>{}\
         <p><strong>Total: {total}</strong></p></body></html>",
        escape(&greeting(name)),
        html_table(rows)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::Currency;
    use shared::events::PricedLine;

    fn order() -> OrderPlacedV2 {
        let eur = |amount| Money::new(amount, Currency::EUR);
        OrderPlacedV2 {
            customer_id: "cust-ada".into(),
            lines: vec![
                PricedLine { sku: "MUG".into(), quantity: 2, unit_price: eur(1250) },
                PricedLine { sku: "TEE".into(), quantity: 1, unit_price: eur(2099) },
            ],
            total: eur(4599),
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
        huge.lines[0].unit_price.amount = i64::MAX;
        assert_eq!(render(OrderId::new(), &ada(), &huge), Err(MoneyError::Overflow));
    }
}
