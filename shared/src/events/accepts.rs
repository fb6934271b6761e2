//! What a consumer accepts: one event type, or a set of them ([`event_set!`](crate::event_set)).
//! The consumer harness parses with it, and a test checks each consumer's EventBridge rule
//! against [`Accepts::ACCEPTED`], so that a rule matches exactly the events its consumer handles.

use super::EventData;

pub trait Accepts: Sized {
    /// `(source, detail-type, versions)` of every event type accepted, with each version read.
    const ACCEPTED: &'static [(&'static str, &'static str, &'static [u32])];
    /// Parses `data` if an event of this type and version is accepted; `None` if it is not.
    fn accept(event_type: &str, version: u32, data: serde_json::Value) -> Option<Result<Self, serde_json::Error>>;
}

impl<D: EventData> Accepts for D {
    const ACCEPTED: &'static [(&'static str, &'static str, &'static [u32])] = &[(D::SOURCE, D::TYPE, D::READS)];

    fn accept(event_type: &str, version: u32, data: serde_json::Value) -> Option<Result<Self, serde_json::Error>> {
        if event_type != D::TYPE {
            return None;
        }
        D::read(version, data)
    }
}

/// Declares an enum of catalogue events that a consumer accepts, one variant per event type.
#[macro_export]
macro_rules! event_set {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($variant:ident($ty:ty)),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        $vis enum $name { $($variant($ty)),+ }

        impl $crate::events::Accepts for $name {
            const ACCEPTED: &'static [(&'static str, &'static str, &'static [u32])] = &[$((
                <$ty as $crate::events::EventData>::SOURCE,
                <$ty as $crate::events::EventData>::TYPE,
                <$ty as $crate::events::EventData>::READS,
            )),+];

            fn accept(
                event_type: &str,
                version: u32,
                data: $crate::events::__serde_json::Value,
            ) -> Option<Result<Self, $crate::events::__serde_json::Error>> {
                $(
                    if event_type == <$ty as $crate::events::EventData>::TYPE {
                        return <$ty as $crate::events::EventData>::read(version, data)
                            .map(|read| read.map($name::$variant));
                    }
                )+
                None
            }
        }
    };
}
