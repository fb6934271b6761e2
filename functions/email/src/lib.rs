//! Email: the customer hears of their order's life through SES: a receipt when it is placed, a
//! shipping notice when it ships, a cancellation notice when they cancel it; each once, and
//! no receipt after the cancellation notice.
//!
//! Events carry the customer's id, not their address (personal data stays in one table), so
//! the address is looked up when a notice is sent.
//!
//! The events of one order reach this consumer in any order. The out-of-order rule
//! ([`shared::out_of_order`]) decides from this consumer's record of the order: a notice
//! already sent is not sent again; `order.placed` arriving after the cancellation is skipped
//! (the customer gets the cancellation notice and no receipt); anything else is sent. The
//! notices go out in the order their events are applied, not the order they happened in
//! (a shipping notice can precede a late receipt).
//!
//! Sending is an effect outside DynamoDB, so it runs under [`once_in_order`]: a lease on the
//! order's record for the invocation's lifetime, the stage recorded after SES accepted the
//! notice, the lease released if the send fails (so the retry sends). Under concurrent
//! delivery this means:
//! - two deliveries of one event, or of two events of one order (a receipt and a cancellation
//!   notice), never send at the same time: the one that finds the order held fails as
//!   `HeldElsewhere` and is redelivered after the visibility timeout, when it sees what the
//!   first recorded. So a receipt is never sent alongside, or after, a recorded cancellation.
//! - what is still possible, because SES takes no idempotency key and no transaction spans the
//!   send and the record: when SES accepted a notice but its stage was not recorded (the
//!   invocation died or timed out after the send, or the recording write failed), the lease
//!   lapses at that invocation's deadline, and then
//!   - the redelivery of that event sends the notice a second time, and
//!   - if that notice was the cancellation, an `order.placed` delivered before the
//!     cancellation's redelivery finds no tombstone and sends a receipt after it;
//!   - a send slower than the whole invocation (SES answering after the lease lapsed) opens
//!     the same window while the first delivery is still running.
//!
//! So: at least once, never silently lost; at most one of each notice and in rule order
//! except in that window.

pub mod cancellation;
pub mod dynamo;
mod layout;
pub mod memory;
pub mod receipt;
pub mod ses;
pub mod shipping;

use async_trait::async_trait;
use shared::config::{Env, MissingEnv};
use shared::consumer::{Consumer, ConsumerError, Delivery, Outcome};
use shared::domain::{CustomerId, MoneyError};
use shared::events::{Envelope, OrderCancelledV1, OrderPlacedV2, OrderShippedV1};
use shared::out_of_order::{once_in_order, OrderRecords, Stage};
use shared::ports::StoreError;

shared::event_set! {
    /// What the customer hears about.
    pub enum EmailEvents {
        Placed(OrderPlacedV2),
        Cancelled(OrderCancelledV1),
        Shipped(OrderShippedV1),
    }
}

impl EmailEvents {
    pub fn stage(&self) -> Stage {
        match self {
            EmailEvents::Placed(_) => Stage::Placed,
            EmailEvents::Cancelled(_) => Stage::Cancelled,
            EmailEvents::Shipped(_) => Stage::Shipped,
        }
    }

    pub fn customer_id(&self) -> &CustomerId {
        match self {
            EmailEvents::Placed(e) => &e.customer_id,
            EmailEvents::Cancelled(e) => &e.customer_id,
            EmailEvents::Shipped(e) => &e.customer_id,
        }
    }
}

/// Which notice a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Notice {
    Receipt,
    Shipping,
    Cancellation,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub email: String,
    pub name: String,
}

/// Where customers' addresses live.
#[async_trait]
pub trait Customers: Send + Sync {
    async fn find(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError>;
}

/// A rendered email, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub notice: Notice,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mail not sent: {0}")]
pub struct MailError(pub String);

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, message: &Message) -> Result<(), MailError>;
}

#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("customer {0} does not exist")]
    UnknownCustomer(CustomerId),
    #[error("customer {0} has no valid e-mail address on file")]
    InvalidAddress(CustomerId),
    #[error("notice cannot be rendered: {0}")]
    Render(#[from] MoneyError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EmailError {
    /// Retrying cannot help: the record goes to the dead-letter queue at once.
    pub fn is_permanent(&self) -> bool {
        matches!(self, EmailError::UnknownCustomer(_) | EmailError::InvalidAddress(_) | EmailError::Render(_))
    }
}

impl From<EmailError> for ConsumerError {
    fn from(e: EmailError) -> Self {
        match e {
            EmailError::Store(store) => ConsumerError::Store(store),
            permanent if permanent.is_permanent() => ConsumerError::Permanent(permanent.to_string()),
            other => ConsumerError::Effect(other.to_string()),
        }
    }
}

/// An address SES could deliver to: one `@` between a non-empty local part and a dotted domain,
/// no whitespace or control characters. Not RFC 5322: it only catches what can never be sent
/// (an empty or garbled address on file), which no retry would cure.
pub fn is_plausible_address(address: &str) -> bool {
    let Some((local, domain)) = address.split_once('@') else { return false };
    !local.is_empty()
        && !domain.contains('@')
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| !label.is_empty())
        && !address.chars().any(|c| c.is_whitespace() || c.is_control())
}

pub struct Email<C, M, R> {
    pub customers: C,
    pub mailer: M,
    /// This consumer's records of orders: what was sent, and the lease of a send in progress.
    pub records: R,
}

impl<C: Customers, M: Mailer, R> Email<C, M, R> {
    async fn send(&self, event: &Envelope<EmailEvents>) -> Result<(), EmailError> {
        let customer_id = event.data.customer_id();
        let customer =
            self.customers.find(customer_id).await?.ok_or_else(|| EmailError::UnknownCustomer(customer_id.clone()))?;
        if !is_plausible_address(&customer.email) {
            return Err(EmailError::InvalidAddress(customer_id.clone()));
        }
        let message = match &event.data {
            EmailEvents::Placed(placed) => receipt::render(event.order_id, &customer, placed)?,
            EmailEvents::Cancelled(cancelled) => cancellation::render(event.order_id, &customer, cancelled)?,
            EmailEvents::Shipped(shipped) => shipping::render(event.order_id, &customer, shipped),
        };
        self.mailer.send(&message).await?;
        Ok(())
    }
}

#[async_trait]
impl<C: Customers, M: Mailer, R: OrderRecords> Consumer for Email<C, M, R> {
    type Event = EmailEvents;
    const NAME: &'static str = "email";

    async fn handle(&self, event: &Envelope<EmailEvents>, delivery: &Delivery) -> Result<Outcome, ConsumerError> {
        let stage = event.data.stage();
        // Every notice is due whatever came before it: only a skipped event sends nothing.
        once_in_order(&self.records, Self::NAME, event.order_id, stage, delivery, |_before| async {
            // A permanent error (no such customer, no valid address) goes to the DLQ at once.
            self.send(event).await.map_err(ConsumerError::from)
        })
        .await
    }
}

impl Email<dynamo::DynamoCustomers, ses::SesMailer, shared::adapters::dynamodb::DynamoOrderRecords> {
    /// Wired to AWS from its environment: the same for Lambda and the local runner.
    pub fn from_env(env: &Env, aws: &aws_config::SdkConfig) -> Result<Self, MissingEnv> {
        let dynamodb = shared::config::dynamodb(aws);
        Ok(Email {
            customers: dynamo::DynamoCustomers { client: dynamodb.clone(), table: env.get("CUSTOMERS_TABLE")? },
            mailer: ses::SesMailer { client: aws_sdk_sesv2::Client::new(aws), from: env.get("SENDER_EMAIL")? },
            records: shared::adapters::dynamodb::DynamoOrderRecords::new(dynamodb, env.get("PROCESSED_EVENTS_TABLE")?),
        })
    }
}
