//! The cancellation notice, rendered as plain text and HTML from the event alone (a pure
//! function): what was cancelled, and the refund on its way.

use crate::layout::{escape, greeting, html_table, rows, text_rows, Row};
use crate::{Customer, Message, Notice};
use shared::domain::{Money, MoneyError, OrderId};
use shared::events::OrderCancelledV1;

pub fn render(order_id: OrderId, customer: &Customer, order: &OrderCancelledV1) -> Result<Message, MoneyError> {
    let rows = rows(order.lines.iter().map(|l| (&l.sku, l.quantity, Money::new(l.unit_price, order.currency))))?;
    // What was charged, as the event states it: the whole charge is refunded.
    let refund = order.total_money();
    Ok(Message {
        notice: Notice::Cancellation,
        to: customer.email.clone(),
        subject: format!("Your order {order_id} is cancelled"),
        text: text(order_id, &customer.name, &rows, refund),
        html: html(order_id, &customer.name, &rows, refund),
    })
}

fn text(order_id: OrderId, name: &str, rows: &[Row], refund: Money) -> String {
    format!(
        "{}\n\nyour order {order_id} is cancelled, as you asked.\n\n{}\nWe are refunding {refund} to your payment method.\n",
        greeting(name),
        text_rows(rows)
    )
}

fn html(order_id: OrderId, name: &str, rows: &[Row], refund: Money) -> String {
    format!(
        "<!doctype html><html><body><p>{}</p><p>your order {order_id} is cancelled, as you asked.</p>{}\
         <p><strong>We are refunding {refund} to your payment method.</strong></p></body></html>",
        escape(&greeting(name)),
        html_table(rows)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::Currency;
    use shared::events::OrderPlacedLine;

    fn cancelled() -> OrderCancelledV1 {
        OrderCancelledV1 {
            customer_id: "cust-ada".into(),
            lines: vec![
                OrderPlacedLine { sku: "MUG".into(), quantity: 2, unit_price: 1250 },
                OrderPlacedLine { sku: "<TEE>".into(), quantity: 1, unit_price: 2099 },
            ],
            total: 4599,
            currency: Currency::EUR,
        }
    }

    fn ada() -> Customer {
        Customer { email: "ada@example.com".into(), name: "Ada Lovelace".into() }
    }

    #[test]
    fn the_notice_goes_to_the_customer_and_says_which_order_is_cancelled() {
        let id = OrderId::new();
        let message = render(id, &ada(), &cancelled()).unwrap();
        assert_eq!((message.to.as_str(), message.notice), ("ada@example.com", Notice::Cancellation));
        assert_eq!(message.subject, format!("Your order {id} is cancelled"));
        assert!(message.text.starts_with("Hello Ada Lovelace,\n"), "{}", message.text);
    }

    #[test]
    fn it_lists_what_was_cancelled_and_the_refund_of_the_whole_charge() {
        let message = render(OrderId::new(), &ada(), &cancelled()).unwrap();
        assert!(message.text.contains("MUG × 2 @ 12.50 EUR = 25.00 EUR"), "{}", message.text);
        assert!(message.text.ends_with("We are refunding 45.99 EUR to your payment method.\n"));
        assert!(message.html.contains("<td>MUG</td><td>2</td><td>12.50 EUR</td><td>25.00 EUR</td>"));
        assert!(message.html.contains("refunding 45.99 EUR"));
    }

    #[test]
    fn strings_from_outside_cannot_inject_markup() {
        let message = render(OrderId::new(), &ada(), &cancelled()).unwrap();
        assert!(message.html.contains("<td>&lt;TEE&gt;</td>") && !message.html.contains("<TEE>"));
    }

    #[test]
    fn a_subtotal_that_overflows_is_an_error_not_a_wrapped_amount() {
        let mut huge = cancelled();
        huge.lines[0].unit_price = i64::MAX;
        assert_eq!(render(OrderId::new(), &ada(), &huge), Err(MoneyError::Overflow));
    }
}
