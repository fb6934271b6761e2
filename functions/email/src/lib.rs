//! Email: the order receipt, sent once per order through SES.
//!
//! Events carry the customer's id, not their address (personal data stays in one table), so
//! the address is looked up when the receipt is sent. Sending is an effect outside DynamoDB, so
//! it runs under a lease on the processed-event marker (`once_with_lease`): a duplicate finds
//! the marker completed and sends nothing; a failed send releases the lease so the retry sends.
//! SES takes no idempotency key, so a crash between the send and completing the marker can send
//! a second receipt: at least once, never silently lost.

pub mod dynamo;
pub mod memory;
pub mod receipt;
pub mod ses;

use async_trait::async_trait;
use shared::config::{Env, MissingEnv};
use shared::consumer::{once_with_lease, Consumer, ConsumerError, Delivery, Outcome};
use shared::domain::{CustomerId, MoneyError};
use shared::events::{Envelope, OrderPlacedV1};
use shared::ports::{ProcessedEvents, StoreError};

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
    #[error("receipt cannot be rendered: {0}")]
    Receipt(#[from] MoneyError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EmailError {
    /// Retrying cannot help: the record goes to the dead-letter queue at once.
    pub fn is_permanent(&self) -> bool {
        matches!(self, EmailError::UnknownCustomer(_) | EmailError::InvalidAddress(_) | EmailError::Receipt(_))
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

pub struct Email<C, M, P> {
    pub customers: C,
    pub mailer: M,
    pub markers: P,
}

impl<C: Customers, M: Mailer, P> Email<C, M, P> {
    async fn send_receipt(&self, event: &Envelope<OrderPlacedV1>) -> Result<(), EmailError> {
        let customer_id = &event.data.customer_id;
        let customer =
            self.customers.find(customer_id).await?.ok_or_else(|| EmailError::UnknownCustomer(customer_id.clone()))?;
        if !is_plausible_address(&customer.email) {
            return Err(EmailError::InvalidAddress(customer_id.clone()));
        }
        let message = receipt::render(event.order_id, &customer, &event.data)?;
        self.mailer.send(&message).await?;
        Ok(())
    }
}

#[async_trait]
impl<C: Customers, M: Mailer, P: ProcessedEvents> Consumer for Email<C, M, P> {
    type Event = OrderPlacedV1;
    const NAME: &'static str = "email";

    async fn handle(&self, event: &Envelope<OrderPlacedV1>, delivery: &Delivery) -> Result<Outcome, ConsumerError> {
        let marker = delivery.marker(Self::NAME, event.event_id);
        once_with_lease(&self.markers, &marker, delivery, || async {
            // A permanent error (no such customer, no valid address) goes to the DLQ at once.
            self.send_receipt(event).await.map_err(ConsumerError::from)
        })
        .await
    }
}

impl Email<dynamo::DynamoCustomers, ses::SesMailer, shared::adapters::dynamodb::DynamoProcessedEvents> {
    /// Wired to AWS from its environment: the same for Lambda and the local runner.
    pub fn from_env(env: &Env, aws: &aws_config::SdkConfig) -> Result<Self, MissingEnv> {
        let dynamodb = shared::config::dynamodb(aws);
        Ok(Email {
            customers: dynamo::DynamoCustomers { client: dynamodb.clone(), table: env.get("CUSTOMERS_TABLE")? },
            mailer: ses::SesMailer { client: aws_sdk_sesv2::Client::new(aws), from: env.get("SENDER_EMAIL")? },
            markers: shared::adapters::dynamodb::DynamoProcessedEvents::new(
                dynamodb,
                env.get("PROCESSED_EVENTS_TABLE")?,
            ),
        })
    }
}
