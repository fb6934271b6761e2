//! The mailer on Amazon SES v2 (`SendEmail` with simple content).

use crate::{MailError, Mailer, Message};
use async_trait::async_trait;
use aws_sdk_sesv2::error::DisplayErrorContext;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message as SesMessage};
use aws_sdk_sesv2::Client;

pub struct SesMailer {
    pub client: Client,
    /// A verified SES identity.
    pub from: String,
}

fn utf8(data: &str) -> Result<Content, MailError> {
    Content::builder().data(data).charset("UTF-8").build().map_err(|e| MailError(e.to_string()))
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, message: &Message) -> Result<(), MailError> {
        let body = Body::builder().text(utf8(&message.text)?).html(utf8(&message.html)?).build();
        let content = SesMessage::builder().subject(utf8(&message.subject)?).body(body).build();
        self.client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(&message.to).build())
            .content(EmailContent::builder().simple(content).build())
            .send()
            .await
            .map_err(|e| MailError(DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}
