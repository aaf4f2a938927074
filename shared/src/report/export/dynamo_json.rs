//! The DynamoDB JSON of an export line (`{"Item": {...}}`), parsed without copying the
//! strings of the attributes a cost record is read from, and skipping the others.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::ledger::records::RECORD_COST;
use crate::ledger::records::item::attr;

/// A DynamoDB attribute value, as far as records use them: `S`, `N`, `BOOL`; anything else is
/// kept as a description (for the error if a contract attribute has it).
pub(super) enum Attr<'a> {
    S(Cow<'a, str>),
    N(Cow<'a, str>),
    Bool(bool),
    Other(String),
}

impl Attr<'_> {
    pub(super) fn describe(&self) -> String {
        match self {
            Attr::S(_) => "S".into(),
            Attr::N(_) => "N".into(),
            Attr::Bool(_) => "BOOL".into(),
            Attr::Other(what) => what.clone(),
        }
    }
}

/// A JSON scalar (strings borrowed from the line when unescaped); anything else is `Other`.
enum Scalar<'a> {
    Str(Cow<'a, str>),
    Bool(bool),
    Other,
}

struct ScalarVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ScalarVisitor<'a> {
    type Value = Scalar<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor(PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Attr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AttrVisitor<'a>(PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for AttrVisitor<'a> {
            type Value = Attr<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a DynamoDB attribute value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let Some(tag) = map.next_key::<Scalar<'a>>()? else {
                    return Ok(Attr::Other("an empty object".into()));
                };
                let tag = match tag {
                    Scalar::Str(t) => t,
                    _ => return Err(de::Error::custom("object key is not a string")),
                };
                let value = map.next_value::<Scalar<'a>>()?;
                let attr = match (tag.as_ref(), value) {
                    ("S", Scalar::Str(s)) => Attr::S(s),
                    ("N", Scalar::Str(n)) => Attr::N(n),
                    ("BOOL", Scalar::Bool(b)) => Attr::Bool(b),
                    ("S" | "N" | "BOOL", _) => Attr::Other(format!("a malformed {tag} value")),
                    (other, _) => Attr::Other(other.to_owned()),
                };
                if map.next_key::<IgnoredAny>()?.is_some() {
                    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                    return Ok(Attr::Other("an object of several types".into()));
                }
                Ok(attr)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Attr::Other("an untyped string".into()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Attr::Other("an untyped boolean".into()))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Attr::Other("an untyped number".into()))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Attr::Other("an untyped number".into()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Attr::Other("an untyped number".into()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Attr::Other("null".into()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Attr::Other("an untyped array".into()))
            }
        }

        d.deserialize_any(AttrVisitor(PhantomData))
    }
}

/// The attributes a cost record is read from (an item's slots, in this order); others are
/// skipped.
const READ: [&str; 23] = [
    attr::RECORD,
    attr::QUERY_ID,
    attr::TS,
    attr::TENANT,
    attr::MODEL,
    attr::TIER,
    attr::PREDICTED_TIER,
    attr::CONFIDENCE,
    attr::ESCALATED,
    attr::DECIDED_BY,
    attr::INPUT_TOKENS,
    attr::OUTPUT_TOKENS,
    attr::TOKENS_ESTIMATED,
    attr::COST_USD,
    attr::BASELINE_MODEL,
    attr::BASELINE_COST_USD,
    attr::ROUTER_MS,
    attr::UPSTREAM_MS,
    attr::TASK_KIND,
    attr::STATUS,
    attr::SHADOW,
    attr::PRICING_VERSION,
    attr::ROUTER_VERSION,
];

/// The attributes of an item that a cost record is read from.
#[derive(Default)]
pub(super) struct Item<'a> {
    slots: [Option<Attr<'a>>; READ.len()],
}

impl<'a> Item<'a> {
    fn slot(&mut self, name: &str) -> Option<&mut Option<Attr<'a>>> {
        let i = READ.iter().position(|a| *a == name)?;
        self.slots.get_mut(i)
    }

    /// Takes the attribute `name` out (`None` if absent, or not one of those read).
    pub(super) fn take(&mut self, name: &str) -> Option<Attr<'a>> {
        self.slot(name).and_then(Option::take)
    }

    /// Whether the item is a cost record (`record` = `cost`).
    pub(super) fn is_cost_record(&self) -> bool {
        matches!(self.slots.first(), Some(Some(Attr::S(r))) if r == RECORD_COST)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Item<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ItemVisitor<'a>(PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for ItemVisitor<'a> {
            type Value = Item<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a DynamoDB item (an object of attributes)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut item = Item::default();
                while let Some(key) = map.next_key::<Scalar<'a>>()? {
                    let Scalar::Str(key) = key else {
                        return Err(de::Error::custom("object key is not a string"));
                    };
                    let Some(slot) = item.slot(&key) else {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    };
                    if slot.is_some() {
                        return Err(de::Error::custom(format!("duplicate attribute `{key}`")));
                    }
                    *slot = Some(map.next_value()?);
                }
                Ok(item)
            }
        }

        d.deserialize_map(ItemVisitor(PhantomData))
    }
}

/// One data line: `{"Item": {...}}`.
pub(super) struct ExportLine<'a> {
    pub(super) item: Item<'a>,
}

impl<'de: 'a, 'a> Deserialize<'de> for ExportLine<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct LineVisitor<'a>(PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for LineVisitor<'a> {
            type Value = ExportLine<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"an object {"Item": {...}}"#)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut item = None;
                while let Some(key) = map.next_key::<Scalar<'a>>()? {
                    if matches!(&key, Scalar::Str(k) if k == "Item") {
                        if item.is_some() {
                            return Err(de::Error::custom("duplicate `Item`"));
                        }
                        item = Some(map.next_value::<Item<'a>>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                item.map(|item| ExportLine { item })
                    .ok_or_else(|| de::Error::custom("no `Item` (not a full-export line)"))
            }
        }

        d.deserialize_map(LineVisitor(PhantomData))
    }
}

/// A serde_json error on one line: its position is within the line, so keep the column
/// and drop "line 1".
pub(super) fn json_detail(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match msg.strip_suffix(&suffix) {
        Some(m) if e.column() > 0 => format!("{m} (column {})", e.column()),
        Some(m) => m.to_owned(),
        None => msg,
    }
}
