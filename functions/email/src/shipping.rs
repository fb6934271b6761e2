//! The shipping notice, rendered as plain text and HTML from the event alone (a pure
//! function): the carrier and the tracking number.

use crate::layout::{escape, greeting};
use crate::{Customer, Message, Notice};
use shared::domain::OrderId;
use shared::events::OrderShippedV1;

pub fn render(order_id: OrderId, customer: &Customer, shipment: &OrderShippedV1) -> Message {
    let (carrier, tracking) = (shipment.carrier.trim(), shipment.tracking_id.trim());
    Message {
        notice: Notice::Shipping,
        to: customer.email.clone(),
        subject: format!("Your order {order_id} has shipped"),
        text: format!(
            "{}\n\nyour order {order_id} is on its way with {carrier}.\n\nTracking number: {tracking}\n",
            greeting(&customer.name)
        ),
        // The carrier and tracking number come from the warehouse: escaped like any outside string.
        html: format!(
            "<!doctype html><html><body><p>{}</p><p>your order {order_id} is on its way with {}.</p>\
             <p>Tracking number: <strong>{}</strong></p></body></html>",
            escape(&greeting(&customer.name)),
            escape(carrier),
            escape(tracking)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> OrderShippedV1 {
        OrderShippedV1 {
            customer_id: "cust-ada".into(),
            carrier: "UPS".into(),
            tracking_id: "1Z999AA10123456784".into(),
        }
    }

    fn ada() -> Customer {
        Customer { email: "ada@example.com".into(), name: "Ada Lovelace".into() }
    }

    #[test]
    fn the_notice_goes_to_the_customer_and_names_the_order_carrier_and_tracking_number() {
        let id = OrderId::new();
        let message = render(id, &ada(), &shipped());
        assert_eq!((message.to.as_str(), message.notice), ("ada@example.com", Notice::Shipping));
        assert_eq!(message.subject, format!("Your order {id} has shipped"));
        assert!(message.text.contains("on its way with UPS."), "{}", message.text);
        assert!(message.text.ends_with("Tracking number: 1Z999AA10123456784\n"));
        assert!(message.html.contains("<strong>1Z999AA10123456784</strong>"));
    }

    #[test]
    fn a_carrier_or_tracking_number_from_outside_cannot_inject_markup() {
        let shipment = OrderShippedV1 { carrier: "<b>UPS</b>".into(), tracking_id: "\"1Z\"".into(), ..shipped() };
        let message = render(OrderId::new(), &ada(), &shipment);
        assert!(message.html.contains("&lt;b&gt;UPS&lt;/b&gt;") && message.html.contains("&quot;1Z&quot;"));
        assert!(!message.html.contains("<b>UPS"));
    }

    #[test]
    fn a_customer_without_a_name_is_greeted_plainly() {
        let customer = Customer { email: "x@example.com".into(), name: String::new() };
        assert!(render(OrderId::new(), &customer, &shipped()).text.starts_with("Hello,\n"));
    }
}
