//! List and watch filtering: a label selector and a field selector evaluated against the
//! attributes the store indexed at write time, so filtering never parses stored JSON.

use pernode_core::fields::FieldSelector;
use pernode_core::labels::LabelSelector;
use pernode_store::{Attrs, Entry};

use pernode_resources::ResourceInfo;

use crate::error::ApiError;
use crate::params::Query;

#[derive(Default)]
pub struct Filter {
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
    /// For a kind served from another kind's storage: its selector labels as the stored
    /// objects are indexed (`regarding.name` → `involvedObject.name`).
    stored_label: Option<fn(&str) -> &'static str>,
}

impl Filter {
    /// From `labelSelector`/`fieldSelector`; a field the resource does not index is a 400, as
    /// upstream (`field label not supported: x`).
    pub fn from_query(info: &ResourceInfo, query: &Query) -> Result<Filter, ApiError> {
        let labels = query.label_selector()?;
        let fields = query.field_selector()?;
        let kind = crate::kinds::of(info);
        if let Some(fields) = &fields {
            let supported = kind.fields;
            for field in fields.requirements().iter().map(|r| r.field.as_str()) {
                if !supported.contains(&field) {
                    return Err(ApiError::bad_request(format!(
                        "field label not supported: {field}"
                    )));
                }
            }
        }
        Ok(Filter {
            labels,
            fields,
            stored_label: kind.conversion.map(|c| c.field_label),
        })
    }

    /// Whether it selects everything (no label or field selector).
    pub fn is_empty(&self) -> bool {
        self.labels.as_ref().is_none_or(|l| l.is_empty())
            && self
                .fields
                .as_ref()
                .is_none_or(|f| f.requirements().is_empty())
    }

    /// Adds `metadata.name=<name>` (a watch on a named object).
    pub fn with_name(mut self, name: &str) -> Result<Filter, ApiError> {
        let escaped = pernode_core::fields::escape_value(name);
        let text = match self.fields.take() {
            Some(existing) if !existing.is_empty() => format!("{existing},metadata.name={escaped}"),
            _ => format!("metadata.name={escaped}"),
        };
        let selector = FieldSelector::parse(&text)
            .map_err(|e| ApiError::bad_request(format!("invalid name: {e}")))?;
        self.fields = Some(selector);
        Ok(self)
    }

    pub fn matches(&self, entry: &Entry) -> bool {
        self.matches_attrs(&entry.attrs)
    }

    /// Whether an object with these indexed attributes passes the filter.
    pub fn matches_attrs(&self, attrs: &Attrs) -> bool {
        if let Some(labels) = &self.labels
            && !labels.matches_with(|k| attrs.label(k))
        {
            return false;
        }
        if let Some(fields) = &self.fields
            && !fields.matches(|f| match self.stored_label {
                Some(stored) => attrs.field(stored(f)),
                _ => attrs.field(f),
            })
        {
            return false;
        }
        true
    }
}
